"""job_run: the latest outcome of each scheduled job, so a stopped scheduler is visible.

Revision ID: 0006_job_run
Revises: 0005_outbox_ref
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from schedules.dbtypes import UTCDateTime

revision = "0006_job_run"
down_revision = "0005_outbox_ref"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_run",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("last_finished_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_succeeded_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("last_summary", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("last_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("job_run")
