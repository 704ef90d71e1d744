"""One translation catalogue: every text the pages show (templates, page scripts' ``t()``,
app/web Python) has its Chinese translation, and nothing is left fuzzy."""

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from app.web import i18n

pytestmark = pytest.mark.pure

ROOT = Path(__file__).parent.parent
METHODS = [
    ("app/web/**.py", "python"),
    ("app/web/templates/**.html", "jinja2"),
    ("app/web/static/js/**.js", "javascript"),
]
OPTIONS = {"app/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def page_texts() -> set[str]:
    keywords = {"_": None, "gettext": None, "t": None}
    return {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), METHODS, OPTIONS, keywords=keywords
        )
        if isinstance(message, str)
    }


def test_every_page_text_is_translated() -> None:
    texts = page_texts()
    assert len(texts) > 15  # the extraction found the pages
    translated = i18n.script_texts("zh-CN")
    missing = sorted(t for t in texts if not translated.get(t))
    assert missing == [], "run `make i18n` and translate these in messages.po"


def test_placeholders_survive_translation() -> None:
    import re

    for msgid, text in i18n.script_texts("zh-CN").items():
        assert set(re.findall(r"\{\w+\}", msgid)) == set(re.findall(r"\{\w+\}", text)), msgid
