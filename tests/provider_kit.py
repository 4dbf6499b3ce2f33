"""A local HTTP server on loopback that plays the text providers and the CRM:
Twilio's Messages resource, Messenger's Send API, and an order-status lookup.
It records every request it received (real HTTP, no doubles of the client)."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

ORDERS = {"12345": {"order_id": "12345", "status_en": "shipped, arriving Thursday",
                    "status_es": "enviado, llega el jueves",
                    "status_fr": "expédiée, livrée jeudi"}}


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Provider:
    url: str
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, prefix: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path.startswith(prefix)]


def start_provider() -> tuple[ThreadingHTTPServer, Provider]:
    holder: list[Provider] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _record(self, body: bytes) -> None:
            with holder[0].lock:
                holder[0].received.append(Received(self.command, self.path,
                                                   {k.lower(): v for k, v in self.headers.items()},
                                                   body))

        def _answer(self, status: int, doc: Any) -> None:
            raw = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            self._record(b"")
            u = urlsplit(self.path)
            if u.path == "/orders":
                order = parse_qs(u.query).get("order", [""])[0]
                if order in ORDERS:
                    self._answer(200, ORDERS[order])
                else:
                    self._answer(404, {"error": "no such order"})
                return
            self._answer(404, {})

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", "0"))
            self._record(self.rfile.read(n))
            if self.path.endswith("/Messages.json"):
                self._answer(201, {"sid": "SM" + "0" * 32, "status": "queued"})
            elif self.path == "/me/messages":
                self._answer(200, {"recipient_id": "x", "message_id": "m_1"})
            else:
                self._answer(404, {})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider = Provider(f"http://127.0.0.1:{server.server_address[1]}")
    holder.append(provider)
    threading.Thread(target=server.serve_forever, name="local-provider", daemon=True).start()
    return server, provider


def provider_text_config(provider: Provider) -> dict[str, Any]:
    """The shipped dialplans/text.yaml with the providers and the CRM lookup on the
    local server, and the IVR's speech intents by absolute path (the file is written
    elsewhere): edit the result, then `write_text_config`."""
    import yaml

    dialplans = Path(__file__).resolve().parents[1] / "dialplans"
    doc: dict[str, Any] = yaml.safe_load((dialplans / "text.yaml").read_text(encoding="utf-8"))
    doc["ivr_intents"] = str(dialplans / "flows" / "support-line.yaml")
    doc["providers"]["sms"]["base_url"] = provider.url
    doc["providers"]["messenger"]["base_url"] = provider.url + "/"
    doc["intents"]["order-status"]["lookup"]["url"] = (
        provider.url + "/orders?customer=${customer}&order=${order}")
    return doc


def write_text_config(doc: dict[str, Any], path: Path) -> Path:
    """``doc`` as a text.yaml at ``path`` (returned)."""
    import yaml

    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def post_sms(client: httpx.Client, base_url: str, token: str, sender: str, body: str,
             sid: str, to: str = "+15550100") -> httpx.Response:
    """A customer's SMS as Twilio posts it to ``base_url``/webhooks/sms: form-encoded,
    signed with ``token`` (`web.webhooks.twilio_signature`); the httpx response."""
    from urllib.parse import urlencode

    from web.webhooks import twilio_signature

    params = {"From": sender, "To": to, "Body": body, "MessageSid": sid}
    sig = twilio_signature(token, f"{base_url}/webhooks/sms", list(params.items()))
    return client.post("/webhooks/sms", content=urlencode(params),
                       headers={"Content-Type": "application/x-www-form-urlencoded",
                                "X-Twilio-Signature": sig})
