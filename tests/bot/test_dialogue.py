"""The pure conversation steps: routing, replies, state, stale buttons; snapshots of key wording."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import messages
from bot.dialogue import (
    Facts,
    Incoming,
    Intent,
    Need,
    Reply,
    Route,
    button_data,
    needs_intent,
    parse_command,
    respond,
    route,
)
from knowledge_base.answer import Answer
from knowledge_base.digest_render import unsubscribe_data
from knowledge_base.matching import VerdictCandidate
from tests.helpers.stubs import citation

S = {"session": "abcd1234"}
VERDICT = VerdictCandidate(
    7,
    "Air PDAM Kupang tercemar bakteri berbahaya",
    "HOAKS",
    "PDAM memastikan air layak.",
    "https://x.id/a",
    datetime(2026, 1, 9, tzinfo=UTC),
    score=0.95,
)


def test_commands_are_parsed_with_bot_suffix_and_unknown_ones_show_help() -> None:
    assert parse_command("/cek@KabasBot air mati su 3 hari") == ("cek", "air mati su 3 hari")
    assert parse_command("/START") == ("start", "")
    assert parse_command("/xyz") == ("help", "")
    assert parse_command("halo") == (None, "halo")


def test_start_rotates_the_session_so_old_buttons_go_stale() -> None:
    state, replies = respond(
        S, route(S, Incoming(command="start"), None), Facts(), message_id=1, new_session="new1"
    )
    assert state == {"session": "new1"}
    assert all(b.data.startswith("new1|") for b in replies[0].buttons)
    stale = route(state, Incoming(button=button_data("abcd1234", "menu_cek")), None)
    assert stale.say == "stale"


def test_intent_routes_and_low_confidence_falls_back() -> None:
    text = Incoming(text="jam buang sampah?")
    assert route(S, text, Intent("ask_info", 0.9)).need is Need.answer
    assert (
        route(S, Incoming(text="vaksin itu ada chip di dalamnya"), Intent("check_claim", 0.9)).need
        is Need.match
    )
    low = route(S, text, Intent("greet", 0.2))
    assert (low.need, low.say) == (Need.answer, "fallback")
    long_text = Incoming(text=" ".join(["kabar"] * 15))
    assert route(S, long_text, Intent("nlu_fallback", 0.9)).need is Need.match


def test_forwarded_text_is_a_claim_without_asking_nlu() -> None:
    fwd = Incoming(text="Sebarkan! Besok listrik padam se-Kota Kupang", forwarded=True)
    assert not needs_intent(S, fwd)
    assert route(S, fwd, None).need is Need.match


def test_cek_without_text_waits_for_the_claim() -> None:
    state, replies = respond(
        S, route(S, Incoming(command="cek"), None), Facts(), message_id=1, new_session="x"
    )
    assert state["mode"] == "await_claim" and replies[0].text == messages.PROMPT_CLAIM
    nxt = Incoming(text="air PDAM mati su 3 hari karena diracun")
    assert not needs_intent(state, nxt)
    assert route(state, nxt, None) == Route(Need.match, text=nxt.text)


def test_too_short_claim_asks_for_the_full_sentence() -> None:
    rt = route(S, Incoming(command="cek", text="hoaks?"), None)
    state, replies = respond(S, rt, Facts(), message_id=1, new_session="x")
    assert replies[0].text == messages.CLAIM_TOO_SHORT and state["mode"] == "await_claim"


def test_answer_found_cites_sources_and_offers_feedback() -> None:
    cit = citation(
        "Jadwal sampah", "Pemkot Kupang", datetime(2026, 3, 5, tzinfo=UTC), "https://kupangkota.go.id/s"
    )
    facts = Facts(answer=Answer(True, "Sampah diangkut pagi hari.", [cit]))
    _, replies = respond(S, Route(Need.answer, text="sampah"), facts, message_id=42, new_session="x")
    assert "Pemkot Kupang, 5 Maret 2026" in replies[0].text
    assert "https://kupangkota.go.id/s" in replies[0].text
    assert [b.data for b in replies[0].buttons] == ["abcd1234|fb1|42", "abcd1234|fb0|42"]


def test_no_answer_is_honest() -> None:
    _, replies = respond(
        S,
        Route(Need.answer, text="x"),
        Facts(answer=Answer(False, "", [])),
        message_id=1,
        new_session="x",
    )
    assert replies[0].text == messages.NO_INFO


def test_suggestions_remember_the_claim_and_only_offered_picks_are_valid() -> None:
    other = VerdictCandidate(9, "Bansos dicairkan lewat link WA", "PENIPUAN", "", None, None, score=0.5)
    rt = Route(Need.match, text="katanya air PDAM ada bakteri")
    state, replies = respond(
        S, rt, Facts(decision="suggest", candidates=[VERDICT, other]), message_id=5, new_session="x"
    )
    assert state["suggestions"] == [7, 9] and state["pending_claim"] == rt.text
    assert [b.data for b in replies[0].buttons] == ["abcd1234|pick|7", "abcd1234|pick|9", "abcd1234|report|"]
    assert route(state, Incoming(button="abcd1234|pick|9"), None) == Route(Need.verdict, arg=9)
    assert route(state, Incoming(button="abcd1234|pick|8"), None).say == "stale"
    assert route(state, Incoming(button="abcd1234|report|"), None) == Route(Need.report, text=rt.text)


def test_delete_needs_confirmation_and_resets_state() -> None:
    state, replies = respond(
        S, route(S, Incoming(command="hapusdata"), None), Facts(), message_id=1, new_session="x"
    )
    assert state["mode"] == "confirm_delete"
    yes = replies[0].buttons[0].data
    assert route(S, Incoming(button=yes), None).say == "stale"  # not confirmable without the prompt
    rt = route(state, Incoming(button=yes), None)
    assert rt.need is Need.delete
    new_state, done = respond(state, rt, Facts(deleted=(3, 1, 0)), message_id=2, new_session="fresh")
    assert new_state == {"session": "fresh"} and "3 pesan" in done[0].text


def test_a_digests_unsubscribe_button_works_however_old_the_message() -> None:
    data = unsubscribe_data(42)  # no session in it: a week-old digest's button must still work
    for state in ({}, S, {"session": "ffff0000", "mode": "await_claim"}):
        rt = route(state, Incoming(button=data), None)
        assert rt.need is Need.unsubscribe
        new_state, replies = respond(state, rt, Facts(), message_id=1, new_session="n")
        assert replies == [Reply(messages.UNSUBSCRIBED)] and "mode" not in new_state
    assert route(S, Incoming(button="digest:subscribe:42"), None).say == "stale"


@given(
    text=st.text(max_size=300),
    forwarded=st.booleans(),
    media=st.sampled_from([None, "photo", "voice", "sticker", "document", "location", "weird"]),
    mode=st.sampled_from([None, "await_claim", "await_question", "suggest", "confirm_delete"]),
    intent=st.sampled_from(
        ["greet", "help", "ask_info", "check_claim", "out_of_scope", "nlu_fallback", "unknown"]
    ),
    button=st.one_of(st.none(), st.text(max_size=40)),
)
@settings(max_examples=300, deadline=None)
def test_never_crashes_and_always_replies(text, forwarded, media, mode, intent, button) -> None:  # type: ignore[no-untyped-def]
    state = {"session": "abcd1234", "mode": mode, "suggestions": [1], "pending_claim": "x y z"}
    command, rest = parse_command(text)
    incoming = Incoming(text=rest, command=command, media=media, forwarded=forwarded, button=button)
    rt = route(state, incoming, Intent(intent, 0.9))
    facts = Facts(answer=Answer(False, "", []), decision="none", ask_count=1, candidates=[VERDICT])
    new_state, replies = respond(state, rt, facts, message_id=3, new_session="ffff0000")
    assert replies and all(r.text.strip() for r in replies)
    assert "session" in new_state


def test_key_replies_snapshot(snapshot) -> None:  # type: ignore[no-untyped-def]
    shown = {}
    for name, rt, facts in [
        ("start", Route(Need.nothing, say="start"), Facts()),
        ("verdict_auto", Route(Need.match, text="x"), Facts(decision="auto", candidates=[VERDICT])),
        ("ticket_new", Route(Need.match, text="x"), Facts(decision="none", ask_count=1)),
        ("ticket_joined", Route(Need.match, text="x"), Facts(decision="none", ask_count=4)),
        ("photo", Route(Need.nothing, say="media:photo"), Facts()),
        ("voice", Route(Need.nothing, say="media:voice"), Facts()),
    ]:
        _, replies = respond(S, rt, facts, message_id=1, new_session="ffff0000")
        shown[name] = [r.to_dict() for r in replies]
    shown["notification"] = messages.notification(
        "verdict", VERDICT.claim, "HOAKS", VERDICT.summary, VERDICT.url, VERDICT.published_at
    )
    assert shown == snapshot
