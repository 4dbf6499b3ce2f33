"""`WebServer`: uvicorn serving an app in a thread, started and stopped from Python
(tests, and the engine later); ``homeline serve`` runs uvicorn in the foreground.

uvicorn installs its signal handlers only in the main thread
(``Server.capture_signals``), so a server in a thread leaves them to the process;
``should_exit`` asks it to stop: it stops accepting, finishes open requests
(``timeout_graceful_shutdown``) and returns from ``run``
(https://www.uvicorn.org/deployment/#running-programmatically).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from web.errors import WebError

__all__ = ["WebServer", "uvicorn_config"]


def uvicorn_config(app: Any, host: str, port: int, certfile: Path | None = None,
                   keyfile: Path | None = None, **kw: Any) -> uvicorn.Config:
    """The one uvicorn configuration: HTTPS when a certificate is given; no proxy
    headers trusted (X-Forwarded-For would let a client pick the address the login
    throttle counts); no ``Server:`` header."""
    if (certfile is None) != (keyfile is None):
        raise WebError("HTTPS needs both a certificate file and its key file")
    return uvicorn.Config(app, host=host, port=port,
                          ssl_certfile=str(certfile) if certfile else None,
                          ssl_keyfile=str(keyfile) if keyfile else None,
                          proxy_headers=False, server_header=False, lifespan="off",
                          timeout_graceful_shutdown=5, **kw)


class WebServer:
    """``WebServer(app, "127.0.0.1", 0).start()`` serves on a free port (``.port``)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *,
                 certfile: Path | None = None, keyfile: Path | None = None) -> None:
        # log_config=None: leave the process's logging alone (uvicorn's default
        # dictConfig replaces it); the messages still reach the root logger
        self.config = uvicorn_config(app, host, port, certfile, keyfile, log_config=None,
                                     access_log=False)
        self.https = certfile is not None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> WebServer:
        if self._thread is not None:
            raise WebError("the web server is already started")
        self._server = uvicorn.Server(self.config)
        self._thread = threading.Thread(target=self._serve, args=(self._server,),
                                        name="homeline-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                self._thread = None
                raise WebError(f"the web server could not listen on "
                               f"{self.config.host}:{self.config.port} (see the log)")
            if time.monotonic() > deadline:
                self.stop()
                raise WebError(f"the web server did not start within {timeout_s:g} s")
            time.sleep(0.01)
        return self

    @staticmethod
    def _serve(server: uvicorn.Server) -> None:
        try:
            server.run()
        except SystemExit:
            # uvicorn exits (sys.exit(1)) when it cannot bind, having logged why;
            # `start` sees the thread end and raises WebError naming the address
            pass

    @property
    def port(self) -> int:
        if self._server is None or not self._server.servers:
            raise WebError("the web server is not running")
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.config.host}:{self.port}"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving and wait for the thread; safe to call more than once."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():  # open connections past the graceful timeout
            self._server.force_exit = True
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise WebError("the web server thread did not stop")
        self._thread = None
        self._server = None

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
