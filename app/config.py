"""One settings object, read from the environment with the ``DOORSTEP_`` prefix."""

from enum import StrEnum
from functools import lru_cache
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "doorstep-dev-secret-change-me-in-production-0000"  # noqa: S105


class Environment(StrEnum):
    dev = "dev"
    test = "test"
    prod = "prod"


class Settings(BaseSettings):
    """Every knob a deployment may want to turn; the README lists them with their defaults."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", env_file=".env", extra="ignore")

    env: Environment = Environment.dev
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

    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithm: str = "HS256"
    jwt_audience: str = "doorstep"
    jwt_issuer: str = "doorstep"
    access_token_ttl_minutes: int = Field(default=60, ge=1, le=24 * 60)
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
    position_max_future_skew_s: int = Field(default=120, ge=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    page_size_default: int = Field(default=20, ge=1)
    page_size_max: int = Field(default=100, ge=1)

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

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Self:
        if self.env is Environment.prod and self.jwt_secret == DEV_JWT_SECRET:
            raise ValueError(
                "DOORSTEP_JWT_SECRET must be set outside env=dev/test (refusing the default secret)"
            )
        if self.env is Environment.prod and len(self.jwt_secret) < 32:
            raise ValueError("DOORSTEP_JWT_SECRET must be at least 32 characters")
        return self

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
