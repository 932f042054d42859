"""FastAPI application: REST v1, health, docs, metrics. Starts, signals and queries workflows."""
