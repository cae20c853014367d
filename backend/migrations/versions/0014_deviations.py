"""deviations: the protocol-deviation log (missed and late doses, holds, staff changes after a window closed).

One row per deviation, found by schedules/deviations.py; `dedupe_key` is unique so two detection runs racing
each other cannot insert the same deviation twice. A nurse reviews each row (state and comment, audited).

Revision ID: 0014_deviations
Revises: 0013_ae_sae_record
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from schedules.dbtypes import UTCDateTime

revision = "0014_deviations"
down_revision = "0013_ae_sae_record"
branch_labels = None
depends_on = None


def _text(length: int | None = None):
    return sqlmodel.sql.sqltypes.AutoString(length=length) if length else sqlmodel.sql.sqltypes.AutoString()


def upgrade() -> None:
    op.create_table(
        "deviation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("dose_id", sa.Integer(), nullable=True),
        sa.Column("kind", _text(24), nullable=False),
        sa.Column("classification", _text(8), nullable=False),
        sa.Column("rule", _text(200), nullable=False),
        sa.Column("detail", _text(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("detected_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("dedupe_key", _text(80), nullable=False),
        sa.Column("review_state", _text(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("reviewed_by", _text(), nullable=False),
        sa.Column("reviewed_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"]),
        sa.ForeignKeyConstraint(["dose_id"], ["dose.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_deviation_dose_id", "deviation", ["dose_id"], unique=False)
    op.create_index("ix_deviation_site_review", "deviation", ["site_id", "review_state"], unique=False)
    op.create_index("ix_deviation_participant_date", "deviation", ["participant_id", "local_date"], unique=False)


def downgrade() -> None:
    op.drop_table("deviation")  # its indexes go with it
