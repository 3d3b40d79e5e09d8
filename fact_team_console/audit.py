"""The audit trail: one AuditLog row for every change staff make, written in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from knowledge_base.models import AuditLog


def record(
    session: Session, user_id: int | None, action: str, entity: str, entity_id: int | None, **detail: Any
) -> AuditLog:
    """Add (not commit) an audit row, so the change and its record succeed or fail together."""
    row = AuditLog(user_id=user_id, action=action, entity=entity, entity_id=entity_id, detail=detail)
    session.add(row)
    return row


def recent(
    session: Session, *, entity: str | None = None, entity_id: int | None = None, limit: int = 200
) -> list[AuditLog]:
    query = select(AuditLog).order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc()).limit(limit)
    if entity is not None:
        query = query.where(AuditLog.entity == entity)
    if entity_id is not None:
        query = query.where(AuditLog.entity_id == entity_id)
    return list(session.exec(query))
