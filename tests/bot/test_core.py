"""The core on SQLite and PostgreSQL: persistence before processing, idempotent redelivery,
abuse handling, tickets, feedback and data deletion."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from sqlmodel import Session, func, select

from bot import citizens, messages
from bot.core import BotCore
from bot.dialogue import Reply
from knowledge_base.models import (
    Citizen,
    CitizenReport,
    Claim,
    Feedback,
    InboundMessage,
    Notification,
    Verdict,
    utcnow,
)
from tests.helpers.bot import Outbox, bot_settings, env
from tests.helpers.db import reusing
from tests.helpers.stubs import stub_services


def say(core: BotCore, out: Outbox, ext: str, text: str = "", **kw: object) -> list[Reply]:
    return asyncio.run(core.handle(env(ext, text, **kw), out)).replies


def test_message_is_stored_before_processing_and_replied_once(core: BotCore, session: Session) -> None:
    out = Outbox()
    replies = say(core, out, "u1", command="start")
    assert replies[0].text.startswith("Halo!")
    msg = session.exec(select(InboundMessage).where(InboundMessage.external_id == "u1")).one()
    assert msg.processed_at and msg.replied_at and msg.replies == [r.to_dict() for r in replies]
    # Telegram redelivers the same update: nothing is recomputed or sent again.
    again = asyncio.run(core.handle(env("u1", command="start"), out))
    assert not again.send and len(out.sent) == 1
    assert session.exec(select(func.count()).where(InboundMessage.external_id == "u1")).one() == 1


def test_failed_delivery_resends_the_stored_reply_on_redelivery(core: BotCore, session: Session) -> None:
    out = Outbox(fail=1)
    with contextlib.suppress(ConnectionError):
        say(core, out, "u2", "jam buang sampah?")
    msg = session.exec(select(InboundMessage).where(InboundMessage.external_id == "u2")).one()
    assert msg.replies and msg.replied_at is None
    calls = []
    core.services.answer = lambda *a, **k: calls.append(a)  # must not be asked again
    say(core, out, "u2", "jam buang sampah?")
    assert calls == [] and "Sampah diangkut" in out.sent[0][1][0].text
    assert session.get(InboundMessage, msg.id).replied_at is not None


def test_crash_before_replying_is_processed_on_redelivery(core: BotCore, session: Session) -> None:
    def boom(text: str) -> object:
        raise KeyboardInterrupt  # a kill: not caught by the core's error handling

    parse = core.services.parse
    core.services.parse = boom
    with contextlib.suppress(KeyboardInterrupt):
        say(core, Outbox(), "u3", "halo")
    msg = session.exec(select(InboundMessage).where(InboundMessage.external_id == "u3")).one()
    assert msg.text == "halo" and msg.processed_at is None  # stored, not lost
    core.services.parse = parse
    out = Outbox()
    say(core, out, "u3", "halo")
    assert out.sent[0][1][0].text == messages.GREETING


def test_error_in_knowledge_base_gives_polite_reply_and_keeps_the_message(
    core: BotCore, session: Session
) -> None:
    def broken(*a: object, **k: object) -> None:
        raise RuntimeError("index missing")

    core.services.answer = broken
    replies = say(core, Outbox(), "u4", "jam buang sampah?")
    assert replies[0].text == messages.ERROR
    msg = session.exec(select(InboundMessage).where(InboundMessage.external_id == "u4")).one()
    assert "index missing" in msg.error and msg.text == "jam buang sampah?"


def test_claim_flow_auto_verdict_suggestion_and_ticket(
    core: BotCore, session: Session, verdict: Verdict
) -> None:
    out = Outbox()
    auto = say(core, out, "c1", "katanya vaksin campak di kupang mengandung chip pelacak")
    assert "Hasil cek fakta: HOAKS" in auto[0].text and verdict.url in auto[0].text

    similar = say(core, out, "c2", "katanya ada chip di vaksin")
    assert messages.SUGGEST_INTRO in similar[0].text
    pick = similar[0].buttons[0].data
    picked = say(core, out, "c3", button=pick)
    assert verdict.claim in picked[0].text
    none_btn = similar[0].buttons[-1].data
    assert say(core, out, "c4", button=none_btn)[0].text == messages.ticket(1)
    claim = session.exec(select(Claim).where(Claim.text == "katanya ada chip di vaksin")).one()
    report = session.exec(select(CitizenReport).where(CitizenReport.claim_id == claim.id)).one()
    assert (
        report.message_id
        == session.exec(select(InboundMessage.id).where(InboundMessage.external_id == "c2")).one()
    )


def test_a_verdict_that_expired_after_it_was_suggested_is_not_served(
    core: BotCore, session: Session, verdict: Verdict
) -> None:
    out = Outbox()
    similar = say(core, out, "e1", "katanya ada chip di vaksin")
    assert messages.SUGGEST_INTRO in similar[0].text
    verdict.expires_at = utcnow() - timedelta(minutes=1)  # expires while the list is on screen
    session.add(verdict)
    session.commit()
    picked = say(core, out, "e2", button=similar[0].buttons[0].data)
    assert picked[0].text == messages.VERDICT_NOT_CURRENT
    assert verdict.summary not in picked[0].text


def test_many_citizens_asking_the_same_claim_join_one_ticket(core: BotCore, session: Session) -> None:
    text = "Katanya besok listrik padam satu kota Kupang seharian penuh"
    for i in range(3):
        replies = say(core, Outbox(), f"m{i}", text, address=f"70{i}", forwarded=True)
    assert replies[0].text == messages.ticket(3)
    claim = session.exec(select(Claim).where(Claim.text == text)).one()
    assert claim.ask_count == 3


def test_rate_limit_replies_politely_once_and_keeps_messages(session: Session) -> None:
    core = BotCore(stub_services(), bot_settings(BOT_RATE_LIMIT="3/minute"), reusing(session))
    out = Outbox()
    for i in range(6):
        say(core, out, f"r{i}", "halo")
    texts = [replies[0].text for _, replies in out.sent]
    assert texts.count(messages.GREETING) == 3 and texts.count(messages.RATE_LIMITED) == 1
    assert session.exec(select(func.count()).where(InboundMessage.external_id.startswith("r"))).one() == 6


def test_blocked_citizen_gets_nothing(core: BotCore, session: Session) -> None:
    say(core, Outbox(), "b0", "halo", address="b-666")
    citizen = session.exec(select(Citizen).where(Citizen.address == "b-666")).one()
    citizen.blocked = True
    session.add(citizen)
    session.commit()
    out = Outbox()
    say(core, out, "b1", "halo", address="b-666")
    assert out.sent == []
    # The block list setting (env BOT_BLOCKED_PSEUDONYMS='["…"]') works the same for an unflagged citizen.
    say(core, Outbox(), "b2", "halo", address="b-777")
    pid = session.exec(select(Citizen).where(Citizen.address == "b-777")).one().pseudonym
    listed = BotCore(stub_services(), bot_settings(BOT_BLOCKED_PSEUDONYMS={pid}), reusing(session))
    out = Outbox()
    asyncio.run(listed.handle(env("b3", "halo", address="b-777"), out))
    assert out.sent == []


def test_too_long_message_is_refused_politely_but_stored(session: Session) -> None:
    core = BotCore(stub_services(), bot_settings(BOT_MAX_MESSAGE_CHARS=50), reusing(session))
    text = "kabar " * 20
    replies = say(core, Outbox(), "l1", text)
    assert replies[0].text == messages.TOO_LONG.format(limit=50)
    assert session.exec(select(InboundMessage.text).where(InboundMessage.external_id == "l1")).one() == text


def test_staff_visible_rows_carry_no_chat_id(core: BotCore, session: Session) -> None:
    say(
        core,
        Outbox(),
        "p1",
        "Katanya besok listrik padam satu kota Kupang seharian",
        address="987654321",
        forwarded=True,
    )
    citizen = session.exec(select(Citizen).where(Citizen.address == "987654321")).one()
    assert "987654321" not in citizen.pseudonym and len(citizen.pseudonym) == 32
    msg = session.exec(select(InboundMessage).where(InboundMessage.external_id == "p1")).one()
    assert "987654321" not in str(msg.payload)


def test_feedback_is_recorded_only_for_own_answers(core: BotCore, session: Session) -> None:
    replies = say(core, Outbox(), "f1", "jam buang sampah?", address="f-own")
    rated = session.exec(select(InboundMessage.id).where(InboundMessage.external_id == "f1")).one()
    helpful = replies[0].buttons[0].data
    assert helpful.endswith(f"|fb1|{rated}")
    assert say(core, Outbox(), "f2", button=helpful, address="f-own")[0].text == messages.FEEDBACK_THANKS
    assert [f.helpful for f in session.exec(select(Feedback).where(Feedback.message_id == rated))] == [True]
    say(core, Outbox(), "f3", "halo", address="f-other")  # another citizen forging a button for it
    other = session.exec(select(Citizen).where(Citizen.address == "f-other")).one().state["session"]
    say(core, Outbox(), "f4", button=f"{other}|fb0|{rated}", address="f-other")
    assert len(session.exec(select(Feedback).where(Feedback.message_id == rated)).all()) == 1


def test_hapusdata_deletes_messages_and_address_and_keeps_counts(core: BotCore, session: Session) -> None:
    out, me = Outbox(), "d-citizen"
    text = "Katanya air PDAM Kupang dicampur racun tikus oleh orang"
    say(core, out, "d1", text, address=me, forwarded=True)
    claim = session.exec(select(Claim).where(Claim.text == text)).one()
    citizen = session.exec(select(Citizen).where(Citizen.address == me)).one()
    session.add(Notification(dedupe_key="d-n1", citizen_id=citizen.id, channel="telegram", kind="verdict"))
    session.commit()
    confirm = say(core, out, "d2", command="hapusdata", address=me)
    done = say(core, out, "d3", button=confirm[0].buttons[0].data, address=me)
    assert done[0].text == messages.deleted(3, 1, 1)
    session.refresh(citizen)
    assert citizen.address is None and citizen.deleted_at is not None and citizen.state == {}
    mine = session.exec(
        select(InboundMessage).where(InboundMessage.external_id.in_(["d1", "d2", "d3"]))
    ).all()
    assert [(m.external_id, m.text, m.citizen_id) for m in mine] == [
        ("d3", None, None)
    ]  # kept for idempotency
    report = session.exec(select(CitizenReport).where(CitizenReport.claim_id == claim.id)).one()
    assert (report.citizen_id, report.text) == (None, None)
    assert session.get(Claim, claim.id).ask_count == 1
    assert session.get(Claim, claim.id).text == citizens.REMOVED_TEXT, "their words leave the ticket too"
    note = session.exec(select(Notification).where(Notification.dedupe_key == "d-n1")).one()
    assert (note.status, note.citizen_id) == ("cancelled", None)
    # Writing again starts afresh, as a new pseudonymous citizen.
    say(core, out, "d4", "halo", address=me)
    fresh = session.exec(select(Citizen).where(Citizen.address == me)).one()
    assert fresh.id != citizen.id


def test_hapusdata_gives_the_ticket_another_askers_words(core: BotCore, session: Session) -> None:
    out, first, second = Outbox(), "r-first", "r-second"
    text = "Katanya jembatan Liliba ditutup sebulan mulai besok karena retak, sebarkan ke semua grup"
    say(core, out, "r1", text, address=first, forwarded=True)
    say(core, out, "r2", text.upper(), address=second, forwarded=True)  # same claim, other words
    claim = session.exec(select(Claim).where(Claim.text == text)).one()
    assert claim.ask_count == 2
    confirm = say(core, out, "r3", command="hapusdata", address=first)
    say(core, out, "r4", button=confirm[0].buttons[0].data, address=first)
    session.refresh(claim)
    assert claim.text == text.upper(), "the remaining asker's words become the ticket text"
    assert claim.ask_count == 2
