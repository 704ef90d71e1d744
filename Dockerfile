# syntax=docker/dockerfile:1
# Doorstep API: `docker build -t doorstep .` then
# `docker run -p 8000:8000 -v doorstep-data:/data -e DOORSTEP_JWT_SECRET=... doorstep` (SQLite in
# the volume), or pass -e DOORSTEP_DATABASE_URL=postgresql+asyncpg://... too. The image has no
# signing key: without DOORSTEP_JWT_SECRET (>= 32 random characters) it refuses to start.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    NUMBA_CACHE_DIR=/app/numba-cache \
    NUMBA_CPU_NAME=generic

RUN pip install --no-cache-dir "uv==0.13.8" \
    && useradd --system --create-home --uid 10001 --user-group doorstep \
    && mkdir /data \
    && chown doorstep:doorstep /data

WORKDIR /app

# Dependencies first, from the lock file only: this layer is rebuilt only when they change.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself (installed editable, so `doorstep migrate` finds /app/alembic.ini).
COPY README.md alembic.ini ./
COPY migrations ./migrations
COPY app ./app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev \
    && mkdir -p "$NUMBA_CACHE_DIR" \
    && chown doorstep:doorstep "$NUMBA_CACHE_DIR"
# The dispatch kernels are compiled here, by the user the container runs as, into a cache that
# user owns: numba only uses a cache folder it can write to (else it would fall back to an empty
# one and compile in every new container). NUMBA_CPU_NAME=generic: numba keys its cache by CPU,
# and an image built on one machine runs on others. The dispatcher loads them in about 2 s.
USER doorstep
RUN /app/.venv/bin/doorstep warm-up

ENV PATH="/app/.venv/bin:$PATH" \
    DOORSTEP_DATABASE_URL=sqlite+aiosqlite:////data/doorstep.db \
    PORT=8000

VOLUME ["/data"]
EXPOSE 8000

# Ready means the database answers (slim images have no curl; urlopen raises on 503).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8000'), timeout=4)"]

# The embedded default: the dispatcher and the API as two supervised processes. On PostgreSQL run
# `doorstep serve --workers N` and `doorstep dispatcher` as separate containers instead.
CMD ["sh", "-c", "doorstep migrate && exec doorstep run --host 0.0.0.0 --port ${PORT:-8000}"]
