"""digests: digest and digestitem tables, digest deliveries and channel posts in the outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 15:00:00

Hand-reviewed autogenerate output; constraints are named so the downgrade works on SQLite (batch mode
recreates the table) and PostgreSQL alike.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
import knowledge_base.models


revision: str = "0002"
down_revision: Union[str, None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "digest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_start", knowledge_base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", knowledge_base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("intro", sa.Text(), nullable=False),
        sa.Column("outro", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("auto_key", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.Column("correction_of_id", sa.Integer(), nullable=True),
        sa.Column("correction_note", sa.Text(), nullable=False),
        sa.Column("created_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", knowledge_base.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["author_id"], ["staffuser.id"], name="fk_digest_author_id_staffuser"),
        sa.ForeignKeyConstraint(
            ["published_by_id"], ["staffuser.id"], name="fk_digest_published_by_id_staffuser"
        ),
        sa.ForeignKeyConstraint(["correction_of_id"], ["digest.id"], name="fk_digest_correction_of_id_digest"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("auto_key", name="uq_digest_auto_key"),
    )
    with op.batch_alter_table("digest", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_digest_correction_of_id"), ["correction_of_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_digest_published_at"), ["published_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_digest_status"), ["status"], unique=False)

    op.create_table(
        "digestitem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest_id", sa.Integer(), nullable=False),
        sa.Column("verdict_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line_override", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("claim_snapshot", sa.Text(), nullable=True),
        sa.Column("rating_snapshot", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("line_snapshot", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("verdict_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["digest_id"], ["digest.id"], name="fk_digestitem_digest_id_digest"),
        sa.ForeignKeyConstraint(["verdict_id"], ["verdict.id"], name="fk_digestitem_verdict_id_verdict"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest_id", "verdict_id", name="uq_digestitem_verdict"),
    )
    with op.batch_alter_table("digestitem", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_digestitem_digest_id"), ["digest_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_digestitem_verdict_id"), ["verdict_id"], unique=False)

    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("channel_target", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_notification_digest_id"), ["digest_id"], unique=False)
        batch_op.create_foreign_key("fk_notification_digest_id_digest", "digest", ["digest_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_constraint("fk_notification_digest_id_digest", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_notification_digest_id"))
        batch_op.drop_column("channel_target")
        batch_op.drop_column("digest_id")

    with op.batch_alter_table("digestitem", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_digestitem_verdict_id"))
        batch_op.drop_index(batch_op.f("ix_digestitem_digest_id"))
    op.drop_table("digestitem")

    with op.batch_alter_table("digest", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_digest_status"))
        batch_op.drop_index(batch_op.f("ix_digest_published_at"))
        batch_op.drop_index(batch_op.f("ix_digest_correction_of_id"))
    op.drop_table("digest")
