"""The ``doorstep`` command: run, serve, dispatcher, warm-up, migrate, init-secrets, seed-demo,
create-admin, bench."""

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from app.config import get_settings

ROOT = Path(__file__).resolve().parent.parent


def migrate(revision: str = "head") -> None:
    """Bring the database at DOORSTEP_DATABASE_URL up to ``revision``."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    command.upgrade(config, revision)


def _metrics_dir(*, shared: bool) -> None:
    """Prometheus' multiprocess mode, set before anything imports ``app.metrics``: wherever
    several processes serve one ``/metrics`` (``--workers`` above 1, ``doorstep run``), they
    share a folder; one given in ``PROMETHEUS_MULTIPROC_DIR`` is used as it is."""
    import tempfile

    if shared and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="doorstep-metrics-")
    if path := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from app.metrics import prepare_multiprocess_dir

        prepare_multiprocess_dir(path)


def _signing_key_or_exit(secrets_file: str) -> None:
    """Read the local secrets file (if any) into the environment, then refuse to go on without
    a signing key: the API has no built-in one."""
    from app import localsecrets
    from app.config import NO_JWT_SECRET

    localsecrets.load(Path(secrets_file))
    get_settings.cache_clear()
    if get_settings().jwt_secret is None:
        sys.exit(f"doorstep: {NO_JWT_SECRET}")


def serve(host: str, port: int, workers: int) -> None:
    import uvicorn

    from app.logs import uvicorn_log_config

    _metrics_dir(shared=workers > 1)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_config=uvicorn_log_config(get_settings()),
        access_log=False,
    )


def dispatcher(host: str, port: int, districts: list[str] | None) -> None:
    import uvicorn

    _metrics_dir(shared=False)
    from app.dispatcher.probe import create_probe_app
    from app.logs import uvicorn_log_config

    settings = get_settings()
    uvicorn.run(
        create_probe_app(settings, districts=districts),
        host=host,
        port=port,
        log_config=uvicorn_log_config(settings),
        access_log=False,
    )


def warm_up(everything: bool) -> None:
    import time

    from app.dispatch.index import compiled_versions, warm_up

    started = time.monotonic()
    print("compiling the dispatch kernels (once per install; a few minutes on a small machine)")
    warm_up(dayplan=everything)
    took = time.monotonic() - started
    print(f"dispatch kernels ready in {took:.1f} s ({compiled_versions()} compiled versions)")


def main(argv: list[str] | None = None) -> None:
    from app import localsecrets

    secrets_help = "the local secrets file (default DOORSTEP_SECRETS_FILE or var/secrets.env)"
    parser = argparse.ArgumentParser(prog="doorstep", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="serve the API with uvicorn")
    p_serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    p_serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p_serve.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")))
    p_serve.add_argument(
        "--secrets-file", default=str(localsecrets.default_path()), help=secrets_help
    )
    p_run = sub.add_parser(
        "run", help="the embedded default: a dispatcher and the API, supervised (make run)"
    )
    p_run.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    p_run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p_run.add_argument(
        "--demo",
        action="store_true",
        help="keep the demo district's crews current (make run; or DOORSTEP_DEMO=1)",
    )
    p_run.add_argument(
        "--secrets-file", default=str(localsecrets.default_path()), help=secrets_help
    )
    p_disp = sub.add_parser(
        "dispatcher", help="dispatch districts (PostgreSQL: any number, shared by districts)"
    )
    p_disp.add_argument("--host", help="probe address (default DOORSTEP_DISPATCHER_HOST)")
    p_disp.add_argument("--port", type=int, help="probe port (default DOORSTEP_DISPATCHER_PORT)")
    p_disp.add_argument(
        "--districts", help="comma-separated district codes this process may take (default: any)"
    )
    p_warm = sub.add_parser(
        "warm-up", help="compile the dispatch kernels into numba's cache (make install runs it)"
    )
    p_warm.add_argument("--all", action="store_true", help="also the day planner's (bench)")
    p_migrate = sub.add_parser("migrate", help="apply database migrations")
    p_migrate.add_argument("revision", nargs="?", default="head")
    p_secrets = sub.add_parser(
        "init-secrets",
        help="create a random local signing key once (make run), or say which one is used",
    )
    p_secrets.add_argument("--file", default=str(localsecrets.default_path()), help=secrets_help)
    p_seed = sub.add_parser(
        "seed-demo",
        help="load the demo district (Xi'an, Lianhu) with its published log-ins: needs --demo",
    )
    p_seed.add_argument(
        "--if-empty", action="store_true", help="do nothing if accounts already exist"
    )
    p_seed.add_argument(
        "--demo",
        action="store_true",
        help="yes, load demo data (or DOORSTEP_DEMO=1); refused without",
    )
    p_bench = sub.add_parser(
        "bench", help="measure the dispatch engine and the live service, write BENCHMARKS.md"
    )
    p_bench.add_argument(
        "--sections",
        default="single,update,batch,dayplan,live,dispatcher,console,limits",
        help="comma-separated: single, update, batch, dayplan, live (needs PostgreSQL), "
        "dispatcher (cold and warm starts, the API during a pass; PostgreSQL if it answers), "
        "console (the operator console in Chromium with 500 open orders), "
        "limits (the abuse limiter's cost per request)",
    )
    p_bench.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    p_bench.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    p_admin = sub.add_parser(
        "create-admin",
        help="create a platform admin (password from DOORSTEP_ADMIN_PASSWORD or a prompt)",
    )
    p_admin.add_argument("login")
    p_admin.add_argument("--name", default="Platform administrator")
    args = parser.parse_args(argv)

    if args.command in ("serve", "run"):
        _signing_key_or_exit(args.secrets_file)
    if args.command not in ("serve", "dispatcher"):  # those configure it through uvicorn
        from app.logs import configure_logging

        configure_logging(get_settings())
    if args.command == "run":
        from app.supervisor import run

        _metrics_dir(shared=True)  # the dispatcher's figures appear in the API's /metrics
        run(args.host, args.port, demo=args.demo or get_settings().demo)
    elif args.command == "init-secrets":
        print(localsecrets.init(Path(args.file)))
    elif args.command == "dispatcher":
        codes = (
            [c.strip() for c in args.districts.split(",") if c.strip()] if args.districts else None
        )
        settings = get_settings()
        dispatcher(
            args.host or settings.dispatcher_host,
            settings.dispatcher_port if args.port is None else args.port,
            codes,
        )
    elif args.command == "warm-up":
        warm_up(args.all)
    elif args.command == "serve":
        settings = get_settings()
        if settings.is_sqlite and args.workers > 1:
            sys.exit("SQLite supports one worker; use PostgreSQL for --workers > 1")
        serve(args.host, args.port, args.workers)
    elif args.command == "migrate":
        migrate(args.revision)
    elif args.command == "seed-demo":
        from app.errors import AppError
        from app.seed import seed_demo

        if not (args.demo or get_settings().demo):
            sys.exit(
                "seed-demo: refusing to load demo data (made-up people, log-ins with a published "
                "password) without --demo or DOORSTEP_DEMO=1"
            )
        try:
            print(asyncio.run(seed_demo(get_settings(), if_empty=args.if_empty)))
        except AppError as exc:
            sys.exit(f"seed-demo: {exc.detail}")
    elif args.command == "bench":
        from app.bench.run import SECTIONS
        from app.bench.run import main as bench

        sections = [s.strip() for s in args.sections.split(",") if s.strip()]
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            sys.exit(f"bench: unknown sections {sorted(unknown)}; choose from {sorted(SECTIONS)}")
        given = " ".join(argv if argv is not None else sys.argv[1:])
        command = "make bench" if given == "bench" else f"doorstep {given}"
        bench(sections, Path(args.out), args.quick, command)
    elif args.command == "create-admin":
        from app.errors import AppError
        from app.services.accounts import create_admin_account

        password = os.environ.get("DOORSTEP_ADMIN_PASSWORD") or getpass.getpass("Password: ")
        try:
            asyncio.run(create_admin_account(get_settings(), args.login, password, args.name))
        except AppError as exc:
            sys.exit(f"create-admin: {exc.detail}")
        print(f"admin {args.login!r} created")


if __name__ == "__main__":
    main()
