# Everything a fresh machine needs comes from here: only python3 and access to PyPI are assumed.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
DOORSTEP_DATABASE_URL ?= sqlite+aiosqlite:///./var/doorstep.db
export DOORSTEP_DATABASE_URL
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

# PostgreSQL used by the test suite: the project's own database, created when missing.
TEST_POSTGRES_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/doorstep_test

.PHONY: install run migrate seed test lint typecheck check-migrations test-sqlite test-postgres bench clean i18n

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

# The dispatch kernels are compiled here, once per install (numba's cache, next to the code):
# the service only loads them and never compiles while it runs.
$(VENV)/.installed: $(UV) pyproject.toml uv.lock $(wildcard app/dispatch/*.py)
	$(UV) sync --frozen --python "$$(command -v $(PYTHON))"
	$(BIN)/doorstep warm-up
	@touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/doorstep migrate

# A local demo: a random signing key made once (var/secrets.env, outside git), the demo district
# loaded on purpose (--demo), plain-HTTP cookies (DOORSTEP_ENV=dev unless set).
run: install
	$(BIN)/doorstep init-secrets
	$(BIN)/doorstep migrate
	$(BIN)/doorstep seed-demo --demo --if-empty
	DOORSTEP_ENV=$${DOORSTEP_ENV:-dev} $(BIN)/doorstep run --demo --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check app tests migrations
	$(BIN)/ruff format --check app tests migrations

typecheck: install
	$(BIN)/mypy

check-migrations: install
	rm -f var/alembic-check.db
	DOORSTEP_DATABASE_URL=sqlite+aiosqlite:///./var/alembic-check.db $(BIN)/alembic upgrade head
	DOORSTEP_DATABASE_URL=sqlite+aiosqlite:///./var/alembic-check.db $(BIN)/alembic check
	rm -f var/alembic-check.db*

# axe-core for the page tests, from the npm registry (pinned version and integrity).
AXE := $(TOOLS)/axe-core-4.14.1.min.js
$(AXE): tests/fetch_axe.py | $(UV)
	$(PYTHON) -m tests.fetch_axe $@

# The suite runs on TEST_WORKERS processes (pytest-xdist; each has a database of its own, see
# tests/conftest.py). The page tests (Chromium, a live server per test) run after it in one
# pytest process of their own: a fresh heap, and no second worker stealing their server's CPU.
# They run on SQLite, the database `make run` serves them from; the journeys run on PostgreSQL
# too. PYTEST_ARGS runs just those arguments, in one process.
TEST_WORKERS ?= 2
PAGE_TESTS := $(sort $(wildcard tests/test_page*.py))
define suite
	$(if $(PYTEST_ARGS),$(1) $(BIN)/pytest -q $(PYTEST_ARGS),$(1) $(BIN)/pytest -q -n $(TEST_WORKERS) $(addprefix --ignore=,$(PAGE_TESTS)) && $(1) $(BIN)/pytest -q -p no:xdist $(2))
endef

test-sqlite: install $(AXE)
	$(call suite,DOORSTEP_TEST_DATABASE_URL=sqlite+aiosqlite:///./var/test.db,$(PAGE_TESTS))

# `alembic check` compares a database built by the migrations with the models on PostgreSQL too
# (partial indexes, EXCLUDE constraint, types); the suite's workers build their own.
test-postgres: install $(AXE)
	$(BIN)/python -m tests.pg_setup --fresh "$(TEST_POSTGRES_URL)"
	DOORSTEP_DATABASE_URL=$(TEST_POSTGRES_URL) $(BIN)/doorstep migrate
	$(BIN)/alembic -x url=$(TEST_POSTGRES_URL) check
	$(call suite,DOORSTEP_TEST_DATABASE_URL=$(TEST_POSTGRES_URL),tests/test_page_journeys.py)

test: lint typecheck check-migrations test-sqlite test-postgres

# pyvroom (the day-plan reference) is a bench-only dependency group.
bench: install
	$(UV) sync --frozen --group bench
	$(BIN)/doorstep bench $(BENCH_ARGS)

# New page texts (templates, page scripts' t("..."), app/web Python) into the catalogue; then
# translate the empty msgstr entries in app/web/locale/zh_CN/LC_MESSAGES/messages.po.
i18n: install
	mkdir -p var
	$(BIN)/pybabel extract -F babel.cfg -k t -k _ --no-location --omit-header --sort-output -o var/messages.pot .
	$(BIN)/pybabel update -i var/messages.pot -d app/web/locale -l zh_CN --no-wrap --no-fuzzy-matching --ignore-obsolete

clean:
	rm -rf $(VENV) $(TOOLS) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
