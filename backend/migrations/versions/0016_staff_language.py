"""Nurse pages in the reader's language: each site has one (its staff's default), a staff account may choose its own.

Revision ID: 0016_staff_language
Revises: 0013_ae_sae_record
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0016_staff_language"
down_revision = "0013_ae_sae_record"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("site") as batch:
        batch.add_column(
            sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default="en")
        )
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("language")
    with op.batch_alter_table("site") as batch:
        batch.drop_column("language")
