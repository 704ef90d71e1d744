"""One settings object, read from the environment with the ``DOORSTEP_`` prefix."""

import hashlib
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# There is no built-in signing key: every process that signs or verifies tokens is given one
# (`doorstep init-secrets` makes a local one for `make run`). Keys that were ever published
# (the SHA-256 of the one older versions shipped) are refused even when configured on purpose.
JWT_SECRET_MIN_LENGTH = 32
_PUBLISHED_KEYS_SHA256 = frozenset(
    {"a64eed8648ef4b21bc11eed177d59805ef08fa42c4471f0e70449c172aae15d9"}
)
NO_JWT_SECRET = (
    "DOORSTEP_JWT_SECRET is not set: Doorstep has no built-in signing key. Set it to a random "
    f'string of at least {JWT_SECRET_MIN_LENGTH} characters (e.g. `python3 -c "import secrets; '
    'print(secrets.token_urlsafe(48))"`), or run `doorstep init-secrets` to keep a local one '
    "in var/secrets.env (what `make run` does)."
)


class MissingSecret(RuntimeError):
    """The API was asked to start (or to sign a token) without ``DOORSTEP_JWT_SECRET``."""

    def __init__(self) -> None:
        super().__init__(NO_JWT_SECRET)


class Environment(StrEnum):
    dev = "dev"
    test = "test"
    prod = "prod"


