"""BM25 over `normalize.tokens` (Sastrawi stems), keyed by database ids.

BM25 with stemming was the best single retriever on informal Indonesian paraphrases (R@1 0.88,
MEASURED.md). bm25s cannot add documents to a built index, so this keeps every document's terms and
re-indexes when they change. Measured (bench/bench_search.py, busy 2-core machine): tokenizing costs
≈2 ms per 120-word passage (≈200 s per 100k), re-indexing saved terms a few seconds, and a restart
at 100k passages (FAISS + terms + BM25) 16 s; so the terms, not the bm25s matrices, are what is saved.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import uuid
from collections import Counter
from pathlib import Path

import bm25s
import numpy as np

from knowledge_base.normalize import tokens
from knowledge_base.settings import get_settings

log = logging.getLogger(__name__)


class LexicalIndex:
    """Terms per id, and a bm25s index rebuilt from them on demand."""

    def __init__(self, name: str, *, directory: Path | None = None) -> None:
        self.name = name
        self.directory = directory or get_settings().index_dir
        self._terms: dict[int, list[str]] = {}
        self._bm25: bm25s.BM25 | None = None
        self._bm25_ids = np.zeros(0, dtype=np.int64)
        self._doc_freq: Counter[str] = Counter()
        self._dirty = False
        self._built = False
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.directory / f"{self.name}.terms.npz"

    # ------------------------------------------------------------------ contents

    def __len__(self) -> int:
        return len(self._terms)

    def ids(self) -> set[int]:
        return set(self._terms)

    def terms(self, doc_id: int) -> list[str]:
        """The stored terms of one document (empty if unknown)."""
        return self._terms.get(doc_id, [])

    @property
    def built(self) -> bool:
        """True once a bm25s index has been built (searches before that find nothing)."""
        return self._built

    @property
    def dirty(self) -> bool:
        """True when documents changed since the bm25s index was last built."""
        return self._dirty

    def add(self, ids: list[int], texts: list[str]) -> None:
        """Add or replace documents (tokenized here: the slow part)."""
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        terms = [tokens(text) for text in texts]
        with self._lock:
            self._terms.update(zip((int(i) for i in ids), terms, strict=True))
            self._dirty = True

    def remove(self, ids: list[int]) -> int:
        with self._lock:
            removed = sum(self._terms.pop(int(i), None) is not None for i in ids)
            self._dirty = self._dirty or removed > 0
        return removed

    def reset(self) -> None:
        with self._lock:
            self._terms.clear()
            self._dirty = True

    def without(self, ids: set[int]) -> LexicalIndex:
        """A built copy lacking these documents, as if they had never been indexed (their terms
        weigh in no IDF): evaluation uses it to simulate a claim nobody has checked yet."""
        copy = LexicalIndex(self.name, directory=self.directory)
        with self._lock:
            copy._terms = {i: t for i, t in self._terms.items() if i not in ids}
        copy._dirty = True
        copy.refresh()
        return copy

    def refresh(self) -> None:
        """Rebuild the bm25s index from the stored terms if anything changed."""
        with self._lock:
            if not self._dirty:
                return
            ids = np.fromiter(self._terms, dtype=np.int64, count=len(self._terms))
            corpus = [self._terms[int(i)] for i in ids]
            self._dirty = False
        bm25: bm25s.BM25 | None = None
        if any(corpus):
            bm25 = bm25s.BM25()
            bm25.index(corpus, show_progress=False)
        doc_freq = Counter(term for terms in corpus for term in set(terms))
        # Swapped together: searches see the old or the new index, never half of each.
        self._bm25, self._bm25_ids, self._doc_freq = bm25, ids, doc_freq
        self._built = True

    def idf(self, term: str) -> float:
        """BM25's inverse document frequency as of the last refresh; highest for unseen terms."""
        n = len(self._bm25_ids)
        df = self._doc_freq.get(term, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def coverage(self, query_terms: set[str], doc_id: int) -> float:
        """Share of the query's IDF weight found in the document: rare shared terms count most, and
        query terms the corpus never saw count against the match."""
        total = sum(self.idf(t) for t in query_terms)
        if not total:
            return 0.0
        found = query_terms & set(self.terms(doc_id))
        return sum(self.idf(t) for t in found) / total

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Up to k (id, BM25 score) pairs with a positive score, best first, as of the last refresh."""
        bm25, ids = self._bm25, self._bm25_ids
        if bm25 is None or k <= 0:
            return []
        terms = [t for t in tokens(query) if t and t in bm25.vocab_dict]
        if not terms:
            return []
        scores = bm25.get_scores(terms)
        top = min(k, int(np.count_nonzero(scores > 0)))
        if top == 0:
            return []
        best = np.argpartition(-scores, top - 1)[:top]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(ids[i]), float(scores[i])) for i in best]

    # ------------------------------------------------------------------ persistence

    def save(self) -> None:
        """Terms as one npz (vocabulary, flat term ids, offsets, doc ids), replaced atomically."""
        with self._lock:
            doc_ids = np.fromiter(self._terms, dtype=np.int64, count=len(self._terms))
            vocab: dict[str, int] = {}
            flat = [vocab.setdefault(t, len(vocab)) for i in doc_ids for t in self._terms[int(i)]]
            lengths = [len(self._terms[int(i)]) for i in doc_ids]
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                doc_ids=doc_ids,
                offsets=np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64),
                term_ids=np.asarray(flat, dtype=np.int32),
                vocab=np.asarray(list(vocab), dtype=np.str_),
            )
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, name: str, *, directory: Path | None = None) -> LexicalIndex:
        """The saved terms (empty if none or unreadable); call `refresh()` before searching."""
        index = cls(name, directory=directory)
        if not index.path.exists():
            return index
        try:
            with np.load(index.path, allow_pickle=False) as data:
                vocab = data["vocab"].tolist()
                term_ids, offsets, doc_ids = data["term_ids"], data["offsets"], data["doc_ids"]
                words = [vocab[t] for t in term_ids.tolist()]
                bounds = offsets.tolist()
                index._terms = {
                    int(doc): words[bounds[n] : bounds[n + 1]] for n, doc in enumerate(doc_ids.tolist())
                }
        except (OSError, ValueError, KeyError, IndexError) as exc:
            log.warning("lexical index %s unreadable (%s), starting empty", name, exc)
            index._terms = {}
        index._dirty = True
        return index
