"""Backup and restore of the system of record: the database, in one archive file.

The archive (`.tar.gz`) holds `manifest.json` (backend, schema revision, embedding model, row counts)
and the database: an SQLite copy made with SQLite's online backup API (consistent while the service
runs), or a `pg_dump --format=custom` of the database's schema. Search index files are not included:
they are caches of the vectors stored on the rows and `restore` rebuilds them without re-embedding.
Secrets (`KABASHOAX_SECRET_KEY`, which also keys citizens' pseudonyms) are not in it: keep the `.env`
file safe separately.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from knowledge_base.db import describe, engine_for, migrate, schema_revisions
from knowledge_base.settings import get_settings

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite3"
PG_MEMBER = "database.pgdump"
# Tables whose row counts are recorded and checked after a restore.
COUNTED = ("source", "article", "passage", "verdict", "verdicttext", "claim", "citizen", "notification")


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass
class Manifest:
    backend: str
    revision: str | None
    created_at: str
    embedding_model: str
    counts: dict[str, int]
    schema: str | None = None
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2)


def row_counts(url: str) -> dict[str, int]:
    engine = engine_for(url)
    tables = set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        return {
            t: int(conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar() or 0)
            for t in COUNTED
            if t in tables
        }


# --------------------------------------------------------------------------- backup


def backup(dest: Path, *, url: str | None = None, now: datetime | None = None) -> tuple[Path, Manifest]:
    """Write a backup archive to `dest` (a file, or a directory to put a dated file in)."""
    url = url or get_settings().sqlalchemy_url
    now = now or datetime.now().astimezone()
    if dest.is_dir():
        dest = dest / f"kabashoax-backup-{now:%Y%m%d-%H%M%S}.tar.gz"
    dest.parent.mkdir(parents=True, exist_ok=True)
    revision, _ = schema_revisions(url)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".backup-") as tmp:
        work = Path(tmp)
        if url.startswith("sqlite"):
            member, schema = SQLITE_MEMBER, None
            _sqlite_copy(_sqlite_path(url), work / member)
        elif url.startswith("postgresql"):
            member, schema = PG_MEMBER, _pg_schema(url)
            _run(
                [
                    "pg_dump",
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--schema={schema}",
                    f"--file={work / member}",
                ],
                url,
            )
        else:
            raise BackupError(f"cannot back up {describe(url)}: only SQLite and PostgreSQL are supported")
        manifest = Manifest(
            backend="sqlite" if schema is None else "postgresql",
            revision=revision,
            created_at=now.isoformat(timespec="seconds"),
            embedding_model=get_settings().embedding_model,
            counts=row_counts(url),
            schema=schema,
        )
        (work / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        partial = dest.with_name(dest.name + ".partial")
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(work / MANIFEST, arcname=MANIFEST)
            archive.add(work / member, arcname=member)
        os.replace(partial, dest)
    return dest, manifest


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy even while other processes write (WAL included)."""
    if not source.exists():
        raise BackupError(f"no database at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        check = dst.execute("PRAGMA integrity_check").fetchone()
        if not check or check[0] != "ok":
            raise BackupError(f"the copy of {source} failed its integrity check: {check}")
    finally:
        dst.close()
        src.close()


# --------------------------------------------------------------------------- restore


def read_manifest(archive_path: Path) -> Manifest:
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            handle = archive.extractfile(MANIFEST)
            if handle is None:
                raise KeyError(MANIFEST)
            data: dict[str, Any] = json.loads(handle.read())
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupError(f"{archive_path} is not a Kabashoax backup ({type(exc).__name__}: {exc})") from exc
    if data.get("format") != FORMAT:
        raise BackupError(f"{archive_path}: backup format {data.get('format')} is not supported")
    return Manifest(**data)


def restore(archive_path: Path, *, url: str | None = None, force: bool = False) -> Manifest:
    """Restore an archive into the configured database (which must be empty unless `force`).

    Then migrates the schema to this version, checks the row counts against the manifest and clears
    the index directory (the caller rebuilds the indexes from the restored vectors).
    """
    url = url or get_settings().sqlalchemy_url
    manifest = read_manifest(archive_path)
    backend = "sqlite" if url.startswith("sqlite") else "postgresql" if url.startswith("postgresql") else None
    if backend != manifest.backend:
        raise BackupError(
            f"the backup is of a {manifest.backend} database; {describe(url)} is {backend or 'unsupported'} "
            "(set DATABASE_URL to a database of the same kind)"
        )
    with tempfile.TemporaryDirectory(prefix="kabashoax-restore-") as tmp:
        work = Path(tmp)
        member = SQLITE_MEMBER if backend == "sqlite" else PG_MEMBER
        with tarfile.open(archive_path, "r:gz") as archive:
            archive.extract(member, work, filter="data")
        if backend == "sqlite":
            _restore_sqlite(work / member, _sqlite_path(url), force=force)
        else:
            _restore_postgres(work / member, url, manifest, force=force)
    engine_for(url).dispose()  # no pooled connection may still see the replaced database
    counts = row_counts(url)
    if counts != {k: v for k, v in manifest.counts.items() if k in counts}:
        raise BackupError(f"restored row counts {counts} differ from the backup's {manifest.counts}")
    migrate(url)
    shutil.rmtree(get_settings().index_dir, ignore_errors=True)
    return manifest


def stored_rows(url: str) -> int:
    """Rows in every table but the schema version: 0 for a new or freshly migrated database."""
    engine = engine_for(url)
    tables = [t for t in sa.inspect(engine).get_table_names() if t != "alembic_version"]
    with engine.connect() as conn:
        return sum(int(conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar() or 0) for t in tables)


def _restore_sqlite(copy: Path, target: Path, *, force: bool) -> None:
    url = f"sqlite:///{target}"
    if target.exists():
        if stored_rows(url) and not force:
            raise BackupError(
                f"{target} already holds data: restore into an empty data dir, or --force to replace it "
                "(the old file is kept beside it)"
            )
        engine_for(url).dispose()
        aside = target.with_name(f"{target.name}.before-restore-{datetime.now():%Y%m%d-%H%M%S}")
        os.replace(target, aside)
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sqlite_copy(copy, target)


def _restore_postgres(dump: Path, url: str, manifest: Manifest, *, force: bool) -> None:
    schema = _pg_target_schema(url)
    if schema != manifest.schema:
        raise BackupError(
            f"the backup holds schema {manifest.schema!r} but {describe(url)} uses {schema!r}: "
            f"restore into a database whose search_path is {manifest.schema}"
        )
    engine = engine_for(url)
    if stored_rows(url) and not force:
        raise BackupError(
            f"schema {schema} of {describe(url)} already holds data: restore into an empty database, or "
            "--force to replace its contents"
        )
    with engine.begin() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).first()
        if exists and sa.inspect(conn).get_table_names():
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    listing = _run(["pg_restore", "--list", str(dump)], url, capture=True)
    if exists:  # the schema itself is there already (always so for public): restore only its contents
        skip = (f" SCHEMA - {schema} ", f" COMMENT - SCHEMA {schema} ")
        listing = "\n".join(line for line in listing.splitlines() if not any(m in line for m in skip))
    toc = dump.with_suffix(".list")
    toc.write_text(listing, encoding="utf-8")
    _run(
        [
            "pg_restore",
            "--exit-on-error",
            "--single-transaction",
            "--no-owner",
            "--no-privileges",
            f"--use-list={toc}",
            f"--dbname={_libpq_db(url)}",
            str(dump),
        ],
        url,
    )


