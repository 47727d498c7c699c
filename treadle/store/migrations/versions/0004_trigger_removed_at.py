"""A trigger deleted from its triggers.yaml is kept, marked removed, with its fires: added
back, it does not fire its old slots again.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("triggers") as batch:
        batch.add_column(sa.Column("removed_at", Timestamp, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("triggers") as batch:
        batch.drop_column("removed_at")
