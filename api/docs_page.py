"""`/docs`: Swagger UI served from this process (its assets ship in the `fastapi-offline`
package), so the page works without internet and its CSP allows only this origin."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from api.errors import ApiError
from api.page_policy import inline_script_hashes, page_policy

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}


@cache
def _asset(name: str) -> bytes:
    return (resources.files("fastapi_offline") / "static" / name).read_bytes()


def install_docs(app: FastAPI, openapi_url: str) -> None:
    """Serve Swagger UI at /docs (call when ENABLE_SWAGGER is on)."""
    page_bytes = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        oauth2_redirect_url=None,
    ).body
    page = bytes(page_bytes).decode()
    # Swagger UI fetches the spec (and "Try it out" calls the API) from this origin; its CSS
    # draws icons as data: SVGs.
    policy = page_policy(
        script=["'self'", *inline_script_hashes(page)],
        style=["'self'"],
        img=["'self'", "data:"],
        connect=["'self'"],
    )

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"content-security-policy": policy})

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise ApiError(404, "not_found", f"no docs asset {name!r}")
        return Response(
            _asset(name), media_type=media_type, headers={"cache-control": "max-age=86400"}
        )
