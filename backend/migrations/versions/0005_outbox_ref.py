"""Outbound messages by what they are about: an index on outboundmessage (ref_type, ref_id).

The missed-dose job asks, for every batch of doses it flags, which of their reminders were never
delivered (notifications.status.undelivered_dose_ids); without this index that question reads the
whole outbox, which keeps every message ever sent, once a minute.

Revision ID: 0005_outbox_ref
Revises: 0004_dose_participant_date
"""

from alembic import op

revision = "0005_outbox_ref"
down_revision = "0004_dose_participant_date"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outboundmessage", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_ref", ["ref_type", "ref_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outboundmessage", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_ref")
