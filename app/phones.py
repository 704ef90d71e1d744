"""Phone numbers in one form: E.164 (``+8613900000001``), parsed by Google's ``phonenumbers``.

Every written form of one number (``13900000001``, ``+86 139 0000 0001``, ``139-0000-0001``,
``008613900000001``) is the same string once normalised, so it is one account, one login and
one search key. Numbers written without a country code are read in ``DOORSTEP_PHONE_REGION``.
"""

import phonenumbers

from app.config import get_settings


def to_e164(text: str, region: str | None = None) -> str:
    """``text`` as E.164. Raises ``ValueError`` if it is not a valid number (in ``region``, an
    ISO 3166 code, the setting's by default, when it has no country code)."""
    try:
        number = phonenumbers.parse(text, region or get_settings().phone_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def login_key(login: str, region: str | None = None) -> str:
    """What a login is stored and looked up as: a phone number in E.164, anything else (an
    operator's or provider's name-like login) as written, without surrounding spaces."""
    login = login.strip()
    if not any(c.isdigit() for c in login) or any(c.isalpha() for c in login):
        return login
    try:
        return to_e164(login, region)
    except ValueError:
        return login
