"""kpi indexes

The console polls today's figures of a district: its orders by placement time, and the
day's status history by time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 22:17:01.163772
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("care_order", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_order_district_id_created_at"),
            ["district_id", "created_at"],
            unique=False,
        )

    with op.batch_alter_table("order_status_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_status_history_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_status_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_status_history_at"))

    with op.batch_alter_table("care_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_order_district_id_created_at"))
