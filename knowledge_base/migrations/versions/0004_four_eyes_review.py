"""four-eyes review: every writer of a verdict version, and corrections drafted before they are published

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-02 15:00:00.000000

Verdicts written before this revision recorded only their last saver (`verdict.author_id`); the
writers of their current version are taken from it and from the audit log (every draft, submit and
correction saved), so a draft already in review cannot be approved by someone who helped write it.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
import knowledge_base.models


revision: str = "0004"
down_revision: Union[str, None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "verdictcontributor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("verdict_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staffuser.id"]),
        sa.ForeignKeyConstraint(["verdict_id"], ["verdict.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("verdict_id", "version", "staff_id", name="uq_verdictcontributor_staff"),
    )
    with op.batch_alter_table("verdictcontributor", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_verdictcontributor_verdict_id"), ["verdict_id"], unique=False)

    op.create_table(
        "verdictcorrection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("verdict_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("claim", sa.Text(), nullable=False),
        sa.Column("rating", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("expires_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["author_id"], ["staffuser.id"]),
        sa.ForeignKeyConstraint(["reviewer_id"], ["staffuser.id"]),
        sa.ForeignKeyConstraint(["verdict_id"], ["verdict.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("verdict_id", "version", name="uq_verdictcorrection_version"),
    )
    with op.batch_alter_table("verdictcorrection", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_verdictcorrection_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_verdictcorrection_verdict_id"), ["verdict_id"], unique=False)

    op.execute(
        """
        INSERT INTO verdictcontributor (verdict_id, version, staff_id, created_at)
        SELECT v.id, v.version, w.staff_id, CURRENT_TIMESTAMP
        FROM verdict v
        JOIN (
            SELECT id AS verdict_id, author_id AS staff_id FROM verdict WHERE author_id IS NOT NULL
            UNION
            SELECT entity_id, user_id FROM auditlog
            WHERE entity = 'verdict'
              AND action IN ('verdict.draft', 'verdict.submit', 'verdict.correct')
              AND entity_id IS NOT NULL AND user_id IS NOT NULL
        ) w ON w.verdict_id = v.id
        JOIN staffuser s ON s.id = w.staff_id
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("verdictcorrection", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verdictcorrection_verdict_id"))
        batch_op.drop_index(batch_op.f("ix_verdictcorrection_status"))

    op.drop_table("verdictcorrection")
    with op.batch_alter_table("verdictcontributor", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verdictcontributor_verdict_id"))

    op.drop_table("verdictcontributor")
