"""Shapes shared by every router."""

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, model_validator

# Numbers are numbers in every request body: pydantic's lax mode would take ``true`` as 1 and
# ``"34.2"`` as 34.2, so a rating of ``true`` counted as one star and ``{"lat": true}`` stored 1.0.
# Strict types refuse booleans and strings; a JSON integer still fits a float (``"lat": 34``).
# An integer field also refuses ``5.0``: a whole number is written as one.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]

Latitude = Annotated[float, Strict(), Field(ge=-90, le=90, description="Degrees north (WGS 84).")]
Longitude = Annotated[float, Strict(), Field(ge=-180, le=180, description="Degrees east (WGS 84).")]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


def _aware(value: datetime) -> datetime:
    """Offset required; normalised to UTC; only years a care visit can plausibly have."""
    if value.tzinfo is None:
        raise ValueError("must include a timezone offset, e.g. 2026-11-24T09:00:00+08:00")
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the supported range of dates") from None
    if not 2000 <= value.year <= 2200:
        raise ValueError("is outside the supported range of dates (years 2000 to 2200)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


def _find_nul(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if found := _find_nul(item, f"{path}.{key}" if path else str(key)):
            return found
    return None


class Input(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        # PostgreSQL cannot store U+0000 in text; refuse it here, for every field, on both
        # databases alike, rather than fail at INSERT.
        if where := _find_nul(data, ""):
            raise ValueError(f"{where} must not contain NUL (U+0000) characters")
        return data


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """The one error shape (RFC 9457 problem details plus a stable machine ``code``)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list, in a stable order; follow ``next_cursor`` for the next."""

    items: list[T]
    limit: int
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page (opaque; null at the end). Items placed "
        "or removed meanwhile never make a page repeat or skip another's items."
    )


class ReasonIn(Input):
    reason: Reason

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "Family will visit instead"}]}
    )


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}}
    for status in (401, 403, 404, 409, 422)
}
# Routes behind a limit (app/services/limits.py) add this: 429 with Retry-After.
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": Problem,
        "description": "A limit was reached; retry after the seconds in Retry-After.",
        "content": {"application/problem+json": {}},
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    }
}
