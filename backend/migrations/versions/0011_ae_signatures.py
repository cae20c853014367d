"""Electronic signatures of adverse events (21 CFR 11.50, 11.200): versions, signatures, follow-up fields.

`ae_version` keeps an adverse event's content as first signed, `ae_signature` who signed which version, when,
with what meaning and over which content hash. Both are append-only like the audit trail: the database
refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL). `adverseevent` gains the follow-up fields (stop date,
narrative) and the number of the version being worked on.

The trigger statements live here, not in application code: what this migration creates must not change when
the code does.

Revision ID: 0011_ae_signatures
Revises: 0010_audit_entity_index
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from schedules.dbtypes import UTCDateTime

revision = "0011_ae_signatures"
down_revision = "0010_audit_entity_index"
branch_labels = None
depends_on = None

APPEND_ONLY = ("ae_version", "ae_signature")


def _sqlite_triggers(table: str) -> list[str]:
    refuse = f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} {refuse}",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} {refuse}",
    ]


def _postgres_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION ae_record_refuse()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION ae_record_refuse()",
    ]


def upgrade() -> None:
    op.add_column("adverseevent", sa.Column("stop_date", sa.Date(), nullable=True))
    op.add_column("adverseevent", sa.Column("narrative", sa.Text(), nullable=False, server_default=""))
    op.add_column("adverseevent", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "ae_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("adverse_event_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("frozen_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["adverse_event_id"], ["adverseevent.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("adverse_event_id", "version", name="uq_ae_version"),
    )
    op.create_index("ix_ae_version_adverse_event_id", "ae_version", ["adverse_event_id"], unique=False)
    op.create_table(
        "ae_signature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("adverse_event_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("signer_id", sa.Integer(), nullable=False),
        sa.Column("signer_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("signer_role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("meaning", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("signed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["adverse_event_id", "version"],
            ["ae_version.adverse_event_id", "ae_version.version"],
            name="fk_ae_signature_version",
        ),
        sa.ForeignKeyConstraint(["signer_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("adverse_event_id", "version", "signer_id", "meaning", name="uq_ae_signature"),
    )
    op.create_index("ix_ae_signature_adverse_event_id", "ae_signature", ["adverse_event_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION ae_record_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        statements = [s for table in APPEND_ONLY for s in _postgres_triggers(table)]
    else:
        statements = [s for table in APPEND_ONLY for s in _sqlite_triggers(table)]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("ae_signature")  # its triggers go with it
    op.drop_table("ae_version")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ae_record_refuse()")
    with op.batch_alter_table("adverseevent", schema=None) as batch_op:
        batch_op.drop_column("version")
        batch_op.drop_column("narrative")
        batch_op.drop_column("stop_date")
