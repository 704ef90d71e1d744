"""One translation catalogue for the pages: gettext ``.po`` files read with Babel at start-up.

The msgids are the English texts; ``locale/zh_CN/LC_MESSAGES/messages.po`` holds the Chinese.
Templates call ``_()``; page scripts call ``t()`` on the same catalogue, handed to them as JSON.
``make i18n`` extracts new texts from templates, scripts and Python into the catalogue.
"""

import gettext
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from fastapi import Request

LOCALE_DIR = Path(__file__).parent / "locale"
# Page language tags (BCP 47, as in <html lang>) and their catalogue; English is the msgids.
LANGUAGES = {"zh-CN": "zh_CN", "en": None}
DEFAULT_LANGUAGE = "zh-CN"
LANG_COOKIE = "doorstep_lang"


@cache
def _catalog(locale: str) -> Catalog:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=locale)


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The gettext translations for a page language (English: the msgids themselves)."""
    locale = LANGUAGES[lang]
    if locale is None:
        return gettext.NullTranslations()
    mo = BytesIO()
    write_mo(mo, _catalog(locale))
    mo.seek(0)
    return Translations(fp=mo)


@cache
def script_texts(lang: str) -> dict[str, str]:
    """msgid → text for the page scripts' ``t()`` (untranslated and fuzzy entries left out:
    the script then shows the English msgid)."""
    locale = LANGUAGES[lang]
    if locale is None:
        return {}
    return {
        str(m.id): str(m.string)
        for m in _catalog(locale)
        if m.id and isinstance(m.id, str) and m.string and not m.fuzzy
    }


def pick(request: Request) -> str:
    """``?lang=`` if given, else the language cookie, else zh-CN."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE
