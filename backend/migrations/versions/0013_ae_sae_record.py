"""ae_sae_record: an adverse event an SAE report can be written from: its CTCAE v5 term (MedDRA code), the
action taken with the study drug, and when the site became aware (which starts the 24-hour reporting clock).

Existing reports became known to the site when they were reported, so `aware_at` starts as `reported_at`.
The adverse-event content a signature covers leaves `aware_at` out while it equals `reported_at`
(schedules.ae_versions.signed_content), so versions signed before this migration stay intact.

Revision ID: 0013_ae_sae_record
Revises: 0012_audit_chain
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from schedules.dbtypes import UTCDateTime

revision = "0013_ae_sae_record"
down_revision = "0012_audit_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, no table rebuild: SQLite would have to drop `adverseevent`, which the signatures'
    # versions reference. aware_at stays nullable in the schema; it is filled here and by every new report.
    op.add_column(
        "adverseevent",
        sa.Column("ctcae_term", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default=""),
    )
    op.add_column("adverseevent", sa.Column("action_taken", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True))
    op.add_column("adverseevent", sa.Column("aware_at", UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE adverseevent SET aware_at = reported_at")


def downgrade() -> None:
    for column in ("aware_at", "action_taken", "ctcae_term"):
        op.drop_column("adverseevent", column)
