"""phones in e164

Every stored phone number becomes E.164 (+8613900000001): seniors' and caregivers' phones,
seniors' emergency contacts, and the logins that are phone numbers, so that every written form
of a number is one account. Numbers without a country code are read in DOORSTEP_PHONE_REGION
(CN by default), as the app reads them. A value that is not a valid number is left as it is.

Two accounts (or two seniors) whose numbers become the same one cannot both be kept: the
upgrade stops and names them, and an administrator decides which account is the person's
(this migration never merges or drops anyone's account).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 07:00:00
"""

import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import phonenumbers
import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_account = sa.table("account", sa.column("id", sa.Uuid), sa.column("login", sa.String))
_senior = sa.table(
    "senior",
    sa.column("id", sa.Uuid),
    sa.column("phone", sa.String),
    sa.column("emergency_contacts", sa.JSON),
)
_caregiver = sa.table("caregiver", sa.column("id", sa.Uuid), sa.column("phone", sa.String))


def _e164(value: Any, region: str) -> Any:
    """``value`` in E.164 if it is a valid phone number written with digits only (and + - ( )
    . spaces); anything else (an operator's login, an invalid number) unchanged."""
    if not isinstance(value, str) or any(c.isalpha() for c in value):
        return value
    try:
        number = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(number):
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _convert(conn: sa.Connection, table: sa.TableClause, column: str, region: str) -> None:
    rows = conn.execute(sa.select(table.c.id, table.c[column])).all()
    new = {row_id: _e164(value, region) for row_id, value in rows}
    clashes = [value for value, n in Counter(new.values()).items() if n > 1]
    if clashes:
        ids = sorted(str(i) for i, v in new.items() if v in clashes)
        raise RuntimeError(
            f"{table.name}.{column}: these rows are one phone number written differently; "
            f"keep one of each before upgrading: {', '.join(ids)}"
        )
    for row_id, value in rows:
        if new[row_id] != value:
            conn.execute(sa.update(table).where(table.c.id == row_id).values({column: new[row_id]}))


def upgrade() -> None:
    region = os.environ.get("DOORSTEP_PHONE_REGION", "CN").strip().upper()
    conn = op.get_bind()
    _convert(conn, _account, "login", region)
    _convert(conn, _senior, "phone", region)
    _convert(conn, _caregiver, "phone", region)
    for senior_id, contacts in conn.execute(
        sa.select(_senior.c.id, _senior.c.emergency_contacts)
    ).all():
        if not contacts:
            continue
        changed = [
            {**c, "phone": _e164(c.get("phone"), region)} if isinstance(c, dict) else c
            for c in contacts
        ]
        if changed != contacts:
            conn.execute(
                sa.update(_senior)
                .where(_senior.c.id == senior_id)
                .values(emergency_contacts=changed)
            )


def downgrade() -> None:
    # E.164 values are valid phones and logins for 0006 as well: nothing to undo.
    pass
