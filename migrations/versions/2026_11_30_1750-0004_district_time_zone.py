"""district time zone

Every district gets an IANA time zone: certificate validity, "today" and daily visit caps are
local dates in it. Existing districts (Xi'an) take the default, Asia/Shanghai.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 17:50:39.517720
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("district", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "time_zone", sa.String(length=64), server_default="Asia/Shanghai", nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("district", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
