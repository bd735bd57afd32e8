"""Swagger UI served by the API itself, from the pinned swagger-ui-bundle-v2 package: no CDN needed."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
"""Where the Swagger UI scripts, style sheet and icons are served."""

SWAGGER_UI_PARAMETERS = {
    "deepLinking": True,
    # Swagger UI would otherwise ask validator.swagger.io about the document and show its badge.
    "validatorUrl": None,
}


def install_offline_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs with every script and style from ``ASSETS_PATH`` on the same server.

    ``app`` must be built with ``docs_url=None`` and ``redoc_url=None``: FastAPI's own pages load
    their scripts from a CDN, which a machine without internet access cannot reach
    (docs/design/http.md).
    """
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} - Swagger UI"

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=title,
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    app.add_route(DOCS_PATH, swagger_ui, include_in_schema=False)
    app.mount(ASSETS_PATH, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui-assets")
