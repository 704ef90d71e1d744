"""``doorstep run``: the embedded default in one command, as two supervised processes.

The dispatcher and the API are separate processes even here: the engine's work (and, with a
missing cache, numba compiling) holds the Python interpreter, and in one process it would hold
up requests; in its own it cannot. SQLite serves both (WAL: readers never wait; the dispatcher's
write transactions are short). The dispatcher starts first and the API only once the dispatcher
is ready, so when ``/readyz`` of the API first answers, an SOS is dispatched at once.

If the dispatcher dies it is restarted (with a growing pause); if the API dies, everything stops
with its exit status. SIGINT and SIGTERM stop both.

With ``--demo`` (``make run``) it also keeps the demo district current every few minutes
(``seed.refresh_demo``): nobody's phone reports positions in the demo, so without it the crews'
positions would go stale after half an hour and their shifts would end.
"""

import contextlib
import logging
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("doorstep.supervisor")

READY_TIMEOUT_S = 900.0
DEMO_REFRESH_S = 300.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 (our own command line)
        [sys.executable, "-c", "from app.cli import main; main()", *args]
    )


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _stop(*procs: subprocess.Popen[bytes] | None) -> None:
    alive = [p for p in procs if p is not None and p.poll() is None]
    for p in alive:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in alive:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _start_dispatcher(port: int, stopping: Callable[[], bool]) -> subprocess.Popen[bytes]:
    """Start a dispatcher and wait until it is ready (or told to stop); raises SystemExit if it
    cannot start."""
    proc = _child(["dispatcher", "--host", "127.0.0.1", "--port", str(port)])
    started = time.monotonic()
    said = started
    while not _ready(port):
        if stopping():
            return proc
        if proc.poll() is not None:
            sys.exit(f"doorstep run: the dispatcher exited with status {proc.returncode}")
        now = time.monotonic()
        if now - started > READY_TIMEOUT_S:
            _stop(proc)
            sys.exit("doorstep run: the dispatcher did not become ready")
        if now - said >= 10:
            log.info(
                "waiting for the dispatcher to be ready",
                extra={"seconds": round(now - started)},
            )
            said = now
        time.sleep(0.1)
    log.info("dispatcher ready", extra={"seconds": round(time.monotonic() - started, 2)})
    return proc


def _refresh_demo() -> None:
    import asyncio

    from app.config import get_settings
    from app.seed import refresh_demo

    try:
        log.info("demo refreshed", extra={"did": asyncio.run(refresh_demo(get_settings()))})
    except Exception:  # a busy database now is no reason to stop serving: next time
        log.exception("refreshing the demo failed")


def run(host: str, port: int, *, demo: bool = False) -> None:
    """Run the dispatcher and the API until one is stopped (see the module docstring)."""
    probe_port = _free_port()
    dispatcher: subprocess.Popen[bytes] | None = None
    api: subprocess.Popen[bytes] | None = None
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        dispatcher = _start_dispatcher(probe_port, lambda: stopping)
        if stopping:
            return
        api = _child(["serve", "--host", host, "--port", str(port)])
        pause = 1.0
        refreshed = time.monotonic()
        while not stopping:
            time.sleep(0.2)
            if demo and time.monotonic() - refreshed >= DEMO_REFRESH_S:
                _refresh_demo()
                refreshed = time.monotonic()
            if api.poll() is not None:
                log.error("the API exited", extra={"status": api.returncode})
                _stop(dispatcher)
                sys.exit(api.returncode or 1)
            if dispatcher.poll() is not None:
                log.error(
                    "the dispatcher exited; restarting it",
                    extra={"status": dispatcher.returncode, "pause_s": pause},
                )
                time.sleep(pause)
                pause = min(pause * 2, 30.0)
                with contextlib.suppress(SystemExit):
                    # The API keeps serving meanwhile (orders wait in the database).
                    dispatcher = _start_dispatcher(probe_port, lambda: stopping)
                    pause = 1.0
    finally:
        _stop(api, dispatcher)
