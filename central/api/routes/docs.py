"""``/docs``: Swagger UI from the package's own copy (``static/vendor/swagger-ui``), not from the
CDN that FastAPI's default page names: the centre's network reaches nothing outside."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from central.static_files import Assets

router = APIRouter(include_in_schema=False)

# Swagger UI sends the OpenAPI to validator.swagger.io for a badge unless the spec is on
# localhost: off, so a desk PC's browser never tries to reach it.
_PARAMETERS = {"validatorUrl": None}


def swagger_page(assets: Assets, openapi_url: str, title: str) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{title} - API",
        swagger_js_url=assets.url("vendor/swagger-ui/swagger-ui-bundle.js"),
        swagger_css_url=assets.url("vendor/swagger-ui/swagger-ui.css"),
        swagger_favicon_url=assets.url("vendor/swagger-ui/favicon-32x32.png"),
        swagger_ui_parameters=_PARAMETERS,
    )


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    app = request.app
    return swagger_page(app.state.assets, app.openapi_url, app.title)
