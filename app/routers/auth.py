from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from app.deps import PrincipalDep, ReadSessionDep, SessionDep, SettingsDep
from app.schemas.auth import Me, Token
from app.schemas.common import PROBLEM_RESPONSES
from app.services import accounts

router = APIRouter(prefix="/auth", tags=["auth"], responses=PROBLEM_RESPONSES)


@router.post(
    "/token",
    summary="Log in (OAuth2 password flow)",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "example": {"username": "13900000001", "password": "doorstep-demo"}
                }
            }
        }
    },
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: ReadSessionDep,
    settings: SettingsDep,
) -> Token:
    """Seniors and caregivers log in with their phone number; operators with their login."""
    return await accounts.login(session, settings, login=form.username, password=form.password)


@router.get("/me", summary="Who am I")
async def me(principal: PrincipalDep, session: SessionDep) -> Me:
    return Me.model_validate(await accounts.get_account(session, principal))
