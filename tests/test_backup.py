"""`kabashoax backup` then `kabashoax restore` into an empty data dir gives back the same verdicts,
tickets and search results, on SQLite and on PostgreSQL (scratch databases, public schema)."""

from __future__ import annotations

import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select
from typer.testing import CliRunner, Result

from kabashoax.cli import app
from knowledge_base.db import session_scope
from knowledge_base.feeds import ingest_file
from knowledge_base.models import Citizen, CitizenReport, Claim, Verdict
from knowledge_base.search import search_passages, sync_passages
from knowledge_base.settings import get_settings
from knowledge_base.sources import SAMPLES_DIR, add_source
from knowledge_base.tickets import report_claim
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.slow

CSV = (
    "claim,rating,summary,url,published_at,source\n"
    "Air PDAM Kupang tercemar racun,HOAKS,PDAM menyatakan air aman diminum,https://cek.example.id/1,2026-01-05,Tim\n"
    "Vaksin mengandung chip pelacak,HOAKS,Tidak ada chip dalam vaksin,https://cek.example.id/2,2026-01-06,Tim\n"
)
QUERIES = ("vaksin", "banjir", "air PDAM Kupang")

Use = Callable[[Path, str | None], None]


def cli(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Iterator[Use]:
    """Point every session_scope() at a data dir and (optionally) a DATABASE_URL."""

    def point(data_dir: Path, database_url: str | None) -> None:
        monkeypatch.setenv("KABASHOAX_DATA_DIR", str(data_dir))
        if database_url:
            monkeypatch.setenv("DATABASE_URL", database_url)
        else:
            monkeypatch.delenv("DATABASE_URL", raising=False)
        get_settings.cache_clear()

    yield point
    get_settings.cache_clear()


def populate(tmp_path: Path) -> None:
    """A feed, two imported verdicts and a ticket asked about by a citizen, as the service makes them."""
    csv = tmp_path / "verdicts.csv"
    csv.write_text(CSV)
    cli("verdicts", "import", str(csv))
    with session_scope() as session:
        source = add_source("detik", feed_url=None, outlet="detikcom", session=session)
        assert ingest_file(SAMPLES_DIR / "detikcom_2017.xml", source, session=session).ok
        citizen = Citizen(channel="telegram", pseudonym="warga-backup", address="123456789")
        session.add(citizen)
        session.flush()
        report_claim(
            "Katanya jembatan Liliba mau ditutup total bulan depan",
            session=session,
            citizen_id=citizen.id,
            message_id=None,
        )
        session.commit()
        sync_passages(session)


def snapshot() -> dict[str, object]:
    """What a citizen and the fact team would see: verdicts, tickets with their asks, search results."""
    with session_scope() as session:
        verdicts = [
            (v.id, v.claim, v.rating, v.summary, v.url, v.status)
            for v in session.exec(select(Verdict).order_by(Verdict.id)).all()
        ]
        claims = [
            (c.id, c.text, c.status, c.ask_count) for c in session.exec(select(Claim).order_by(Claim.id))
        ]
        reports = [(r.claim_id, r.citizen_id, r.text) for r in session.exec(select(CitizenReport))]
        citizens = [(c.pseudonym, c.address) for c in session.exec(select(Citizen))]
        hits = {
            q: [(h.passage_id, h.title, h.url, h.score) for h in search_passages(q, k=5, session=session)]
            for q in QUERIES
        }
    return {"verdicts": verdicts, "claims": claims, "reports": reports, "citizens": citizens, "hits": hits}


def drill(tmp_path: Path, use: Use, source_db: str | None, target_db: str | None) -> None:
    use(tmp_path / "before", source_db)
    populate(tmp_path)
    before = snapshot()
    assert before["verdicts"] and before["claims"] and all(before["hits"].values())  # type: ignore[union-attr]

    archive = tmp_path / "backups"
    archive.mkdir()
    written = cli("backup", str(archive))
    [path] = list(archive.glob("kabashoax-backup-*.tar.gz"))
    assert str(path) in written.output.replace("\n", "")
    with tarfile.open(path) as tar:
        assert sorted(tar.getnames())[0] in ("database.pgdump", "database.sqlite3")

    use(tmp_path / "after", target_db)  # a new machine: empty data dir, empty database
    restored = cli("restore", str(path))
    assert "search index rebuilt" in restored.output
    assert snapshot() == before

    again = CliRunner().invoke(app, ["restore", str(path)])
    assert again.exit_code == 1 and "already holds data" in again.output
    cli("restore", str(path), "--force")
    assert snapshot() == before


def test_backup_and_restore_on_sqlite(tmp_path: Path, use: Use) -> None:
    drill(tmp_path, use, None, None)


@pytest.fixture
def scratch_databases() -> Iterator[Callable[[], str]]:
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def new() -> str:
        name = f"kbx_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return str(sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))

    yield new
    from knowledge_base.db import engine_for

    engine_for.cache_clear()  # drop pooled connections to the scratch databases
    with admin.connect() as conn:
        for name in made:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_backup_and_restore_on_postgres(
    tmp_path: Path, use: Use, scratch_databases: Callable[[], str]
) -> None:
    source, target = scratch_databases(), scratch_databases()
    cli_env_migrate(use, tmp_path, source)
    drill(tmp_path, use, source, target)


def cli_env_migrate(use: Use, tmp_path: Path, url: str) -> None:
    use(tmp_path / "before", url)
    cli("db", "upgrade")


def test_a_backup_of_another_kind_of_database_is_refused(tmp_path: Path, use: Use) -> None:
    use(tmp_path / "a", None)
    cli("db", "upgrade")
    cli("backup", str(tmp_path / "a.tar.gz"))
    use(tmp_path / "b", "postgresql://postgres@127.0.0.1:5432/test")
    refused = CliRunner().invoke(app, ["restore", str(tmp_path / "a.tar.gz")])
    assert refused.exit_code == 1 and "backup is of a sqlite database" in refused.output
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    junk = CliRunner().invoke(app, ["restore", str(tmp_path / "junk.tar.gz")])
    assert junk.exit_code == 1 and "is not a Kabashoax backup" in junk.output
