"""The scheduler's state: triggers as synced from triggers.yaml, queued runs' leases,
backfills' ranges, and a ledger of the alerts sent.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("triggers") as batch:
        batch.add_column(
            sa.Column("type", sa.String(20), nullable=False, server_default="schedule")
        )
        batch.add_column(sa.Column("spec", Json, nullable=True))
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.text("true"))
        )
        batch.add_column(sa.Column("updated_at", Timestamp, nullable=True))
        batch.add_column(sa.Column("token_hash", sa.String(128), nullable=True))
        batch.add_column(sa.Column("token_created_at", Timestamp, nullable=True))
    with op.batch_alter_table("backfills") as batch:
        batch.add_column(sa.Column("start", Timestamp, nullable=True))
        batch.add_column(sa.Column("end", Timestamp, nullable=True))
        batch.add_column(sa.Column("every", sa.String(50), nullable=True))
        batch.add_column(sa.Column("variables", Json, nullable=True))
        batch.add_column(sa.Column("concurrency", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("total", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("lease_until", Timestamp, nullable=True))
    op.create_table(
        "alerts_sent",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("sent_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "event", name=op.f("pk_alerts_sent")),
    )
    op.create_index(op.f("ix_alerts_sent_sent_at"), "alerts_sent", ["sent_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_alerts_sent_sent_at"), table_name="alerts_sent")
    op.drop_table("alerts_sent")
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
    with op.batch_alter_table("backfills") as batch:
        for name in ("reason", "total", "concurrency", "variables", "every", "end", "start"):
            batch.drop_column(name)
    with op.batch_alter_table("triggers") as batch:
        for name in (
            "token_created_at", "token_hash", "updated_at", "enabled", "fingerprint", "spec",
            "type",
        ):  # fmt: skip
            batch.drop_column(name)
