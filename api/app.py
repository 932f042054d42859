"""The FastAPI app factory: routers, error bodies, docs switch."""

from __future__ import annotations

from fastapi import FastAPI

from api import health
from api.deps import ApiContext
from api.docs_page import install_docs
from api.errors import install_error_handlers
from api.middleware import install_platform
from api.openapi import COMMON, install_openapi
from api.v1 import ROUTERS


def create_app(context: ApiContext) -> FastAPI:
    swagger = context.config.http.enable_swagger
    app = FastAPI(
        title="EvPower API",
        version="1.0",
        docs_url=None,  # api.docs_page serves it, with local assets and its own CSP
        redoc_url=None,
        openapi_url="/openapi.json" if swagger else None,
    )
    app.state.context = context
    install_error_handlers(app)
    install_platform(app, context)
    app.include_router(health.router)
    for router in ROUTERS:
        app.include_router(router, prefix="/api/v1", responses=COMMON)
    install_openapi(app, context.config)
    if swagger:
        install_docs(app, "/openapi.json")
    return app
