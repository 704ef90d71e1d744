import uuid
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from app.models import Role
from app.schemas.common import Input, Output
from app.schemas.people import Password


class Token(Output):
    access_token: str
    token_type: str = "bearer"  # noqa: S105
    expires_in: int
    role: Role
    account_id: uuid.UUID
    # Log-in and refresh only: trade it at POST /v1/auth/refresh for a new pair.
    refresh_token: str | None = None
    refresh_expires_in: int | None = None


class RefreshIn(Input):
    """A refresh token from the log-in or the last refresh."""

    refresh_token: Annotated[str, Field(min_length=1, max_length=256)]

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": "kQ2c8Yl0r3fH6T1XJ9vZp4bNwA5sE7uD"}]}
    )


class Me(Output):
    id: uuid.UUID
    role: Role
    login: str
    display_name: str
    district_id: uuid.UUID | None


class SessionIn(Input):
    """A page's log-in: the phone number (seniors, caregivers) or login (operators)."""

    login: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"login": "13900000001", "password": "doorstep-demo"}]}
    )


class SessionOut(Output):
    """The cookie session just opened or rotated. ``csrf_token`` goes in ``X-CSRF-Token`` on
    every state-changing request; ``expires_at`` (UTC) slides with use."""

    account_id: uuid.UUID
    role: Role
    display_name: str
    csrf_token: str
    expires_at: datetime


class PasswordChangeIn(Input):
    """A new password for the caller's own account, proven by the current one."""

    current_password: Annotated[str, Field(min_length=1, max_length=256)]
    new_password: Password

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"current_password": "doorstep-demo", "new_password": "a-long-passphrase"}]
        }
    )
