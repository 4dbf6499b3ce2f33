"""Inbound text: ``/webhooks/sms`` (Twilio's shape) and ``/webhooks/messenger``.

Machine to machine: no session, no CSRF token (these routes do not go through
``web.api``'s endpoint wrapper, which is where login, ``check_origin`` and the
CSRF check live); each request is authenticated by the provider's signature
instead, checked in constant time (`hmac.compare_digest`) before anything is
stored. Every refusal stores nothing: 413 over `MAX_WEBHOOK_BODY` (read no
further), 400 a malformed form or JSON, 403 a missing or wrong signature or
verify token (or the secret not set: ``homeline secrets set NAME``).

- SMS (Twilio, "Webhooks security": https://www.twilio.com/docs/usage/webhooks/
  webhooks-security): ``X-Twilio-Signature`` is base64(HMAC-SHA1(auth token,
  URL + each POST parameter sorted by name, name then value)). The URL is the
  one configured at Twilio, query string included, exactly as Twilio called it;
  behind a proxy the request's own URL is not that one (scheme, host and port
  rewritten), so ``providers.sms.webhook_url`` in text.yaml names it, and
  without it the URL is rebuilt from the request. As Twilio's own helper
  libraries do, the URL is tried with and without the scheme's standard port
  (Twilio may sign either).
- Messenger (Meta, "Webhooks for Messenger Platform"): ``GET`` is the
  verification handshake (``hub.mode=subscribe``, ``hub.verify_token`` equal to
  ``messenger:verify_token``: answer ``hub.challenge``); ``POST`` carries
  ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>``,
  checked on the raw bytes before the JSON is parsed. Message text and
  postbacks (their payload) are handled; echoes, reads and unknown fields are
  ignored.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from web.api import read_body
from web.errors import ApiError
from web.textexec import TextChannels

__all__ = ["webhook_routes", "twilio_signature", "twilio_url_variants", "MAX_WEBHOOK_BODY",
           "messenger_signature"]

log = logging.getLogger("homeline.web.webhooks")
MAX_WEBHOOK_BODY = 32 * 1024  # an SMS form is under 2 KiB; a Messenger batch well under this
MAX_TEXT = 4096
_TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """base64 HMAC-SHA1 of ``url`` + the parameters sorted by name, name then value."""
    data = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def twilio_url_variants(url: str) -> list[str]:
    """``url`` as given, without the scheme's standard port, and with it."""
    u = urlsplit(url)
    std = {"https": 443, "http": 80}.get(u.scheme)
    out = [url]
    host = u.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if std is not None:
        if u.port == std:
            out.append(urlunsplit((u.scheme, host, u.path, u.query, u.fragment)))
        elif u.port is None:
            out.append(urlunsplit((u.scheme, f"{host}:{std}", u.path, u.query, u.fragment)))
    return out


