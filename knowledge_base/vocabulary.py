"""Closed sets of values shared by the tables and the command line.

Kept free of SQLAlchemy so `kabashoax --help` can offer them as choices without loading the ORM;
`knowledge_base.models` re-exports them.
"""

from __future__ import annotations

from enum import StrEnum


class SourceKind(StrEnum):
    media = "media"
    government = "government"
    factchecker = "factchecker"


class Role(StrEnum):
    checker = "checker"
    reviewer = "reviewer"
    comms = "comms"
    admin = "admin"
