import uuid

from app.models import Role
from app.schemas.common import Output


class Token(Output):
    access_token: str
    token_type: str = "bearer"  # noqa: S105
    expires_in: int
    role: Role
    account_id: uuid.UUID


class Me(Output):
    id: uuid.UUID
    role: Role
    login: str
    display_name: str
    district_id: uuid.UUID | None
