"""Where the real test databases and data are, and a session factory over a test's own session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlmodel import Session

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
if not SHARED_DATA.exists():  # CI lays shared/ beside the clone; a developer may point elsewhere
    SHARED_DATA = Path(os.environ.get("KABASHOAX_SHARED_DATA", "/work/shared/data"))
POSTGRES_URL = os.environ.get(
    "KABASHOAX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def reusing(session: Session) -> Callable[[], AbstractContextManager[Session]]:
    """A session factory (`bot.delivery.SessionFactory`) that hands out the test's one open session,
    rolled back at the end of the test, to code that opens its own sessions (bot core, notifier)."""

    @contextmanager
    def factory() -> Iterator[Session]:
        yield session
        session.commit()

    return factory
