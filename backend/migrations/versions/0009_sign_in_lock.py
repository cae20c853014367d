"""sign_in_lock: wrong staff passwords counted per email, whatever the address, and the timed lock they cause.

Shared by the nurse pages and the API, and by every process (it is in the database, not in a rate limiter).

Revision ID: 0009_sign_in_lock
Revises: 0008_key_check
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from schedules.dbtypes import UTCDateTime

revision = "0009_sign_in_lock"
down_revision = "0008_key_check"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_lock",
        sa.Column("email_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("email_digest"),
    )


def downgrade() -> None:
    op.drop_table("sign_in_lock")
