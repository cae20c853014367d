"""audit_entry by (entity, entity_id): one index replaces the two single-column ones.

A participant's audit view reads the rows of a few of their own rows per table (`entity = 'dose' AND
entity_id IN (...)`); with separate indexes SQLite walked every row of the table named (every dose of every
participant). The pair serves that, and `field_changes` (entity and entity_id equal), on both databases; no
query looks rows up by one column alone, and every audit insert now maintains one index instead of two.
Index operations only (no batch mode): the table and its append-only triggers stay as they are.

Revision ID: 0010_audit_entity_index
Revises: 0009_sign_in_lock
"""

from alembic import op

revision = "0010_audit_entity_index"
down_revision = "0009_sign_in_lock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_entry_entity_entity_id", "audit_entry", ["entity", "entity_id"], unique=False)
    op.drop_index("ix_audit_entry_entity", table_name="audit_entry")
    op.drop_index("ix_audit_entry_entity_id", table_name="audit_entry")


def downgrade() -> None:
    op.create_index("ix_audit_entry_entity_id", "audit_entry", ["entity_id"], unique=False)
    op.create_index("ix_audit_entry_entity", "audit_entry", ["entity"], unique=False)
    op.drop_index("ix_audit_entry_entity_entity_id", table_name="audit_entry")
