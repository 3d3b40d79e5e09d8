"""Feed ingestion on real feed XML and a real local HTTP server: dedupe, hostile feeds, conditional GET."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser
import pytest
from sqlmodel import Session, col, select

from knowledge_base.feeds import (
    FeedError,
    canonical_url,
    fetch_feed,
    ingest_due,
    ingest_file,
    ingest_samples,
    ingest_source,
    ingest_sources,
    new_client,
)
from knowledge_base.models import Article, Passage, Source
from knowledge_base.settings import get_settings
from knowledge_base.sources import add_source

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
REAL_FEEDS = sorted(
    (Path(__file__).resolve().parents[2] / "shared" / "data" / "feeds").glob("*.xml")
) or sorted(Path("/work/shared/data/feeds").glob("*.xml"))

Route = Callable[[BaseHTTPRequestHandler], None]


# --------------------------------------------------------------------------- a real HTTP server


def respond(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return route


class FeedServer:
    """Scripted routes on 127.0.0.1; remembers the headers of every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path, respond(404, b"not found"))
                with contextlib.suppress(
                    BrokenPipeError, ConnectionResetError
                ):  # limits make clients hang up
                    route(self)

            def log_message(self, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    srv = FeedServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A 1 MB size limit and a 0.5 s timeout, so hostile servers are quick to test."""
    monkeypatch.setenv("FEED_MAX_BYTES", "1000000")
    monkeypatch.setenv("FEED_TIMEOUT_S", "0.5")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def make_source(session: Session, name: str, url: str | None = None) -> Source:
    return add_source(name, feed_url=url, outlet=name.title(), session=session)


def articles_of(session: Session, source: Source) -> list[Article]:
    return list(
        session.exec(select(Article).where(Article.source_id == source.id).order_by(Article.id)).all()
    )


# --------------------------------------------------------------------------- real feeds


@pytest.mark.parametrize("path", REAL_FEEDS, ids=lambda p: p.stem)
def test_every_real_feed_ingests_with_clean_text_and_reingest_adds_nothing(
    session: Session, path: Path
) -> None:
    assert len(REAL_FEEDS) == 4, "the shared real feeds are missing"
    source = make_source(session, "real")
    expected = feedparser.parse(path.read_bytes()).entries

    report = ingest_file(path, source, session=session)

    assert (report.status, report.error, report.skipped) == ("ok", None, 0)
    articles = articles_of(session, source)
    assert report.new_articles == len(articles) == len(expected) > 0
    assert [a.title for a in articles] == [" ".join(e.title.split()) for e in expected]
    for article in articles:
        assert article.url.startswith(("http://", "https://")) and article.guid
        assert article.published_at is not None and article.published_at.tzinfo is not None
        assert datetime(2015, 1, 1, tzinfo=UTC) < article.published_at < datetime(2027, 1, 1, tzinfo=UTC)
        assert article.text and len(article.content_hash) == 64
        for dirt in ("<", "&nbsp;", "&lt;", "&#", "\r", "\u00a0"):
            assert dirt not in article.text and dirt not in article.title, (dirt, article.url)
        passages = session.exec(
            select(Passage).where(Passage.article_id == article.id).order_by(Passage.position)
        ).all()
        assert [p.position for p in passages] == list(range(len(passages))) and passages
        assert all(p.embedding is None for p in passages)
        assert passages[0].text.startswith(article.title)  # titles are searchable, not just shown
        assert passages[-1].text.split()[-1] == article.text.split()[-1]
        assert max(len(p.text.split()) for p in passages) <= get_settings().passage_words
    assert source.last_ok_at is not None and source.error_count == 0 and source.last_error is None

    again = ingest_file(path, source, session=session)
    assert (again.new_articles, again.new_passages, again.duplicates) == (0, 0, len(expected))
    assert len(articles_of(session, source)) == len(expected)


def test_real_feed_fields_are_read_exactly(session: Session, shared_data: Path) -> None:
    antara = make_source(session, "antara-jambi")
    ingest_file(shared_data / "feeds" / "antara_jambi_terkini_2022.xml", antara, session=session)
    first = articles_of(session, antara)[0]
    assert first.title == "Malisya Deslilian lulus Fakultas Kedokteran Unisba pada usia 20 tahun"
    assert first.published_at == datetime(2022, 8, 28, 14, 39, 36, tzinfo=UTC)  # 21:39:36 +0700
    assert first.url == (
        "https://jambi.antaranews.com/berita/519381/malisya-deslilian-lulus-fakultas-kedokteran-unisba-pada-usia-20-tahun"
    )
    assert first.text.startswith(
        "Malisya Desilian Triningrum menjadi wisudawan termuda Universitas Islam Bandung"
    )

    tempo = make_source(session, "tempo")
    ingest_file(shared_data / "feeds" / "tempo_cekfakta_processed.xml", tempo, session=session)
    keliru = articles_of(session, tempo)[2]
    assert (keliru.guid, keliru.title) == ("3", "Keliru: Rupiah Sengaja Dilemahkan oleh Bank Indonesia")
    assert keliru.text.startswith("Tidak ada indikasi BI sengaja melakukan pelemahan rupiah.")

    antara2017 = make_source(session, "antara-2017")
    ingest_file(shared_data / "feeds" / "antara_terkini_2017.xml", antara2017, session=session)
    tennis = next(a for a in articles_of(session, antara2017) if "Petenis" in a.title)
    assert tennis.text.startswith("Biel (ANTARA News) – Petenis\nperingkat 233 dunia, Marketa Vondrousova")


def test_the_same_story_from_another_source_is_stored_once(session: Session, shared_data: Path) -> None:
    feed = shared_data / "feeds" / "detikcom_2017.xml"
    first, second = make_source(session, "detik"), make_source(session, "detik-mirror")
    assert ingest_file(feed, first, session=session).new_articles == 10
    report = ingest_file(feed, second, session=session)
    assert (report.new_articles, report.duplicates) == (0, 10)
    assert articles_of(session, second) == []


def rss(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title>'
        "<link>https://kabar.example.id/</link>" + "".join(items) + "</channel></rss>"
    ).encode()


def item(
    guid: str, link: str, title: str, body: str = "Isi berita.", date: str = "Mon, 02 Mar 2026 10:00:00 +0800"
) -> str:
    return (
        f"<item><guid>{guid}</guid><link>{link}</link><title>{title}</title>"
        f"<pubDate>{date}</pubDate><description>{body}</description></item>"
    )


def test_duplicates_by_url_and_content_within_one_feed_and_across_runs(session: Session) -> None:
    source = make_source(session, "kabar", "https://kabar.example.id/rss")
    feed = rss(
        item("a", "https://kabar.example.id/1?utm_source=rss", "Air PDAM mati", "Air mati di Oebobo."),
        item("b", "https://KABAR.example.id/1#komentar", "Judul lain", "Beda."),  # same canonical URL
        item("c", "https://kabar.example.id/salinan", "AIR PDAM  mati", "air mati di  oebobo."),  # same text
        item("d", "https://kabar.example.id/2", "Jalan ditutup", "Jalan El Tari ditutup."),
    )
    report = ingest_source(source, session=session, content=feed)
    assert (report.new_articles, report.updated, report.duplicates) == (2, 0, 2)
    assert [a.url for a in articles_of(session, source)] == [
        "https://kabar.example.id/1",
        "https://kabar.example.id/2",
    ]
    again = ingest_source(source, session=session, content=feed)
    assert (again.new_articles, again.updated, again.duplicates) == (0, 0, 4)


def test_a_reused_guid_never_overwrites_another_article(session: Session) -> None:
    """Feeds that number their items (guid 1, 2, ...) reuse guids for new stories."""
    source = make_source(session, "tempo", "https://tempo.example.id/rss")
    ingest_source(
        source, session=session, content=rss(item("1", "https://tempo.example.id/a", "Cerita A", "A."))
    )
    report = ingest_source(
        source, session=session, content=rss(item("1", "https://tempo.example.id/b", "Cerita B", "B."))
    )
    assert (report.new_articles, report.updated) == (1, 0)
    first, second = articles_of(session, source)
    assert (first.title, first.text, second.title, second.text) == ("Cerita A", "A.", "Cerita B", "B.")
    assert second.guid == "https://tempo.example.id/b" != first.guid


def test_a_corrected_item_replaces_its_text_and_passages(session: Session) -> None:
    source = make_source(session, "tempo", "https://tempo.example.id/rss")
    before = rss(item("7", "https://tempo.example.id/cek/7", "Keliru: Air PDAM beracun", "Belum ada bukti."))
    after = rss(item("7", "https://tempo.example.id/cek/7", "Keliru: Air PDAM beracun", "Uji lab: air aman."))
    ingest_source(source, session=session, content=before)
    (article,) = articles_of(session, source)
    old_passages = session.exec(select(Passage.id).where(Passage.article_id == article.id)).all()

    report = ingest_source(source, session=session, content=after)

    assert (report.new_articles, report.updated, report.duplicates) == (0, 1, 0)
    (updated,) = articles_of(session, source)
    assert updated.id == article.id and updated.text == "Uji lab: air aman."
    texts = session.exec(select(Passage.text).where(Passage.article_id == article.id)).all()
    assert texts == ["Keliru: Air PDAM beracun Uji lab: air aman."]
    assert min(session.exec(select(Passage.id).where(Passage.article_id == article.id)).all()) > max(
        old_passages
    )
    assert not set(old_passages) & set(session.exec(select(Passage.id)).all())  # ids never reused
    assert ingest_source(source, session=session, content=after).updated == 0  # unchanged: left alone


def test_unusable_entries_are_skipped_and_future_dates_dropped(session: Session) -> None:
    source = make_source(session, "kabar", "https://kabar.example.id/rss")
    feed = rss(
        "<item><title>Tanpa tautan</title><description>Tidak bisa dikutip.</description></item>",
        item("x", "javascript:alert(1)", "Tautan jahat"),
        item("y", "/berita/relatif", "Tautan relatif", date="Fri, 01 Jan 2100 00:00:00 +0000"),
    )
    report = ingest_source(source, session=session, content=feed)
    assert (report.new_articles, report.skipped) == (1, 2)
    (article,) = articles_of(session, source)
    assert article.url == "https://kabar.example.id/berita/relatif" and article.published_at is None


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "HTTPS://Kupang.Tribunnews.com:443/a?utm_source=x&id=7&fbclid=1#top",
            "https://kupang.tribunnews.com/a?id=7",
        ),
        ("http://a.id", "http://a.id/"),
        ("http://a.id:8080/x?", "http://a.id:8080/x"),
        ("mailto:redaksi@a.id", None),
        ("/relatif", None),
        ("http://[::1", None),
    ],
)
def test_canonical_url(url: str, canonical: str | None) -> None:
    assert canonical_url(url) == canonical


# --------------------------------------------------------------------------- hostile feeds


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("invalid_xml.xml", "not a readable feed"),
        ("html_page.html", "not a feed"),
        ("empty.xml", "empty response"),
    ],
)
def test_a_feed_that_cannot_be_read_is_recorded_on_its_source(
    session: Session, fixture: str, message: str
) -> None:
    source = make_source(session, "broken")
    report = ingest_file(FIXTURES / fixture, source, session=session)
    assert report.status == "error" and message in (report.error or "")
    assert message in (source.last_error or "") and source.error_count == 1
    assert source.last_polled_at is not None and source.last_ok_at is None
    assert articles_of(session, source) == []
    ingest_file(FIXTURES / fixture, source, session=session)
    assert source.error_count == 2  # counts failures in a row (drives the back-off)


def test_wrong_declared_encoding_is_read_correctly_with_a_warning(session: Session) -> None:
    source = make_source(session, "kabar")
    report = ingest_file(FIXTURES / "wrong_encoding.xml", source, session=session)
    assert report.status == "warning" and "CharacterEncodingOverride" in (source.last_error or "")
    assert source.error_count == 0 and source.last_ok_at is not None
    (article,) = articles_of(session, source)
    assert article.title == "Café di Kupang dibuka kembali – © Kabar Kota"
    assert article.text == "Pemilik café mengatakan pengunjung ramai."
    assert article.url == "https://kabar.example.id/berita/cafe-kupang"


def test_a_truncated_feed_keeps_its_complete_items_with_a_warning(session: Session) -> None:
    source = make_source(session, "tempo")
    report = ingest_file(FIXTURES / "truncated_tempo_cekfakta.xml", source, session=session)
    assert report.status == "warning" and "malformed feed, 4 items recovered" in (source.last_error or "")
    assert [a.guid for a in articles_of(session, source)] == ["1", "2", "3", "4"]


def test_a_body_naming_a_local_file_is_parsed_as_data_not_opened(session: Session, tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_bytes(rss(item("s", "https://secret.example/1", "Rahasia server")))
    source = make_source(session, "evil", "https://evil.example/rss")
    report = ingest_source(source, session=session, content=str(secret).encode())
    assert report.status == "error"
    assert session.exec(select(Article).where(Article.title == "Rahasia server")).first() is None


def test_a_saved_feed_over_the_size_limit_is_refused(
    session: Session, tmp_path: Path, small_limits: None
) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(rss(item("a", "https://a.id/1", "Besar", "kata " * 300_000)))
    source = make_source(session, "big")
    report = ingest_file(big, source, session=session)
    assert report.status == "error" and "too large" in (source.last_error or "")
    assert articles_of(session, source) == []


# --------------------------------------------------------------------------- over HTTP


def stream_forever(chunk: bytes, total: int, pause: float = 0.0, length: int | None = None) -> Route:
    """Send `total` bytes in chunks (optionally slowly), with or without a Content-Length."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        if length is not None:
            handler.send_header("Content-Length", str(length))
        handler.end_headers()
        sent = 0
        while sent < total:
            handler.wfile.write(chunk)
            handler.wfile.flush()
            sent += len(chunk)
            if pause:
                time.sleep(pause)

    return route


def slow(delay: float) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(delay)
        respond(200, rss())(handler)

    return route


def test_broken_and_hostile_feeds_never_stop_the_others(
    session: Session, server: FeedServer, small_limits: None
) -> None:
    good = rss(
        *(item(f"g{n}", f"https://good.example.id/{n}", f"Berita baik {n}", f"Isi {n}.") for n in range(3))
    )
    twenty_mb = 20 * 1024 * 1024
    server.routes.update(
        {
            "/good": respond(200, good, {"Content-Type": "application/rss+xml"}),
            "/huge": stream_forever(b"<!-- padding -->" * 4096, twenty_mb),
            "/huge-declared": stream_forever(b"<!-- padding -->" * 4096, twenty_mb, length=twenty_mb),
            "/html": respond(200, (FIXTURES / "html_page.html").read_bytes(), {"Content-Type": "text/html"}),
            "/invalid": respond(200, (FIXTURES / "invalid_xml.xml").read_bytes()),
            "/empty": respond(200, b""),
            "/error": respond(500, b"Internal Server Error"),
            "/slow": slow(3.0),
        }
    )
    expected = {
        "a-huge": "too large",
        "b-huge-declared": "too large",
        "c-html": "not a feed",
        "d-invalid": "not a readable feed",
        "e-empty": "empty response",
        "f-error": "HTTP 500",
        "g-slow": "timed out",
        "h-gone": "HTTP 404",
        "i-refused": "network error: ConnectError",
    }
    for name in expected:
        path = "/" + name.split("-", 1)[1]
        make_source(session, name, server.url(path) if name != "i-refused" else "http://127.0.0.1:9/rss")
    make_source(session, "c-good", server.url("/good"))

    started = time.monotonic()
    reports = {r.source: r for r in ingest_due(session=session)}
    elapsed = time.monotonic() - started

    assert reports["c-good"].status == "ok" and reports["c-good"].new_articles == 3
    for name, message in expected.items():
        source = session.exec(select(Source).where(Source.name == name)).one()
        assert reports[name].status == "error", name
        assert message in (source.last_error or ""), (name, source.last_error)
        assert source.error_count == 1 and articles_of(session, source) == []
    assert elapsed < 10, "limits must cut hostile servers short"


def test_an_unexpected_failure_in_one_source_does_not_stop_the_next(
    session: Session, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import knowledge_base.feeds as feeds

    real_store = feeds.store_items

    def store_or_crash(
        source: Source, items: list[feeds.FeedItem], *, session: Session, **kwargs: object
    ) -> feeds.IngestReport:
        if source.name == "a-crash":
            raise RuntimeError("bug met by this feed")
        return real_store(source, items, session=session, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(feeds, "store_items", store_or_crash)  # fault injection: a bug, not a component
    server.routes["/a"] = respond(200, rss(item("1", "https://a.example.id/1", "Satu", "Berita A.")))
    server.routes["/b"] = respond(200, rss(item("2", "https://b.example.id/2", "Dua", "Berita B.")))
    crash, fine = (
        make_source(session, "a-crash", server.url("/a")),
        make_source(session, "b-fine", server.url("/b")),
    )
    reports = ingest_sources([crash, fine], session=session)
    assert [r.status for r in reports] == ["error", "ok"]
    assert "internal error: RuntimeError: bug met by this feed" in (crash.last_error or "")
    assert [a.title for a in articles_of(session, fine)] == ["Dua"]


def test_a_real_feed_over_http(session: Session, server: FeedServer, shared_data: Path) -> None:
    body = (shared_data / "feeds" / "antara_jambi_terkini_2022.xml").read_bytes()
    server.routes["/rss/terkini.xml"] = respond(200, body, {"Content-Type": "text/xml; charset=UTF-8"})
    source = make_source(session, "antara", server.url("/rss/terkini.xml"))
    report = ingest_source(source, session=session)
    assert (report.status, report.new_articles) == ("ok", 20)
    assert server.headers_of("/rss/terkini.xml")[0]["User-Agent"].startswith("Kabashoax/")
    assert source.etag is None and source.last_ok_at is not None  # this server sends no validators


def test_the_size_limit_stops_reading_early(server: FeedServer, small_limits: None) -> None:
    server.routes["/huge"] = stream_forever(b"x" * 65536, 20 * 1024 * 1024)
    started = time.monotonic()
    with new_client() as client, pytest.raises(FeedError, match="more than 1000000 bytes"):
        fetch_feed(server.url("/huge"), client=client)
    assert time.monotonic() - started < 5


def test_a_trickling_server_is_cut_at_the_overall_deadline(server: FeedServer, small_limits: None) -> None:
    server.routes["/trickle"] = stream_forever(b"<", 200, pause=0.05)  # each read is quick, the whole is not
    with new_client() as client, pytest.raises(FeedError, match="still downloading"):
        fetch_feed(server.url("/trickle"), client=client)


def test_conditional_get_stores_validators_and_handles_304(session: Session, server: FeedServer) -> None:
    state = {"etag": '"v1"', "items": [item("1", "https://kabar.example.id/1", "Satu")]}
    modified = "Mon, 02 Mar 2026 10:00:00 GMT"

    def feed(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("If-None-Match") == state["etag"]:
            respond(304, headers={"ETag": state["etag"]})(handler)
        else:
            respond(200, rss(*state["items"]), {"ETag": state["etag"], "Last-Modified": modified})(handler)

    server.routes["/rss"] = feed
    source = make_source(session, "kabar", server.url("/rss"))

    first = ingest_source(source, session=session)
    assert (first.status, first.new_articles) == ("ok", 1)
    assert (source.etag, source.last_modified) == ('"v1"', modified)
    assert "If-None-Match" not in server.headers_of("/rss")[0]

    second = ingest_source(source, session=session)
    sent = server.headers_of("/rss")[1]
    assert (sent["If-None-Match"], sent["If-Modified-Since"]) == ('"v1"', modified)
    assert (second.status, second.new_articles) == ("not_modified", 0)
    assert source.error_count == 0 and source.last_polled_at is not None

    state["etag"] = '"v2"'
    state["items"].append(item("2", "https://kabar.example.id/2", "Dua"))
    third = ingest_source(source, session=session)
    assert (third.status, third.new_articles, third.duplicates) == ("ok", 1, 1)
    assert source.etag == '"v2"' and [a.title for a in articles_of(session, source)] == ["Satu", "Dua"]


def test_a_recovered_source_clears_its_error(session: Session, server: FeedServer) -> None:
    server.routes["/rss"] = respond(503)
    source = make_source(session, "kabar", server.url("/rss"))
    ingest_source(source, session=session)
    assert source.error_count == 1 and "HTTP 503" in (source.last_error or "")
    assert source.failing_since is not None and source.last_error_at == source.failing_since
    server.routes["/rss"] = respond(200, rss(item("1", "https://kabar.example.id/1", "Satu")))
    assert ingest_source(source, session=session).status == "ok"
    assert source.error_count == 0 and source.last_error is None and source.failing_since is None
    assert source.next_poll_at is not None and source.last_ok_at is not None
    assert 54 * 60 <= (source.next_poll_at - source.last_ok_at).total_seconds() <= 66 * 60  # 60 min +-10 %


def test_a_source_failing_for_a_day_logs_an_error_at_each_failed_poll(
    session: Session, server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/rss"] = respond(500)
    source = make_source(session, "mati", server.url("/rss"))
    ingest_source(source, session=session)
    first = source.failing_since
    assert first is not None and not [r for r in caplog.records if r.levelname == "ERROR"]
    source.failing_since = first - timedelta(hours=25)  # the first failure was a day ago
    ingest_source(source, session=session)
    assert source.failing_since == first - timedelta(hours=25)  # the streak keeps its start
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].startswith("source mati has been failing for 25 h")
    # Two failures in a row: the next try waits 4 intervals (+-10 %).
    assert source.next_poll_at and source.last_polled_at
    assert 3.6 <= (source.next_poll_at - source.last_polled_at) / timedelta(hours=1) <= 4.4


# --------------------------------------------------------------------------- bundled samples


def test_bundled_samples_load_offline_and_only_once(session: Session) -> None:
    first = ingest_samples(session=session)
    assert [(r.source, r.status) for r in first] == [
        ("sample-antara-jambi", "ok"),
        ("sample-antara", "ok"),
        ("sample-detikcom", "ok"),
        ("sample-tempo-cekfakta", "ok"),
    ]
    samples = session.exec(select(Source).where(col(Source.name).startswith("sample-"))).all()
    assert sum(len(articles_of(session, s)) for s in samples) == 20 + 20 + 10 + 9
    second = ingest_samples(session=session)
    assert sum(r.new_articles for r in second) == 0
    tempo = next(s for s in samples if s.name == "sample-tempo-cekfakta")
    assert (tempo.outlet, tempo.kind, tempo.feed_url) == ("Tempo Cek Fakta", "factchecker", None)
