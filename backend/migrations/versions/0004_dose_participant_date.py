"""The participant's doses by date: (participant_id, local_date) replaces the participant_id index.

The missed-dose job looks up each flagged dose's previous dose (by date) with one backward step
along this index instead of reading and sorting all the participant's doses; every query by
participant_id alone uses it as it used the old index, and dose writes maintain as many indexes as before.

Revision ID: 0004_dose_participant_date
Revises: 0003_participant_app
"""

from alembic import op

revision = "0004_dose_participant_date"
down_revision = "0003_participant_app"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dose", schema=None) as batch_op:
        batch_op.create_index("ix_dose_participant_local_date", ["participant_id", "local_date"], unique=False)
        batch_op.drop_index("ix_dose_participant_id")


def downgrade() -> None:
    with op.batch_alter_table("dose", schema=None) as batch_op:
        batch_op.create_index("ix_dose_participant_id", ["participant_id"], unique=False)
        batch_op.drop_index("ix_dose_participant_local_date")
