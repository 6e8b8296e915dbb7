"""The goal console: a browser UI over the HTTP API, served by the API process at ``/console``.

Plain ES modules and one stylesheet in ``static/``, shipped in the package: no
build step, nothing fetched from anywhere but this origin at run time (the
Content-Security-Policy below makes the browser refuse anything else).
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"

_HEADERS = {
    # Only this origin: no CDN, no inline script, and no one may frame the console.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    # The token travels in the URL fragment of `goal-engine token --console`; never in a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # A new version of the package is seen at the next load, never a stale module.
    "Cache-Control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_HEADERS)
        return response


def console_app() -> ConsoleFiles:
    return ConsoleFiles(directory=STATIC, html=True)
