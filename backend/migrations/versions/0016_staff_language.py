"""Nurse pages in the reader's language: each site has one (its staff's default), a staff account may choose its own.

Revision ID: 0016_staff_language
Revises: 0015_app_vas_mode
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0016_staff_language"
down_revision = "0015_app_vas_mode"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, no batch rebuild: on SQLite a rebuild drops `staff`, which signatures and tokens reference.
    op.add_column(
        "site", sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default="en")
    )
    op.add_column("staff", sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))


def downgrade() -> None:
    op.drop_column("staff", "language")
    op.drop_column("site", "language")
