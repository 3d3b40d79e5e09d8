"""FAISS indexes keyed by database ids, persisted atomically beside a small manifest.

The index is a cache of the `embedding` blobs stored on the rows: it can always be rebuilt from the
database. Exact search (`IndexFlatIP`) is the default; above `HNSW_MIN_VECTORS` (measured on this
machine, see bench/bench_search.py) an HNSW graph answers faster at equal recall. HNSW cannot delete,
so removed ids become tombstones, filtered at search time, until the next compaction.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from knowledge_base.settings import get_settings

log = logging.getLogger(__name__)

FLAT = "flat"
HNSW = "hnsw"
# Measured here (bench/bench_search.py, 1 thread, busy machine; p50 of one k=5 query, flat vs HNSW
# M=32/efSearch=128): 5k 0.31/0.30 ms, 10k 1.3/0.5, 20k 1.9/0.5, 30k 7.8/0.4, 50k 19/0.8, 100k 42/1.6 ms,
# HNSW recall@5 0.99-1.0. Equal speed near 5k; below 20k flat stays under 2 ms, exact, and removes for
# free, so the switch is at 20k.
HNSW_MIN_VECTORS = 20_000
HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 80
# Compact an HNSW index once this share of its vectors are tombstones.
TOMBSTONE_COMPACT_SHARE = 0.1


@dataclass
class Manifest:
    """What the saved index was built with; a different model or dimension means rebuild."""

    name: str
    model: str
    dim: int
    kind: str = FLAT
    count: int = 0
    tombstones: list[int] = field(default_factory=list)


def _temp_path(path: Path) -> Path:
    """A temp name unique to this writer, so two processes saving at once never share one."""
    return path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _new_faiss(kind: str, dim: int) -> Any:
    inner: Any
    if kind == HNSW:
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        inner = faiss.IndexFlatIP(dim)
    return faiss.IndexIDMap2(inner)


class VectorIndex:
    """One named index ("passages", "verdicts") of unit vectors, searched by inner product."""

    def __init__(self, name: str, *, model: str, dim: int, kind: str = FLAT, directory: Path | None = None):
        self.name = name
        self.model = model
        self.dim = dim
        self.kind = kind
        self.directory = directory or get_settings().index_dir
        self._index = _new_faiss(kind, dim)
        self._tombstones: set[int] = set()
        self._live: set[int] = set()
        # Why the saved copy was not used (model/dimension change, unreadable file); None if it was.
        self.reset_reason: str | None = None

    # ------------------------------------------------------------------ persistence

    @property
    def index_path(self) -> Path:
        return self.directory / f"{self.name}.faiss"

    @property
    def manifest_path(self) -> Path:
        return self.directory / f"{self.name}.json"

    @classmethod
    def load(cls, name: str, *, model: str, dim: int, directory: Path | None = None) -> VectorIndex:
        """The saved index if it was built with this model and dimension, else an empty one."""
        index = cls(name, model=model, dim=dim, directory=directory)
        if not index.manifest_path.exists() or not index.index_path.exists():
            index.reset_reason = "no saved index"
            return index
        try:
            manifest = Manifest(**json.loads(index.manifest_path.read_text(encoding="utf-8")))
            if manifest.model != model or manifest.dim != dim:
                index.reset_reason = f"saved with {manifest.model}/{manifest.dim}, now {model}/{dim}"
                log.warning("index %s: %s, starting empty", name, index.reset_reason)
                return index
            loaded = faiss.read_index(str(index.index_path))
            if not isinstance(loaded, faiss.IndexIDMap2):
                raise ValueError(f"{index.index_path} is not an id-mapped index")
            index._index = loaded
            # Another process may have replaced the index between our reads of the two files: the
            # kind comes from the index itself, the tombstones only if the counts agree.
            inner: Any = faiss.downcast_index(loaded.index)
            index.kind = HNSW if isinstance(inner, faiss.IndexHNSW) else FLAT
            if manifest.count + len(manifest.tombstones) == loaded.ntotal:
                index._tombstones = set(manifest.tombstones)
            elif manifest.tombstones:
                log.warning("index %s: manifest from another save, tombstones ignored", name)
            index._live = index._stored_ids() - index._tombstones
            if index.kind == HNSW:
                inner.hnsw.efSearch = HNSW_EF_SEARCH
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            log.warning("index %s: unreadable saved index (%s), starting empty", name, exc)
            index.reset()
            index.reset_reason = f"unreadable saved index: {exc}"
        return index

    def save(self) -> None:
        """Write index then manifest, each to a temp file renamed into place (readers never see half)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp_index = _temp_path(self.index_path)
        faiss.write_index(self._index, str(tmp_index))
        os.replace(tmp_index, self.index_path)
        manifest = Manifest(
            self.name, self.model, self.dim, self.kind, len(self), sorted(self._tombstones)
        ).__dict__
        tmp_manifest = _temp_path(self.manifest_path)
        tmp_manifest.write_text(json.dumps(manifest), encoding="utf-8")
        os.replace(tmp_manifest, self.manifest_path)

    # ------------------------------------------------------------------ contents

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, item: int) -> bool:
        return item in self._live

    def ids(self) -> set[int]:
        """Live ids (tombstones excluded); a copy."""
        return set(self._live)

    def _stored_ids(self) -> set[int]:
        if not self._index.ntotal:
            return set()
        return set(faiss.vector_to_array(self._index.id_map).tolist())

    def add(self, ids: list[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add or replace vectors for these ids."""
        id_array = np.asarray(ids, dtype=np.int64).reshape(-1)
        if id_array.size == 0:
            return
        matrix = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(id_array), -1)
        if matrix.shape[1] != self.dim:
            raise ValueError(f"index {self.name} holds {self.dim}-d vectors, got {matrix.shape[1]}-d")
        if len(set(id_array.tolist())) != len(id_array):
            raise ValueError("duplicate ids in one add")
        new_ids = set(id_array.tolist())
        present = self._live & new_ids
        if present:
            self.remove(sorted(present))
        if self._tombstones & new_ids:  # an HNSW tombstone must be compacted away before its id is reused
            self._compact()
        self._index.add_with_ids(matrix, id_array)
        self._live |= new_ids
        if self.kind == FLAT and len(self) >= HNSW_MIN_VECTORS:
            self._convert(HNSW)

    def remove(self, ids: list[int] | np.ndarray) -> int:
        """Remove these ids (unknown ids are ignored); returns how many were live."""
        wanted = {int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)} & self._live
        if not wanted:
            return 0
        self._live -= wanted
        if self.kind == HNSW:
            self._tombstones |= wanted
            if len(self._tombstones) >= TOMBSTONE_COMPACT_SHARE * max(int(self._index.ntotal), 1):
                self._compact()
        else:
            self._index.remove_ids(np.fromiter(wanted, dtype=np.int64))
        return len(wanted)

    def reset(self) -> None:
        """Drop every vector (before a rebuild)."""
        self._index = _new_faiss(FLAT, self.dim)
        self.kind = FLAT
        self._tombstones = set()
        self._live = set()
        self.reset_reason = None

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """For each query vector, up to k (id, inner product) pairs, best first."""
        queries = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        live = len(self)
        if live == 0 or k <= 0:
            return [[] for _ in range(len(queries))]
        params = None
        if self._tombstones:  # skip tombstoned ids inside the graph walk rather than over-fetching
            excluded = np.fromiter(self._tombstones, dtype=np.int64, count=len(self._tombstones))
            # Locals keep the SWIG selector objects alive for the duration of the search.
            batch = faiss.IDSelectorBatch(excluded)
            selector = faiss.IDSelectorNot(batch)
            params = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]  # not in faiss's stubs
                sel=selector, efSearch=HNSW_EF_SEARCH
            )
        threads = faiss.omp_get_max_threads()
        if len(queries) == 1:  # one query is faster single-threaded, and the machine is shared
            faiss.omp_set_num_threads(1)
        try:
            scores, found = self._index.search(queries, min(k, live), params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        results: list[list[tuple[int, float]]] = []
        for row_ids, row_scores in zip(found, scores, strict=True):
            hits = [
                (int(i), float(s))
                for i, s in zip(row_ids, row_scores, strict=True)
                if i != -1 and int(i) not in self._tombstones
            ]
            results.append(hits[:k])
        return results

    def vectors(self, ids: list[int]) -> np.ndarray:
        """Stored vectors for these ids (to rebuild or convert without re-embedding)."""
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64)), dtype=np.float32)

    # ------------------------------------------------------------------ maintenance

    def _convert(self, kind: str) -> None:
        ids = sorted(self._live)
        vectors = self.vectors(ids)
        log.info("index %s: converting %d vectors from %s to %s", self.name, len(ids), self.kind, kind)
        self._index = _new_faiss(kind, self.dim)
        self.kind = kind
        self._tombstones = set()
        if ids:
            self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def _compact(self) -> None:
        """Rebuild without tombstones (HNSW) — the only way to really delete from a graph."""
        self._convert(HNSW if len(self) >= HNSW_MIN_VECTORS else FLAT)
