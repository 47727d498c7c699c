"""Browser sessions (with their CSRF token), named API tokens, and where audit events
came from (project, client address).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(128), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(128), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_sessions_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id_hash", name="pk_sessions"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("name", sa.String(200), server_default="", nullable=False))
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("project", sa.String(200), server_default="", nullable=False))
        batch.add_column(sa.Column("origin", sa.String(200), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("origin")
        batch.drop_column("project")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("name")
    op.drop_table("sessions")