# --------------------------------------------------------------------------- PostgreSQL helpers


def _pg_schema(url: str) -> str:
    with engine_for(url).connect() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
    if not schema:
        raise BackupError(f"{describe(url)} has no current schema (check its search_path)")
    return str(schema)


def _pg_target_schema(url: str) -> str:
    """The schema the app will use: the first search_path entry (it may not exist yet in an empty DB)."""
    with engine_for(url).connect() as conn:
        path = str(conn.execute(sa.text("SHOW search_path")).scalar() or "public")
    for entry in (p.strip().strip('"') for p in path.split(",")):
        if entry and entry != "$user":
            return entry
    return "public"


def _libpq_db(url: str) -> str:
    return make_url(url).database or ""


def _pg_env(url: str) -> dict[str, str]:
    """libpq settings for pg_dump/pg_restore from the URL (the password stays out of the process list)."""
    parsed = make_url(url)
    env = dict(os.environ)
    for var, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", str(parsed.port) if parsed.port else None),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGDATABASE", parsed.database),
    ):
        if value:
            env[var] = str(value)
    options = parsed.query.get("options")
    if options:
        env["PGOPTIONS"] = options if isinstance(options, str) else " ".join(options)
    return env


def _run(command: list[str], url: str, *, capture: bool = False) -> str:
    tool = shutil.which(command[0])
    if tool is None:
        raise BackupError(f"{command[0]} not found: install the PostgreSQL client tools (same major version)")
    result = subprocess.run(
        [tool, *command[1:]], env=_pg_env(url), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()[:2000]}")
    return result.stdout if capture else ""
