"""Files the web serves itself: the widget script, Swagger UI (from the swagger-ui-bundle
package: no CDN) and the login-link page. A fixed list of names: nothing else is readable."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

STATIC = Path(__file__).with_name("static")
SWAGGER = Path(swagger_ui_path)
SWAGGER_ASSETS = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}
)
OWN_ASSETS = frozenset({"docs-init.js", "link.js", "reset.js", "dashboard.js", "dashboard.css"})
_TYPES = {".js": "application/javascript", ".css": "text/css", ".html": "text/html"}
# The pages run only our own scripts and styles.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


def _file(path: Path, cache: str = "public, max-age=300") -> web.Response:
    return web.Response(
        body=path.read_bytes(),
        content_type=_TYPES[path.suffix],
        charset="utf-8",
        headers={"Cache-Control": cache},
    )


def _page(name: str) -> web.Response:
    response = _file(STATIC / name, cache="no-store")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


async def widget_js(request: web.Request) -> web.Response:
    """Runs on the business's site: cross-origin loading is its purpose."""
    response = _file(STATIC / "widget.js")
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


async def docs(request: web.Request) -> web.Response:
    return _page("docs.html")


async def login_link_page(request: web.Request) -> web.Response:
    return _page("link.html")


async def reset_page(request: web.Request) -> web.Response:
    return _page("reset.html")


async def dashboard(request: web.Request) -> web.Response:
    return _page("dashboard.html")


async def docs_asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in SWAGGER_ASSETS:
        raise web.HTTPNotFound(reason="no such file")
    return _file(SWAGGER / name, cache="public, max-age=86400")


async def own_asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in OWN_ASSETS:
        raise web.HTTPNotFound(reason="no such file")
    return _file(STATIC / name)
