"""Password hashing (Argon2 via pwdlib), JWT access tokens (PyJWT) and provider API keys."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from anyio import to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.config import Settings
from app.errors import Unauthorized
from app.models import Role

_password_hash = PasswordHash((Argon2Hasher(),))
# A hash of the same cost as real ones, verified when there is no real hash to verify (unknown
# login, an account without a password), so every failed log-in does the same work. Made by
# the hasher in use (tests swap in a cheap one), once per hasher.
_dummy: tuple[PasswordHash, str] | None = None


def _dummy_hash() -> str:
    global _dummy
    if _dummy is None or _dummy[0] is not _password_hash:
        _dummy = (_password_hash, _password_hash.hash(secrets.token_urlsafe(16)))
    return _dummy[1]


API_KEY_PREFIX = "dsk_"


# Argon2 is ~50 ms of CPU by design: run it in a worker thread, never on the event loop, or
# every login would stall every other request (an SOS included).


async def hash_password(password: str) -> str:
    return await to_thread.run_sync(_password_hash.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-work check: exactly one Argon2 verification whether or not there is a hash
    (``None``: verify against a dummy of the same cost and answer False)."""
    hasher = _password_hash
    target = _dummy_hash() if password_hash is None else password_hash
    verified = await to_thread.run_sync(hasher.verify, password, target)
    return verified and password_hash is not None


@dataclass(frozen=True)
class TokenClaims:
    account_id: uuid.UUID
    role: Role
    # The account's ``token_version`` when the token was issued (0 for tokens made before
    # versions existed): a token whose version is not the account's current one is revoked.
    version: int = 0
    # The refresh-token family (log-in) the token was issued for, if any: logging that
    # family out revokes the token too.
    family: uuid.UUID | None = None


def create_access_token(
    settings: Settings,
    *,
    account_id: uuid.UUID,
    role: Role,
    version: int = 0,
    family: uuid.UUID | None = None,
    now: datetime | None = None,
) -> tuple[str, int]:
    """A signed JWT for the account, stamped with its ``token_version``; returns the token and
    its lifetime in seconds."""
    issued = now or datetime.now(UTC)
    ttl = timedelta(minutes=settings.access_token_ttl_minutes)
    claims = {
        "sub": str(account_id),
        "role": role.value,
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": issued,
        "exp": issued + ttl,
        "jti": secrets.token_hex(8),
        "ver": version,
        **({} if family is None else {"fam": str(family)}),
    }
    token = jwt.encode(claims, settings.jwt_signing_key, algorithm=settings.jwt_algorithm)
    return token, int(ttl.total_seconds())


def _verified_claims(settings: Settings, token: str) -> dict[str, Any]:
    """The claims of a token signed with the current key or one of the previous ones (key
    rotation: ``DOORSTEP_JWT_PREVIOUS_SECRETS``); the signature is checked before anything else,
    so a key that did not sign the token never gets to judge its expiry."""
    *earlier, last = settings.jwt_verification_keys
    for key in earlier:
        try:
            return _decode(settings, token, key)
        except jwt.InvalidSignatureError:
            continue
    return _decode(settings, token, last)


def _decode(settings: Settings, token: str, key: str) -> dict[str, Any]:
    return jwt.decode(
        token,
        key,
        algorithms=[settings.jwt_algorithm],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        options={"require": ["exp", "iat", "sub", "aud", "iss"]},
    )


def decode_access_token(settings: Settings, token: str) -> TokenClaims:
    """Verify signature (current or previous key), expiry, audience and issuer against an
    explicit algorithm list. Raises ``Unauthorized`` (``token_expired``, ``invalid_token``)."""
    try:
        claims = _verified_claims(settings, token)
        version = claims.get("ver", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError("ver")
        family = claims.get("fam")
        return TokenClaims(
            account_id=uuid.UUID(claims["sub"]),
            role=Role(claims["role"]),
            version=version,
            family=None if family is None else uuid.UUID(family),
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired.", code="token_expired") from exc
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise Unauthorized("The access token is invalid.", code="invalid_token") from exc


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
