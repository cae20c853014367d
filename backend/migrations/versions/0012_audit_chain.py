"""audit_chain: each audit row carries a SHA-256 over its content and its predecessor's hash; a head row keeps the last.

The rows already there are chained in id order, so `flask audit verify` covers the whole trail from the first row.
An alert may have no site: the daily check's alert of a broken chain is about the whole system, for admins.

Revision ID: 0012_audit_chain
Revises: 0011_ae_signatures
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from backend.audit import SQLITE_TRIGGERS
from backend.audit_chain import HEAD_ID, row_hash
from schedules.dbtypes import UTCDateTime

revision = "0012_audit_chain"
down_revision = "0011_ae_signatures"
branch_labels = None
depends_on = None

BATCH = 5000

# The columns as this revision knows them (not the model's, which later revisions may extend).
audit_entry = sa.table(
    "audit_entry",
    sa.column("id", sa.Integer),
    sa.column("at", UTCDateTime(timezone=True)),
    *(sa.column(name, sa.Text) for name in ("actor", "source", "action", "entity", "entity_id", "field")),
    *(sa.column(name, sa.Text) for name in ("old_value", "new_value", "reason")),
    sa.column("prev_id", sa.Integer),
    sa.column("prev_hash", sa.Text),
    sa.column("hash", sa.Text),
)


def _triggers(enable: bool) -> None:
    """The append-only triggers off while this migration writes the hashes into the rows, and back on."""
    if op.get_bind().dialect.name == "postgresql":
        for name in ("audit_entry_no_update", "audit_entry_no_truncate"):
            op.execute(f"ALTER TABLE audit_entry {'ENABLE' if enable else 'DISABLE'} TRIGGER {name}")
    elif enable:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_entry_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_entry_no_delete")


def _backfill() -> tuple[int | None, str | None]:
    """Chain the existing rows in id order, a batch at a time; the last row's id and hash."""
    bind = op.get_bind()
    content = [c for c in audit_entry.c if c.key not in ("prev_id", "prev_hash", "hash")]
    write = (
        sa.update(audit_entry)
        .where(audit_entry.c.id == sa.bindparam("row_id"))
        .values(prev_id=sa.bindparam("p_id"), prev_hash=sa.bindparam("p_hash"), hash=sa.bindparam("h"))
    )
    last_id, last_hash = None, None
    while True:
        query = sa.select(*content).order_by(audit_entry.c.id).limit(BATCH)
        if last_id is not None:
            query = query.where(audit_entry.c.id > last_id)
        rows = bind.execute(query).mappings().all()
        if not rows:
            return last_id, last_hash
        updates = []
        for row in rows:
            chained = {**row, "prev_id": last_id, "prev_hash": last_hash}
            updates.append({"row_id": row["id"], "p_id": last_id, "p_hash": last_hash, "h": row_hash(chained)})
            last_id, last_hash = row["id"], updates[-1]["h"]
        bind.execute(write, updates)


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=True),
        sa.Column("last_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    _triggers(enable=False)
    last_id, last_hash = _backfill()
    # On SQLite this rebuilds the table, which drops its triggers: they are made again below.
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.alter_column("hash", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False)
    _triggers(enable=True)
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.alter_column("site_id", existing_type=sa.Integer(), nullable=True)
    op.bulk_insert(
        sa.table("audit_chain_head", sa.column("id"), sa.column("last_id"), sa.column("last_hash")),
        [{"id": HEAD_ID, "last_id": last_id, "last_hash": last_hash}],
    )


def downgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.alter_column("site_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("prev_id")
    if op.get_bind().dialect.name != "postgresql":
        for statement in SQLITE_TRIGGERS:  # the rebuilt table lost them
            op.execute(statement)
    op.drop_table("audit_chain_head")
