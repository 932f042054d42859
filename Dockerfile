# EvPower image: one image, the role is chosen by the command (serve / worker / migrate).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY db ./db
COPY activities ./activities
COPY workflows ./workflows
COPY gateway ./gateway
COPY api ./api
COPY payments ./payments
COPY runtime ./runtime
COPY simulator ./simulator
COPY worker.py ./
RUN pip install . && useradd --system --uid 10001 evpower
USER evpower
ENV HOST=0.0.0.0 PORT=9210 LOG_FORMAT=json
EXPOSE 9210
CMD ["evpower", "serve"]
