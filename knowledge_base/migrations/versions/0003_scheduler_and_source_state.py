"""scheduler leases and per-source polling state

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-02 15:00:00
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
import knowledge_base.models


revision: str = "0003"
down_revision: Union[str, None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "scheduledjob",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("next_run_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("lease_until", knowledge_base.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_started_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("source", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("next_poll_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_error_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("failing_since", knowledge_base.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_source_next_poll_at"), ["next_poll_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("source", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_source_next_poll_at"))
        batch_op.drop_column("failing_since")
        batch_op.drop_column("last_error_at")
        batch_op.drop_column("next_poll_at")
    op.drop_table("scheduledjob")
