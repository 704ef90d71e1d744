# syntax=docker/dockerfile:1
# Doorstep API: `docker build -t doorstep .` then
# `docker run -p 8000:8000 -v doorstep-data:/data doorstep` (SQLite in the volume), or pass
# -e DOORSTEP_DATABASE_URL=postgresql+asyncpg://... (and -e DOORSTEP_ENV=prod -e DOORSTEP_JWT_SECRET=...).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

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
    && /app/.venv/bin/python -c "from app.dispatch.index import warm_up; warm_up()"
# ^ compiles the dispatch kernels into app/dispatch/__pycache__ (numba's on-disk cache), which
#   the unprivileged user only needs to read: no compile pause at the first order.

ENV PATH="/app/.venv/bin:$PATH" \
    DOORSTEP_DATABASE_URL=sqlite+aiosqlite:////data/doorstep.db \
    PORT=8000

USER doorstep
VOLUME ["/data"]
EXPOSE 8000

# Ready means the database answers (slim images have no curl; urlopen raises on 503).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8000'), timeout=4)"]

CMD ["sh", "-c", "doorstep migrate && exec doorstep serve --host 0.0.0.0 --port ${PORT:-8000}"]
