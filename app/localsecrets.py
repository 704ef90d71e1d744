"""The local secrets file of a development machine (``var/secrets.env``, outside git).

``doorstep init-secrets`` (run by ``make run``) writes a random ``DOORSTEP_JWT_SECRET`` there
once, readable by its owner only (mode 0600), and leaves it alone afterwards; ``doorstep run`` and
``doorstep serve`` read it into their environment unless the variable is set already (a real
deployment sets it and never needs the file). The file holds ``NAME=value`` lines.
"""

import os
import secrets
from pathlib import Path

SECRET_NAME = "DOORSTEP_JWT_SECRET"  # noqa: S105 (the variable's name, not a key)
DEFAULT_PATH = "var/secrets.env"
# 48 random bytes, URL-safe base64: 64 characters, well over the 32 the settings require.
_KEY_BYTES = 48


def default_path() -> Path:
    """``DOORSTEP_SECRETS_FILE``, else ``var/secrets.env`` (relative to the working folder)."""
    return Path(os.environ.get("DOORSTEP_SECRETS_FILE") or DEFAULT_PATH)


def read(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of ``path`` (none when it does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def init(path: Path) -> str:
    """Make sure a signing key is at hand; returns what was done, for the console.

    The environment's ``DOORSTEP_JWT_SECRET`` wins (nothing is written); an existing key in
    ``path`` is reused (its mode tightened to 0600); otherwise a random one is added to ``path``,
    created with mode 0600."""
    if os.environ.get(SECRET_NAME):
        return f"{SECRET_NAME} is set in the environment: using it (nothing written)."
    if read(path).get(SECRET_NAME):
        path.chmod(0o600)
        return f"Using the local signing key in {path}."
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as out:
        out.write(f"{SECRET_NAME}={secrets.token_urlsafe(_KEY_BYTES)}\n")
    path.chmod(0o600)  # a file that existed (without a key) may have been wider
    return (
        f"Created a random signing key ({SECRET_NAME}) in {path}: readable by you only, outside "
        "git, reused on every start. Deleting it logs everyone out."
    )


def load(path: Path) -> None:
    """Put the file's ``DOORSTEP_`` values into this process's environment (and so its
    children's), never over a variable that is set already."""
    for name, value in read(path).items():
        if name.startswith("DOORSTEP_") and value and not os.environ.get(name):
            os.environ[name] = value
