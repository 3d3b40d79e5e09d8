"""The message path asks the knowledge base's hashes before NLU: a forward of a checked claim, or a
verbatim repeat of a text matched before, is answered without classifying it (real knowledge base,
real NLU client with a dead Rasa and the real fallback classifier, on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.core import BotCore, Services
from knowledge_base.answer import answer_question
from knowledge_base.embeddings import query_vectors
from knowledge_base.matching import known_forward, match_claim
from knowledge_base.models import InboundMessage
from knowledge_base.tickets import report_claim
from knowledge_base.verdict_import import import_csv
from nlu.client import NluClient
from nlu.fallback import FallbackClassifier, load_or_train
from nlu.result import NluResult
from nlu.settings import NluSettings
from tests.helpers.bot import Outbox, bot_settings, env
from tests.helpers.db import reusing
from tests.helpers.procs import free_port
from tests.test_matching import WATER, write_csv


class CountingFallback:
    """The real fallback classifier, counting the messages it classifies."""

    def __init__(self, classifier: FallbackClassifier) -> None:
        self.classifier = classifier
        self.parsed: list[str] = []

    def parse(self, text: str) -> NluResult:
        self.parsed.append(text)
        return self.classifier.parse(text)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> FallbackClassifier:
    """Trained once, on the knowledge base's query vectors, as `default_services` wires it."""
    settings = NluSettings(NLU_DATA_DIR=tmp_path_factory.mktemp("nlu"))
    return load_or_train(settings, embed=query_vectors)


def test_a_known_forward_or_a_verbatim_repeat_is_answered_without_nlu(
    session: Session, tmp_path: Path, classifier: FallbackClassifier
) -> None:
    import_csv(write_csv(tmp_path), session=session, with_messages=True)
    session.commit()
    fallback = CountingFallback(classifier)
    dead_rasa = NluSettings(RASA_URL=f"http://127.0.0.1:{free_port()}")
    nlu = NluClient(dead_rasa, fallback=lambda: fallback)  # type: ignore[arg-type]
    services = Services(
        parse=nlu.parse_sync,
        answer=answer_question,
        match=match_claim,
        report=report_claim,
        known=known_forward,
    )
    core = BotCore(services, bot_settings(), reusing(session))

    def say(ext: str, text: str) -> list[str]:
        return [r.text for r in asyncio.run(core.handle(env(ext, text), Outbox())).replies]

    # Typed, not marked as forwarded: without the hash path this would go through NLU first.
    water = say("k1", "Diteruskan 👉 " + WATER)
    assert fallback.parsed == [] and "SALAH" in water[0]
    paraphrase = "ada yang kirim pesan katanya wali kota kasih bantuan tunai 5 juta, tinggal klik link nya"
    first = say("k2", paraphrase)
    assert fallback.parsed == [paraphrase]  # new text: classified, then matched
    again = say("k3", paraphrase)
    assert fallback.parsed == [paraphrase] and again == first  # the repeat: hashes only
    stored = session.exec(select(InboundMessage).where(InboundMessage.external_id == "k3")).one()
    assert stored.nlu_source is None and stored.replies
    say("k4", "jam berapa sampah diangkut di Oebobo?")
    assert len(fallback.parsed) == 2  # anything else still goes to NLU
