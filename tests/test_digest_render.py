"""A digest as subscribers read it: Telegram text and buttons, WhatsApp text or template, plain text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from knowledge_base import digest_render as r
from knowledge_base.digest_settings import get_digest_settings

START = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # 2 March 00:00 in Kupang
END = datetime(2026, 3, 8, 16, 0, tzinfo=UTC)  # 9 March 00:00 in Kupang


@pytest.fixture(autouse=True)
def public_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://cekfakta.kupangkota.go.id/")
    get_digest_settings.cache_clear()
    yield
    get_digest_settings.cache_clear()


def entry(n: int, claim: str = "Air PDAM Kupang tercemar racun", rating: str = "HOAKS") -> r.DigestEntry:
    return r.DigestEntry(
        number=n,
        verdict_id=100 + n,
        rating=rating,
        claim=claim,
        line="Hasil uji laboratorium PDAM normal.",
        url=r.verdict_url(100 + n),
        checked_by="turnbackhoax.id (Mafindo)" if n == 2 else None,
    )


def make_view(entries: list[r.DigestEntry], **fields: object) -> r.DigestView:
    values: dict[str, object] = {
        "id": 7,
        "status": "published",
        "title": "Kabar Cek Fakta Kupang",
        "period": r.period_label(START, END),
        "intro": "Halo warga Kupang!",
        "outro": "Salam kabas hoaks.",
        "entries": entries,
        "url": r.digest_url(7),
        "published_at": END,
        "period_start": START,
        "period_end": END,
        **fields,
    }
    return r.DigestView(**values)  # type: ignore[arg-type]


def test_period_labels_in_kupang_time() -> None:
    assert r.period_label(START, END) == "2–8 Maret 2026"
    assert r.period_label(datetime(2026, 2, 25, tzinfo=UTC), END) == "25 Februari – 8 Maret 2026"
    assert r.period_label(datetime(2025, 12, 28, tzinfo=UTC), END) == "28 Desember 2025 – 8 Maret 2026"
    assert r.period_label(START, datetime(2026, 3, 2, 10, tzinfo=UTC)) == "2 Maret 2026"


def test_one_line_is_the_first_sentence_cut_at_a_word() -> None:
    assert r.one_line("Hasil uji lab normal. PDAM menyatakan air aman.") == "Hasil uji lab normal."
    long = "kata " * 80
    line = r.one_line(long, 50)
    assert len(line) <= 50 and line.endswith("…") and "  " not in line


def test_telegram_message_has_the_entries_and_the_buttons() -> None:
    msg = r.telegram(make_view([entry(1), entry(2, "Lowongan dapur MBG", "PENIPUAN"), entry(3)]))
    assert msg.text.startswith("KABAR CEK FAKTA KUPANG\n2–8 Maret 2026")
    assert "1. HOAKS: Air PDAM Kupang tercemar racun" in msg.text
    assert "(diperiksa turnbackhoax.id (Mafindo))" in msg.text
    assert "https://cekfakta.kupangkota.go.id/cek-fakta/101" in msg.text
    assert msg.text.rstrip().endswith("Berhenti langganan: kirim /berhenti")
    markup = msg.reply_markup()
    rows = markup["inline_keyboard"]
    assert [b["text"] for b in rows[0]] == ["1. HOAKS", "2. PENIPUAN"]
    assert rows[0][0]["url"] == "https://cekfakta.kupangkota.go.id/cek-fakta/101"
    assert rows[-2] == [{"text": "Baca di web", "url": "https://cekfakta.kupangkota.go.id/kabar/7"}]
    assert rows[-1] == [{"text": "Berhenti langganan", "callback_data": "digest:unsub:7"}]
    assert len(rows[-1][0]["callback_data"].encode()) <= 64
    json.dumps(markup)  # what the Bot API receives


def test_the_channel_post_has_no_unsubscribe() -> None:
    msg = r.telegram(make_view([entry(1)]), channel=True)
    assert "/berhenti" not in msg.text
    assert all("callback_data" not in b for row in msg.reply_markup()["inline_keyboard"] for b in row)


def test_a_long_digest_fits_one_telegram_message_and_points_to_the_web() -> None:
    claim = "Pesan berantai yang sangat panjang tentang bantuan tunai dari pemerintah kota " * 6
    view = make_view(
        [entry(n, claim) for n in range(1, 21)], intro="Pembuka. " * 100, outro="Penutup. " * 100
    )
    msg = r.telegram(view)
    assert len(msg.text) <= r.TELEGRAM_LIMIT
    assert "https://cekfakta.kupangkota.go.id/kabar/7" in msg.text
    shown = sum(1 for n in range(1, 21) if f"/cek-fakta/{100 + n}\n" in msg.text + "\n")
    verdict_buttons = [b for row in msg.keyboard[:-2] for b in row]
    assert len(verdict_buttons) == shown >= 1
    if shown < 20:
        assert f"…dan {20 - shown} kabar lain" in msg.text


def test_a_correction_says_what_it_corrects() -> None:
    ref = r.CorrectionRef(3, "Kabar Cek Fakta Kupang, 23 Februari – 1 Maret 2026", r.digest_url(3))
    text = r.plain_text(make_view([entry(1)], correction_of=ref, correction_note="Nomor 1 salah tanggal."))
    assert "KOREKSI atas Kabar Cek Fakta Kupang, 23 Februari – 1 Maret 2026: Nomor 1 salah tanggal." in text
    assert "/berhenti" not in text


def test_whatsapp_inside_the_window_is_free_text() -> None:
    msg = r.whatsapp(make_view([entry(1)]), inside_window=True)
    assert msg.kind == "text" and "/berhenti" in msg.text
    assert msg.graph_body() == {"type": "text", "text": {"body": msg.text, "preview_url": False}}


def test_whatsapp_outside_the_window_is_the_configured_template(monkeypatch: pytest.MonkeyPatch) -> None:
    view = make_view([entry(1, "Air PDAM\nKupang    tercemar\tracun"), entry(2)])
    msg = r.whatsapp(view, inside_window=False)
    assert (msg.kind, msg.template, msg.language) == ("template", "kabar_cek_fakta", "id")
    assert msg.params == [
        "2–8 Maret 2026",
        "2",
        "HOAKS – Air PDAM Kupang tercemar racun",
        "https://cekfakta.kupangkota.go.id/kabar/7",
    ]
    assert all("\n" not in p and "\t" not in p and "     " not in p for p in msg.params)
    assert msg.text.startswith("Kabar Cek Fakta Kupang 2–8 Maret 2026: 2 kabar sudah kami periksa.")
    body = msg.graph_body()["template"]
    assert body["name"] == "kabar_cek_fakta" and body["language"] == {"code": "id"}
    assert body["components"][0]["parameters"][2] == {"type": "text", "text": msg.params[2]}
    assert body["components"][1] == {
        "type": "button",
        "sub_type": "quick_reply",
        "index": "0",
        "parameters": [{"type": "payload", "payload": "digest:unsub:7"}],
    }

    monkeypatch.setenv("DIGEST_WHATSAPP_TEMPLATE", "ringkasan_mingguan")
    monkeypatch.setenv("DIGEST_WHATSAPP_TEMPLATE_PARAMS", '["title", "link"]')
    monkeypatch.setenv("DIGEST_WHATSAPP_TEMPLATE_BODY", "{{1}} terbit: {{2}}")
    monkeypatch.setenv("DIGEST_WHATSAPP_UNSUBSCRIBE_BUTTON", "false")
    get_digest_settings.cache_clear()
    msg = r.whatsapp(view, inside_window=False)
    assert msg.template == "ringkasan_mingguan"
    assert msg.text == "Kabar Cek Fakta Kupang terbit: https://cekfakta.kupangkota.go.id/kabar/7"
    assert len(msg.graph_body()["template"]["components"]) == 1


def test_an_empty_template_parameter_is_never_sent_empty() -> None:
    msg = r.whatsapp(make_view([], intro=""), inside_window=False)
    assert "" not in msg.params and msg.params[2] == "-"


def test_a_verdict_post_for_the_channel() -> None:
    post = r.verdict_post(12, "Air PDAM tercemar", "HOAKS", "Uji lab normal.", END)
    assert post.text.startswith("CEK FAKTA: HOAKS") and "Diperiksa 9 Maret 2026" in post.text
    assert post.reply_markup()["inline_keyboard"] == [
        [{"text": "Baca selengkapnya", "url": "https://cekfakta.kupangkota.go.id/cek-fakta/12"}]
    ]


def test_links_follow_the_public_base_url() -> None:
    assert r.short_link(12) == "cekfakta.kupangkota.go.id/c/12"


def test_unsafe_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("PUBLIC_BASE_URL", "javascript:alert(1)"),
        ("DIGEST_DAY_OF_WEEK", "someday"),
        ("DIGEST_TIME", "25:00"),
        ("DIGEST_WHATSAPP_TEMPLATE_PARAMS", '["phone"]'),
    ):
        with monkeypatch.context() as m:
            m.setenv(name, value)
            get_digest_settings.cache_clear()
            with pytest.raises(ValueError):
                get_digest_settings()
    get_digest_settings.cache_clear()
