"""No built-in signing key and no demo by accident: `doorstep init-secrets` makes a private local
key once and reuses it, `serve`/`run` (and so the Docker image) refuse to start without a key, and
`seed-demo` refuses without its demo flag. (No database involved: once, in the SQLite pass.)"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app import localsecrets
from app.config import Settings
from tests.conftest import IS_POSTGRES

pytestmark = pytest.mark.skipif(IS_POSTGRES, reason="no database involved: once is enough")
ROOT = Path(__file__).resolve().parent.parent
KEY_LINE = re.compile(r"^DOORSTEP_JWT_SECRET=([A-Za-z0-9_-]{64})\n$")


@pytest.fixture
def no_ambient_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DOORSTEP_JWT_SECRET", "DOORSTEP_SECRETS_FILE", "DOORSTEP_DEMO"):
        # Set first, so that whatever a test puts there (localsecrets.load) is undone after it.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def doorstep(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The command, in a folder of its own (no var/secrets.env, no .env), without any key."""
    drop = {"DOORSTEP_JWT_SECRET", "DOORSTEP_JWT_PREVIOUS_SECRETS", "DOORSTEP_SECRETS_FILE"}
    clean = {k: v for k, v in os.environ.items() if k not in drop and k != "DOORSTEP_DEMO"}
    return subprocess.run(  # noqa: S603 (our own command line)
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_init_secrets_makes_a_private_random_key_once_and_reuses_it(
    tmp_path: Path, no_ambient_secret: None
) -> None:
    path = tmp_path / "var" / "secrets.env"

    said = localsecrets.init(path)

    assert "Created a random signing key" in said
    assert str(path) in said
    assert path.stat().st_mode & 0o777 == 0o600
    first = KEY_LINE.match(path.read_text())
    assert first is not None, path.read_text()
    assert "Using the local signing key" in localsecrets.init(path)
    assert path.read_text() == first.group(0)  # reused, not replaced
    other = tmp_path / "elsewhere.env"
    localsecrets.init(other)
    again = KEY_LINE.match(other.read_text())
    assert again is not None
    assert again.group(1) != first.group(1)  # random, not a constant


def test_init_secrets_tightens_a_wide_file_and_leaves_the_environment_s_key_alone(
    tmp_path: Path, no_ambient_secret: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = tmp_path / "secrets.env"
    wide.write_text("DOORSTEP_JWT_SECRET=" + "w" * 40 + "\n")
    wide.chmod(0o644)
    localsecrets.init(wide)
    assert wide.stat().st_mode & 0o777 == 0o600

    monkeypatch.setenv("DOORSTEP_JWT_SECRET", "k" * 40)
    unused = tmp_path / "unused.env"
    assert "set in the environment" in localsecrets.init(unused)
    assert not unused.exists()


def test_the_local_file_fills_the_key_in_but_never_over_the_environment(
    tmp_path: Path, no_ambient_secret: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secrets.env"
    localsecrets.init(path)
    key = localsecrets.read(path)["DOORSTEP_JWT_SECRET"]

    localsecrets.load(path)
    assert Settings(_env_file=None).jwt_signing_key == key  # type: ignore[call-arg]

    monkeypatch.setenv("DOORSTEP_JWT_SECRET", "e" * 40)
    localsecrets.load(path)
    assert os.environ["DOORSTEP_JWT_SECRET"] == "e" * 40


def test_the_cli_makes_the_key_where_make_run_looks_for_it(tmp_path: Path) -> None:
    first = doorstep("init-secrets", cwd=tmp_path)
    again = doorstep("init-secrets", cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert "Created a random signing key" in first.stdout
    assert "var/secrets.env" in first.stdout
    assert "Using the local signing key" in again.stdout
    assert KEY_LINE.match((tmp_path / "var" / "secrets.env").read_text())


@pytest.mark.parametrize("command", ["serve", "run"])
def test_the_api_refuses_to_start_without_a_key(tmp_path: Path, command: str) -> None:
    for env in ({}, {"DOORSTEP_ENV": "dev"}):
        refused = doorstep(command, "--port", "0", cwd=tmp_path, **env)

        assert refused.returncode == 1
        assert "DOORSTEP_JWT_SECRET is not set" in refused.stderr
        assert "doorstep init-secrets" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_seed_demo_refuses_without_the_demo_flag(tmp_path: Path) -> None:
    db = tmp_path / "doorstep.db"

    refused = doorstep(
        "seed-demo", "--if-empty", cwd=tmp_path, DOORSTEP_DATABASE_URL=f"sqlite+aiosqlite:///{db}"
    )

    assert refused.returncode == 1
    assert "refusing to load demo data" in refused.stderr
    assert "--demo or DOORSTEP_DEMO=1" in refused.stderr
    assert not db.exists()  # not even opened


def test_the_demo_flag_comes_from_the_environment_too(
    no_ambient_secret: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not Settings(_env_file=None).demo  # type: ignore[call-arg]
    monkeypatch.setenv("DOORSTEP_DEMO", "1")
    assert Settings(_env_file=None).demo  # type: ignore[call-arg]


def test_make_run_makes_a_key_and_loads_the_demo_on_purpose() -> None:
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe is not None
    steps = recipe.group(1).splitlines()
    assert "doorstep init-secrets" in steps[0]
    assert any("doorstep seed-demo --demo" in step for step in steps)
    assert "doorstep run --demo" in steps[-1]


def test_the_docker_image_bakes_no_key_in_and_starts_through_the_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = re.sub(r"\\\n", " ", dockerfile)
    for line in instructions.splitlines():
        if line.split(" ", 1)[0] in ("ENV", "ARG", "RUN", "CMD", "ENTRYPOINT"):
            assert "JWT_SECRET" not in line, line
    cmd = next(line for line in instructions.splitlines() if line.startswith("CMD"))
    assert "doorstep run" in cmd  # which refuses without DOORSTEP_JWT_SECRET (above)