def messenger_signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class _NoWebhookQuery(logging.Filter):
    """uvicorn's access log line shows the query string: for the handshake that is
    ``hub.verify_token``. Webhook paths are logged without it."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) \
                and args[2].startswith("/webhooks/") and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?...", *args[3:])
        return True


def _quiet_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _NoWebhookQuery) for f in access.filters):
        access.addFilter(_NoWebhookQuery())


def _refuse(status: int, why: str) -> Response:
    return JSONResponse({"error": why}, status_code=status)


def _request_url(request: Request) -> str:
    u = request.url
    return urlunsplit((u.scheme, u.netloc, u.path, u.query, ""))


def webhook_routes(text: TextChannels) -> list[BaseRoute]:
    _quiet_access_log()

    async def sms(request: Request) -> Response:
        try:
            body = await read_body(request, MAX_WEBHOOK_BODY)
        except ApiError as exc:
            return exc.response()
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return _refuse(400, "expected a form (application/x-www-form-urlencoded)")
        try:
            params = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                               strict_parsing=bool(body), max_num_fields=200)
        except (UnicodeDecodeError, ValueError):
            return _refuse(400, "malformed form body")
        token = await run_in_threadpool(text.secret, "sms:auth_token")
        given = request.headers.get("x-twilio-signature", "")
        url = text.config.providers.sms_webhook_url or _request_url(request)
        if not token or not given or not any(
                hmac.compare_digest(twilio_signature(token, u, params).encode(),
                                    given.encode("utf-8", "replace"))
                for u in twilio_url_variants(url)):
            log.warning("sms webhook refused: %s", "no sms:auth_token set" if not token
                        else "missing or wrong X-Twilio-Signature")
            return _refuse(403, "signature missing or wrong")
        fields = dict(params)
        sender, sid, text_in = fields.get("From", ""), fields.get("MessageSid", ""), \
            fields.get("Body")
        if not sender or not sid or text_in is None or len(sender) > 64 or len(sid) > 64:
            return _refuse(400, "From, MessageSid and Body are required")
        to = fields.get("To", "")[:64]
        await run_in_threadpool(text.receive, "sms", sender, sid, text_in[:MAX_TEXT], to)
        return Response(_TWIML_EMPTY, media_type="text/xml")

    async def messenger_verify(request: Request) -> Response:
        q = request.query_params
        token = await run_in_threadpool(text.secret, "messenger:verify_token")
        given = q.get("hub.verify_token", "")
        if q.get("hub.mode") != "subscribe" or not token or not hmac.compare_digest(
                token.encode(), given.encode("utf-8", "replace")):
            log.warning("messenger verification refused")
            return _refuse(403, "verification refused")
        return PlainTextResponse(q.get("hub.challenge", ""))

    async def messenger(request: Request) -> Response:
        try:
            body = await read_body(request, MAX_WEBHOOK_BODY)
        except ApiError as exc:
            return exc.response()
        secret = await run_in_threadpool(text.secret, "messenger:app_secret")
        given = request.headers.get("x-hub-signature-256", "")
        if not secret or not hmac.compare_digest(messenger_signature(secret, body).encode(),
                                                 given.encode("utf-8", "replace")):
            log.warning("messenger webhook refused: %s", "no messenger:app_secret set"
                        if not secret else "missing or wrong X-Hub-Signature-256")
            return _refuse(403, "signature missing or wrong")
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return _refuse(400, "malformed JSON")
        if not isinstance(doc, dict) or not isinstance(doc.get("entry", []), list):
            return _refuse(400, "expected {\"object\": \"page\", \"entry\": [...]}")
        items = list(_messenger_items(doc))
        for psid, mid, text_in, page in items:
            await run_in_threadpool(text.receive, "messenger", psid, mid, text_in, page)
        return PlainTextResponse("EVENT_RECEIVED")

    return [Route("/webhooks/sms", sms, methods=["POST"]),
            Route("/webhooks/messenger", messenger_verify, methods=["GET"]),
            Route("/webhooks/messenger", messenger, methods=["POST"])]


def _s(v: Any, limit: int = 128) -> str | None:
    return v if isinstance(v, str) and 0 < len(v) <= limit else None


def _messenger_items(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(sender PSID, message id, text, page id) of each message or postback; anything else
    (echoes, deliveries, reads, unknown fields, wrong types) is skipped."""
    out: list[tuple[str, str, str, str]] = []
    if doc.get("object") != "page":
        return out
    for entry in doc.get("entry", []):
        if not isinstance(entry, dict) or not isinstance(entry.get("messaging", []), list):
            continue
        for ev in entry.get("messaging", []):
            if not isinstance(ev, dict) or not isinstance(ev.get("sender"), dict):
                continue
            psid = _s(ev["sender"].get("id"), 64)
            if psid is None:
                continue
            rcpt = ev.get("recipient")
            page = (_s(rcpt.get("id"), 64) if isinstance(rcpt, dict) else None) or ""
            msg, pb = ev.get("message"), ev.get("postback")
            if isinstance(msg, dict) and not msg.get("is_echo"):
                mid, t = _s(msg.get("mid")), msg.get("text")
                if mid is not None and isinstance(t, str):
                    out.append((psid, mid, t[:MAX_TEXT], page))
            elif isinstance(pb, dict):
                t = pb.get("payload") if isinstance(pb.get("payload"), str) else pb.get("title")
                ts = ev.get("timestamp")
                mid = _s(pb.get("mid")) or (f"postback:{psid}:{ts}"
                                            if isinstance(ts, int) else None)
                if mid is not None and isinstance(t, str):
                    out.append((psid, mid, t[:MAX_TEXT], page))
    return out
