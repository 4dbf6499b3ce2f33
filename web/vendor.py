"""The browser-side libraries (htmx, JsSIP, uPlot) the pages load from ``/static/vendor/``.

They come from the npm registry at setup (``package.json`` and
``package-lock.json`` at the top of the repository; ``homeline setup`` runs
``npm ci`` into a cache directory keyed on the lock file), never from the
repository. Only the files named in `VENDOR_FILES` are served, each from its
place under that directory; the rest of ``node_modules`` stays private.
"""
from __future__ import annotations

import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["VENDOR_FILES", "missing_vendor_files", "vendor_route", "SETUP_HINT"]

log = logging.getLogger("homeline.web")

# URL name under /static/vendor/ -> path under the npm cache directory. jssip.min.js
# is bundled at setup (JsSIP 3.13 ships CommonJS only, no browser build; see
# homeline/provision/browser_libs.py).
VENDOR_FILES: dict[str, str] = {
    "htmx.min.js": "node_modules/htmx.org/dist/htmx.min.js",
    "htmx-ext-sse.min.js": "node_modules/htmx-ext-sse/dist/sse.min.js",
    "jssip.min.js": "bundle/jssip.min.js",
    "uPlot.iife.min.js": "node_modules/uplot/dist/uPlot.iife.min.js",
    "uPlot.min.css": "node_modules/uplot/dist/uPlot.min.css",
}

SETUP_HINT = "run `homeline setup` (it installs them from the npm registry with npm ci)"


def missing_vendor_files(vendor_dir: Path | None) -> list[str]:
    """The names of `VENDOR_FILES` not present under ``vendor_dir`` (all when None)."""
    if vendor_dir is None:
        return list(VENDOR_FILES)
    return [name for name, rel in VENDOR_FILES.items() if not (vendor_dir / rel).is_file()]


def vendor_route(vendor_dir: Path | None) -> Route:
    """``GET /static/vendor/{name}``: one of `VENDOR_FILES`, 404 for any other name,
    503 naming the fix when setup has not installed the libraries."""
    missing = missing_vendor_files(vendor_dir)
    if missing:
        log.warning("browser libraries missing under %s (%s): %s", vendor_dir or "(no directory)",
                    ", ".join(missing), SETUP_HINT)

    async def serve(request: Request) -> Response:
        name = request.path_params["name"]
        rel = VENDOR_FILES.get(name)
        if rel is None:
            return PlainTextResponse(f"no vendor file {name!r} (served: "
                                     f"{', '.join(VENDOR_FILES)})", status_code=404)
        path = (vendor_dir / rel) if vendor_dir is not None else None
        if path is None or not path.is_file():
            return PlainTextResponse(f"browser library {name} is not installed under "
                                     f"{vendor_dir or '(no directory)'}: {SETUP_HINT}",
                                     status_code=503)
        return FileResponse(path)

    return Route("/static/vendor/{name}", serve, methods=["GET", "HEAD"])
