"""The web adapter's one exception root, and the JSON error every API refusal is.

Every refusal the API makes is a JSON object with an ``"error"`` message that
says what was wrong and what was allowed; some add detail (``"field"``,
``"problems"`` with the CLI's ``[codes]``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["WebError", "ApiError"]


class WebError(Exception):
    """Root of every exception raised by `web`."""


class ApiError(WebError):
    """A refusal with its HTTP status: raised inside a handler, answered as JSON."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None,
                 **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.detail = detail

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.message, **self.detail}, status_code=self.status,
                            headers=self.headers)

    @classmethod
    def bad_field(cls, field: str, message: str) -> ApiError:
        """400 naming the field of the request body that is wrong."""
        return cls(400, f"{field}: {message}", field=field)
