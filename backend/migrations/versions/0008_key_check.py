"""key_check: a known value encrypted and hashed with the phone keys, so other keys are noticed at start.

The row itself is written by `flask db upgrade` (and the first scheduler or dispatcher), which know the keys.

Revision ID: 0008_key_check
Revises: 0007_wider_provider_status
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from schedules.dbtypes import UTCDateTime

revision = "0008_key_check"
down_revision = "0007_wider_provider_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("lookup_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("key_check")
