# syntax=docker/dockerfile:1
# EvPower: one image for every role, chosen by the command (see docker-compose.yml):
#   evpower migrate | evpower serve --role api | evpower serve --role gateway | evpower worker
# Stage 1 downloads the locked dependencies as wheels (hashes checked) and builds EvPower's
# own wheel; stage 2 installs only those wheels on the slim base: no compilers, no build
# tools, no embedded PostgreSQL/Temporal (the `embedded` extra is never installed here).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY requirements.lock ./
RUN python -m pip wheel --require-hashes --wheel-dir /wheels -r requirements.lock
COPY pyproject.toml README.md worker.py ./
COPY activities ./activities
COPY api ./api
COPY db ./db
COPY domain ./domain
COPY gateway ./gateway
COPY payments ./payments
COPY runtime ./runtime
COPY simulator ./simulator
COPY workflows ./workflows
RUN python -m pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 PATH=/opt/evpower/bin:$PATH
RUN python -m venv /opt/evpower
# The wheels are mounted from the build stage, not copied: they never become an image layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    /opt/evpower/bin/pip install --no-index --no-deps /wheels/*.whl
RUN /opt/evpower/bin/pip check
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin evpower \
    && mkdir -p /app && chown evpower:evpower /app
USER evpower
WORKDIR /app
ENV HOST=0.0.0.0 PORT=9210 LOG_FORMAT=json EVPOWER_DATA_DIR=/app/.evpower
EXPOSE 9210
# Every role serves /health on PORT (api, gateway and worker alike); migrate overrides it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["evpower", "healthcheck"]
CMD ["evpower", "serve", "--role", "api"]
