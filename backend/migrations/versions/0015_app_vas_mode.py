"""The participant app: a VAS records how it was measured, an injection-site reaction its site.

`vasscore.mode` is "vas_line" for a mark on the app's 100 mm line and "sms_numeric" for a number typed (SMS,
a nurse, an API client sending no mode); every existing row is a typed number. `adverseevent.injection_site` holds the
site of the participant's latest injection before an injection-site reaction (empty for the rows before).

Revision ID: 0015_app_vas_mode
Revises: 0014_deviations
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0015_app_vas_mode"
down_revision = "0014_deviations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "vasscore",
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default="sms_numeric"),
    )
    op.add_column("adverseevent", sa.Column("injection_site", sqlmodel.sql.sqltypes.AutoString(length=16)))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), no batch rebuild: SQLite would have to drop `adverseevent`, which the
    # signatures' versions reference, and `vasscore`, which its own corrections reference.
    op.drop_column("adverseevent", "injection_site")
    op.drop_column("vasscore", "mode")
