"""order version and one open emergency per senior

Transitions now match on care_order.version (optimistic concurrency), and a partial unique
index keeps a senior from having two open emergency orders. If a database already holds two
open emergencies for one senior, this migration fails on purpose: an operator must close one
(cancelling an emergency automatically is not a decision a migration should make).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:35:04.982762
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("care_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.create_index(
            "uq_care_order_open_emergency",
            ["senior_id"],
            unique=True,
            postgresql_where=sa.text(
                "priority = 'emergency' AND status NOT IN ('completed', 'cancelled')"
            ),
            sqlite_where=sa.text(
                "priority = 'emergency' AND status NOT IN ('completed', 'cancelled')"
            ),
        )


def downgrade() -> None:
    with op.batch_alter_table("care_order", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_care_order_open_emergency",
            postgresql_where=sa.text(
                "priority = 'emergency' AND status NOT IN ('completed', 'cancelled')"
            ),
            sqlite_where=sa.text(
                "priority = 'emergency' AND status NOT IN ('completed', 'cancelled')"
            ),
        )
        batch_op.drop_column("version")