class Settings(BaseSettings):
    """Every knob a deployment may want to turn; the README lists them with their defaults."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", env_file=".env", extra="ignore")

    # Production behaviour unless a deployment says otherwise (`make run` says dev).
    env: Environment = Environment.prod
    # Demo data (the published log-ins of `seed-demo`) is loaded only when this is set (or
    # `--demo` is given): never by accident.
    demo: bool = False
    database_url: str = "sqlite+aiosqlite:///./var/doorstep.db"
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    # How long a request waits for a pooled connection before it is answered 503 + Retry-After
    # (an exhausted pool is overload: shed it at once rather than queue for 30 s).
    db_pool_timeout_s: float = Field(default=1.0, gt=0, le=30)
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0)
    db_echo: bool = False

    # Operations: logs and metrics.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    # A bearer token /metrics requires; unset, /metrics is open (dev, test, or a scrape port
    # that only the monitoring network reaches).
    metrics_token: SecretStr | None = Field(default=None, min_length=16)

    # The key that signs new access tokens; none by default (the API refuses to start without).
    jwt_secret: str | None = None
    # Keys that signed tokens still in use (comma-separated): accepted for verification only,
    # until the longest token lifetime has passed since the rotation.
    jwt_previous_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    jwt_algorithm: str = "HS256"
    jwt_audience: str = "doorstep"
    jwt_issuer: str = "doorstep"
    access_token_ttl_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # A refresh token (bearer clients) is good for this long after it was issued; each refresh
    # gives a new one.
    refresh_token_ttl_days: int = Field(default=30, ge=1, le=365)
    # Phone numbers written without a country code (13900000001) are read in this region
    # (ISO 3166 alpha-2) and stored in E.164 (+8613900000001).
    phone_region: str = Field(default="CN", pattern=r"^[A-Z]{2}$")

    # Browser pages: a cookie session that slides with use (stay logged in on that phone) up to
    # a hard limit; Secure cookies unless set otherwise outside env=prod (plain-HTTP localhost).
    web_session_idle_days: int = Field(default=30, ge=1, le=365)
    web_session_max_days: int = Field(default=180, ge=1, le=3650)
    cookie_secure: bool | None = None
    # Origins (scheme://host[:port]) whose scripts may call the API from a browser; none by default.
    cors_origins: list[str] = Field(default_factory=list)

    checkin_radius_m: float = Field(default=150.0, gt=0)
    checkin_early_minutes: int = Field(default=60, ge=0)
    idempotency_ttl_hours: int = Field(default=24, ge=24)
    order_max_days_ahead: int = Field(default=90, ge=1)
    position_max_future_skew_s: int = Field(default=5, ge=0, le=600)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    page_size_default: int = Field(default=20, ge=1)
    page_size_max: int = Field(default=100, ge=1)

    # Abuse limits (app/services/limits.py; counters in the database, shared by every worker).
    limits_enabled: bool = True
    order_rate_count: int = Field(default=10, ge=1)
    order_rate_period_s: float = Field(default=600.0, gt=0)
    position_rate_count: int = Field(default=5, ge=1)
    position_rate_period_s: float = Field(default=10.0, gt=0)
    provider_rate_count: int = Field(default=600, ge=1)
    provider_rate_period_s: float = Field(default=60.0, gt=0)
    # Log-in back-off: from the n-th failure (per typed login / per client address) each
    # further attempt waits base * 2**(failures - n) seconds, at most max; failures older than
    # the window are forgotten.
    login_backoff_after: int = Field(default=5, ge=1)
    login_client_backoff_after: int = Field(default=20, ge=1)
    login_backoff_base_s: float = Field(default=1.0, gt=0)
    login_backoff_max_s: float = Field(default=900.0, gt=0)
    login_failure_window_s: float = Field(default=3600.0, gt=0)
    # Requests one worker serves at once (event streams not counted); beyond, 503 at once.
    max_in_flight: int = Field(default=256, ge=1)

    # The dispatcher (`doorstep dispatcher`; on PostgreSQL one advisory lock per district).
    dispatch_poll_s: float = Field(default=1.0, gt=0, le=60)
    dispatch_pass_limit: int = Field(default=200, ge=1)
    dispatch_min_interval_s: float = Field(default=0.2, ge=0, le=10)
    offer_timeout_s: int = Field(default=60, ge=5)
    emergency_offer_timeout_s: int = Field(default=20, ge=5)
    emergency_offers: int = Field(default=3, ge=1, le=20)
    max_offer_rounds: int = Field(default=5, ge=1)
    emergency_response_target_min: int = Field(default=15, ge=1)
    batch_interval_s: int = Field(default=60, ge=1)
    scheduled_horizon_h: int = Field(default=24, ge=1)
    scheduled_escalate_lead_min: int = Field(default=120, ge=0)
    no_show_grace_min: int = Field(default=10, ge=0)
    no_show_redispatch: bool = True
    leader_retry_s: float = Field(default=2.0, gt=0, le=60)
    # SQLite: how often the dispatcher looks for new outbox events written by the API process.
    sqlite_watch_s: float = Field(default=0.05, gt=0, le=5)
    # Offers are written from a plan (snapshot and ranking) no older than this; older is re-planned.
    plan_max_age_s: float = Field(default=2.0, gt=0, le=60)
    # The dispatcher's probe server (/healthz, /readyz, /metrics) for `doorstep dispatcher`.
    dispatcher_host: str = "127.0.0.1"
    dispatcher_port: int = Field(default=8001, ge=0, le=65535)

    # Live events (SSE).
    stream_poll_s: float = Field(default=1.0, gt=0, le=60)
    stream_keepalive_s: float = Field(default=15.0, gt=0, le=300)
    # How often an open stream re-checks its credential (expiry, revocation, disabled account);
    # a revoked stream ends within this many seconds.
    stream_recheck_s: float = Field(default=5.0, gt=0, le=60)
    stream_queue_size: int = Field(default=1000, ge=10)
    stream_retry_ms: int = Field(default=2000, ge=100)
    # LISTEN connections (event wake-ups): how often an idle one is checked, and the longest
    # wait between reconnection attempts (it starts at 0.1 s and doubles).
    listen_check_s: float = Field(default=10.0, gt=0, le=300)
    listen_backoff_max_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("phone_region", mode="before")
    @classmethod
    def _region_upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        import phonenumbers

        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value} is not a region phone numbers can be read in")
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("jwt_previous_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> Self:
        named = [("DOORSTEP_JWT_SECRET", self.jwt_secret)] + [
            ("DOORSTEP_JWT_PREVIOUS_SECRETS", key) for key in self.jwt_previous_secrets
        ]
        for name, key in named:
            if key is None:
                continue
            if len(key) < JWT_SECRET_MIN_LENGTH:
                raise ValueError(f"{name} must be at least {JWT_SECRET_MIN_LENGTH} characters")
            if hashlib.sha256(key.encode()).hexdigest() in _PUBLISHED_KEYS_SHA256:
                raise ValueError(f"{name} is a published key (it was in Doorstep's code): refused")
        return self

    @property
    def jwt_signing_key(self) -> str:
        """The key new tokens are signed with; raises ``MissingSecret`` when none is set."""
        if self.jwt_secret is None:
            raise MissingSecret
        return self.jwt_secret

    @property
    def jwt_verification_keys(self) -> list[str]:
        """Every key a token may be signed with: the current one first, then the previous ones."""
        return [self.jwt_signing_key, *self.jwt_previous_secrets]

    @property
    def secure_cookies(self) -> bool:
        return self.env is Environment.prod if self.cookie_secure is None else self.cookie_secure

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own and pass them to ``create_app``)."""
    return Settings()
