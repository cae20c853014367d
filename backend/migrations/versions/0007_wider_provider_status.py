"""Room for every Twilio status: 'partially_delivered' is 19 characters, the columns held 16.

Revision ID: 0007_wider_provider_status
Revises: 0006_job_run
"""

import sqlmodel
from alembic import op

revision = "0007_wider_provider_status"
down_revision = "0006_job_run"
branch_labels = None
depends_on = None

_COLUMNS = (("outboundmessage", "provider_status"), ("statuscallback", "status"))


def upgrade() -> None:
    for table, column in _COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                type_=sqlmodel.sql.sqltypes.AutoString(length=24),
                existing_type=sqlmodel.sql.sqltypes.AutoString(length=16),
                existing_nullable=False,
            )


def downgrade() -> None:
    for table, column in _COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                type_=sqlmodel.sql.sqltypes.AutoString(length=16),
                existing_type=sqlmodel.sql.sqltypes.AutoString(length=24),
                existing_nullable=False,
            )
