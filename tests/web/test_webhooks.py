"""SMS and Messenger webhooks over real HTTP: the app on uvicorn (loopback), a
local server playing the providers and the CRM, the real store (issue 11)."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import yaml
from provider_kit import Provider, provider_text_config, start_provider
from web_testkit import AGENTS, NOW, SECRET, Clock

from homeline.secrets import SecretStore
from homeline.textwiring import text_channels
from routing import load_directory
from store import SqliteStore
from text import check_text_config
from web import WebServer, WebSettings, create_app
from web.webhooks import MAX_WEBHOOK_BODY, twilio_signature

REPO = Path(__file__).resolve().parents[2]
TOKEN = "twilio-auth-token-for-tests"
APP_SECRET = "messenger-app-secret-for-tests"
VERIFY = "verify-me-please"
PAGE = "page-token-for-tests"
CARD = "4111 1111 1111 1111"
CARD_DIGITS = re.compile(r"4111[ -]?1111[ -]?1111[ -]?1111")


@dataclass
class Stack:
    url: str
    store: SqliteStore
    db: Path
    provider: Provider
    client: httpx.Client
    secrets: SecretStore
    app: Any

    def sms(self, body: str, sid: str, sender: str = "+15550123", *,
            url: str | None = None, token: str = TOKEN, extra: dict[str, str] | None = None,
            to: str = "+15550100") -> httpx.Response:
        params = {"From": sender, "To": to, "Body": body, "MessageSid": sid,
                  "AccountSid": "AC0", "NumMedia": "0", **(extra or {})}
        sig = twilio_signature(token, url or f"{self.url}/webhooks/sms", list(params.items()))
        return self.client.post("/webhooks/sms", content=urlencode(params),
                                headers={"Content-Type": "application/x-www-form-urlencoded",
                                         "X-Twilio-Signature": sig})

    def messenger(self, doc: Any, *, secret: str = APP_SECRET) -> httpx.Response:
        raw = json.dumps(doc).encode()
        sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        return self.client.post("/webhooks/messenger", content=raw,
                                headers={"Content-Type": "application/json",
                                         "X-Hub-Signature-256": sig})

    def rows(self) -> dict[str, int]:
        out = {}
        for t in ("text_conversations", "text_messages", "text_events", "text_processed"):
            out[t] = int(self.store._read(f"SELECT COUNT(*) FROM {t}")[0][0])  # noqa: S608
        return out

    def replies(self, prefix: str) -> list[str]:
        got = self.provider.sent(prefix)
        if prefix.startswith("/2010"):
            return [r.form()["Body"] for r in got]
        return [r.json()["message"]["text"] for r in got]


def _config(provider: Provider, **sms: str) -> Any:
    doc = provider_text_config(provider)
    doc["providers"]["sms"].update(sms)
    return doc


def _stack(tmp_path: Path, **sms: str) -> Iterator[Stack]:
    server, provider = start_provider()
    db = tmp_path / "web.sqlite3"
    store = SqliteStore(db)
    directory = load_directory(AGENTS)
    secrets = SecretStore(tmp_path / "secrets.json")
    for name, value in (("sms:auth_token", TOKEN), ("messenger:app_secret", APP_SECRET),
                        ("messenger:verify_token", VERIFY), ("messenger:page_token", PAGE)):
        secrets.set(name, value)
    cfg_path = tmp_path / "text.yaml"
    doc = _config(provider, **sms)
    assert check_text_config(doc, str(cfg_path))[1] == []
    cfg_path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    clock = Clock(NOW)
    text = text_channels(store, secrets, clock, cfg_path)
    assert text is not None
    app = create_app(store, directory, clock, WebSettings(session_secret=SECRET), text=text)
    web = WebServer(app, "127.0.0.1", 0).start()
    client = httpx.Client(base_url=web.url, timeout=10.0)
    try:
        yield Stack(web.url, store, db, provider, client, secrets, app)
    finally:
        client.close()
        web.stop()
        server.shutdown()
        server.server_close()
        store.close()


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(tmp_path)


EMPTY = {"text_conversations": 0, "text_messages": 0, "text_events": 0, "text_processed": 0}
SMS_OUT = "/2010-04-01/Accounts/"


def test_sms_self_service_answer_reaches_the_provider(stack: Stack) -> None:
    r = stack.sms("What are your opening hours?", "SM1")
    assert r.status_code == 200 and "<Response>" in r.text
    [sent] = stack.provider.sent(SMS_OUT)
    assert sent.path == "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json"
    form = sent.form()
    assert form["To"] == "+15550123" and form["From"] == "+15550100"
    assert form["Body"].startswith("We are open Monday to Friday")
    assert sent.headers["authorization"].startswith("Basic ")
    conv = stack.store.open_conversation("sms", "+15550123")
    assert conv is not None and conv.intent == "opening-hours"
    msgs = stack.store.text_messages(conv.id)
    assert [(m.direction, m.message_id) for m in msgs] == [("in", "SM1"), ("out", None)]
    assert stack.store.customer_contacts("+15550123")["conversations"] == [conv.id]


@pytest.mark.parametrize("how", ["wrong", "missing", "other-token", "tampered", "rotated"])
def test_sms_bad_signature_is_403_and_stores_nothing(stack: Stack, how: str) -> None:
    params = {"From": "+15550123", "To": "+15550100", "Body": "agent", "MessageSid": "SMx"}
    sig = twilio_signature(TOKEN, f"{stack.url}/webhooks/sms", list(params.items()))
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig}
    if how == "wrong":
        headers["X-Twilio-Signature"] = "AAAA" + sig[4:]
    elif how == "missing":
        del headers["X-Twilio-Signature"]
    elif how == "other-token":
        headers["X-Twilio-Signature"] = twilio_signature(
            "not-the-token", f"{stack.url}/webhooks/sms", list(params.items()))
    elif how == "tampered":
        params["Body"] = "agent now"
    elif how == "rotated":
        stack.secrets.set("sms:auth_token", "rotated")  # the signature was made with the old
    r = stack.client.post("/webhooks/sms", content=urlencode(params), headers=headers)
    assert r.status_code == 403
    assert stack.rows() == EMPTY and stack.provider.received == []


def test_sms_retry_is_not_a_second_message(stack: Stack) -> None:
    for _ in range(3):
        assert stack.sms("opening hours", "SM-retry").status_code == 200
    assert stack.rows()["text_processed"] == 1
    conv = stack.store.open_conversation("sms", "+15550123")
    assert conv is not None
    assert [m.direction for m in stack.store.text_messages(conv.id)] == ["in", "out"]
    assert len(stack.provider.sent(SMS_OUT)) == 1


def test_sms_oversized_and_malformed_bodies(stack: Stack) -> None:
    big = "x" * (MAX_WEBHOOK_BODY + 1)
    r = stack.sms(big, "SMbig")
    assert r.status_code == 413
    form = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"}
    assert stack.client.post("/webhooks/sms", content=b"\xff\xfe=\x00",
                             headers=form).status_code == 400
    assert stack.client.post("/webhooks/sms", content=b"no-equals-sign",
                             headers=form).status_code == 400
    assert stack.client.post("/webhooks/sms", content=b"{}", headers={
        "Content-Type": "application/json"}).status_code == 400
    # signed, but without the fields a message needs
    params = {"Body": "hi"}
    sig = twilio_signature(TOKEN, f"{stack.url}/webhooks/sms", list(params.items()))
    assert stack.client.post("/webhooks/sms", content=urlencode(params), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sig}).status_code == 400
    assert stack.rows() == EMPTY and stack.provider.received == []


def test_sms_unknown_fields_are_signed_and_ignored(stack: Stack) -> None:
    r = stack.sms("opening hours", "SMu", extra={"FromCity": "PARIS", "SmsStatus": "received",
                                                  "ApiVersion": "2010-04-01"})
    assert r.status_code == 200 and len(stack.provider.sent(SMS_OUT)) == 1


@pytest.mark.parametrize(("text", "lang", "notice"), [
    ("AGENT", "en", "A person will answer you here shortly."),
    ("quiero hablar con un agente", "es", "Una persona le responderá aquí en breve."),
    ("je voudrais un conseiller", "fr", "Une personne va vous répondre ici sous peu."),
])
def test_escalation_by_keyword(stack: Stack, text: str, lang: str, notice: str) -> None:
    assert stack.sms(text, "SMa").status_code == 200
    conv = stack.store.open_conversation("sms", "+15550123")
    assert conv is not None and conv.state == "waiting-agent" and conv.language == lang
    [(_, event, data)] = stack.store.text_events(conv.id)
    assert event == "handed-to-person"
    assert data == {"channel": "sms", "customer": "+15550123", "language": lang,
                    "intent": None, "reason": "asked for a person"}
    assert stack.replies(SMS_OUT) == [notice]


def test_order_status_lookup_then_escalation_after_a_failed_answer(stack: Stack) -> None:
    assert stack.sms("Where is my order 12345?", "SM1").status_code == 200
    [lookup] = stack.provider.sent("/orders")
    assert lookup.path == "/orders?customer=%2B15550123&order=12345"
    assert stack.replies(SMS_OUT) == [
        "Order 12345: shipped, arriving Thursday. Did that help? Reply YES or NO."]
    assert stack.sms("no, it did not help", "SM2").status_code == 200
    conv = stack.store.open_conversation("sms", "+15550123")
    assert conv is not None and conv.state == "waiting-agent"
    [(_, event, data)] = stack.store.text_events(conv.id)
    assert (event, data["reason"], data["intent"]) == (
        "handed-to-person", "self-service did not help", "order-status")
    assert stack.replies(SMS_OUT)[-1] == "A person will answer you here shortly."


def test_an_unknown_order_goes_to_a_person(stack: Stack) -> None:
    assert stack.sms("¿dónde está mi pedido 99999?", "SM1", sender="+34600000000"
                     ).status_code == 200
    assert stack.replies(SMS_OUT) == [
        "No he encontrado ese pedido. Una persona le responderá aquí en breve."]
    conv = stack.store.open_conversation("sms", "+34600000000")
    assert conv is not None and conv.state == "waiting-agent"


def test_card_number_masked_in_store_logs_and_reply(stack: Stack,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert stack.sms(f"my card is {CARD}, pay my order", "SMcard").status_code == 200
    assert stack.messenger(_message("psid-1", "mid.card", f"card {CARD.replace(' ', '-')}")
                           ).status_code == 200
    replies = stack.replies(SMS_OUT) + stack.replies("/me/messages")
    assert replies and all(not CARD_DIGITS.search(r) for r in replies)
    assert any("+1 555 0100" in r for r in replies)
    for conv in stack.store.text_conversations():
        for m in stack.store.text_messages(conv.id):
            assert not CARD_DIGITS.search(m.text)
    assert any("[card number removed]" in m.text for c in stack.store.text_conversations()
               for m in stack.store.text_messages(c.id))
    assert not CARD_DIGITS.search(caplog.text) and "card number masked" in caplog.text
    stack.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for f in stack.db.parent.glob("web.sqlite3*"):
        raw = f.read_bytes()
        assert b"4111111111111111" not in raw and b"4111 1111 1111 1111" not in raw
        assert b"4111-1111-1111-1111" not in raw


def test_signed_url_behind_a_proxy(tmp_path: Path) -> None:
    public = "https://pbx.example.org/webhooks/sms"
    for st in _stack(tmp_path, webhook_url=public):
        # what the provider signed: the public URL, with or without the standard port
        assert st.sms("opening hours", "SM1", url=public).status_code == 200
        assert st.sms("opening hours", "SM2",
                      url="https://pbx.example.org:443/webhooks/sms").status_code == 200
        # the URL as this server saw it is not what the provider called
        assert st.sms("opening hours", "SM3").status_code == 403
        assert st.rows()["text_processed"] == 2


# ------------------------------------------------------------------ Messenger
def _message(psid: str, mid: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": "PAGE", "time": 1, "messaging": [
        {"sender": {"id": psid}, "recipient": {"id": "PAGE"}, "timestamp": 1764583200000,
         "message": {"mid": mid, "text": text, **extra}}]}]}


def test_messenger_handshake(stack: Stack) -> None:
    ok = stack.client.get("/webhooks/messenger", params={
        "hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    for params in ({"hub.mode": "subscribe", "hub.verify_token": "wrong",
                    "hub.challenge": "1"},
                   {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY,
                    "hub.challenge": "1"},
                   {"hub.challenge": "1"}):
        assert stack.client.get("/webhooks/messenger", params=params).status_code == 403


def test_messenger_message_and_postback(stack: Stack) -> None:
    r = stack.messenger(_message("psid-7", "mid.1", "bonjour, quels sont vos horaires ?",
                                 nlp={"unknown": True}))
    assert r.status_code == 200
    [sent] = stack.provider.sent("/me/messages")
    assert sent.headers["authorization"] == f"Bearer {PAGE}"
    body = sent.json()
    assert body["recipient"] == {"id": "psid-7"} and body["messaging_type"] == "RESPONSE"
    assert body["message"]["text"].startswith("Nous sommes ouverts")
    postback = {"object": "page", "entry": [{"id": "PAGE", "messaging": [
        {"sender": {"id": "psid-7"}, "recipient": {"id": "PAGE"}, "timestamp": 1764583300000,
         "postback": {"title": "Parler à un conseiller", "payload": "AGENT",
                      "mid": "mid.pb1"}}]}]}
    assert stack.messenger(postback).status_code == 200
    conv = stack.store.open_conversation("messenger", "psid-7")
    assert conv is not None and conv.state == "waiting-agent"
    assert stack.replies("/me/messages")[-1] == "Une personne va vous répondre ici sous peu."
    # echoes of the page's own replies and delivery receipts are not messages
    echo = _message("psid-7", "mid.echo", "x", is_echo=True)
    assert stack.messenger(echo).status_code == 200
    assert stack.messenger({"object": "page", "entry": [{"messaging": [
        {"sender": {"id": "psid-7"}, "delivery": {"mids": ["mid.1"]}}]}]}).status_code == 200
    assert len(stack.store.text_messages(conv.id)) == 4


def test_messenger_bad_signature_is_403_and_stores_nothing(stack: Stack) -> None:
    doc = _message("psid-1", "mid.x", "agent")
    assert stack.messenger(doc, secret="not-the-secret").status_code == 403
    raw = json.dumps(doc).encode()
    for headers in ({}, {"X-Hub-Signature-256": "sha1=abc"},
                    {"X-Hub-Signature-256": "sha256=" + "0" * 64}):
        r = stack.client.post("/webhooks/messenger", content=raw,
                              headers={"Content-Type": "application/json", **headers})
        assert r.status_code == 403
    assert stack.rows() == EMPTY and stack.provider.received == []


def test_messenger_malformed_oversized_and_retried(stack: Stack) -> None:
    raw = b'{"object": "page", "entry": [ '
    sig = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    r = stack.client.post("/webhooks/messenger", content=raw, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sig})
    assert r.status_code == 400
    assert stack.messenger(["not", "an", "object"]).status_code == 400
    assert stack.messenger({"object": "page", "entry": "nope"}).status_code == 400
    big = _message("psid-1", "mid.big", "x" * MAX_WEBHOOK_BODY)
    assert stack.messenger(big).status_code == 413
    assert stack.rows() == EMPTY
    doc = _message("psid-1", "mid.same", "opening hours")
    for _ in range(2):
        assert stack.messenger(doc).status_code == 200
    assert stack.rows()["text_processed"] == 1 and len(stack.provider.sent("/me/messages")) == 1


def test_webhooks_need_no_session_but_the_api_still_does(stack: Stack) -> None:
    # a browser-like cross-site POST to the API is still refused; webhooks are not the API
    r = stack.client.post("/api/agents/alice/state", json={"state": "available"},
                          headers={"Origin": "https://evil.example", "Sec-Fetch-Site":
                                   "cross-site"})
    assert r.status_code == 403
    assert stack.sms("opening hours", "SMs", extra={}).status_code == 200


def test_simultaneous_retries_make_one_message(stack: Stack) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def send(_: int) -> int:
        with httpx.Client(base_url=stack.url, timeout=10.0) as c:
            params = {"From": "+15550999", "To": "+15550100", "Body": "opening hours",
                      "MessageSid": "SMrace"}
            sig = twilio_signature(TOKEN, f"{stack.url}/webhooks/sms", list(params.items()))
            return c.post("/webhooks/sms", content=urlencode(params), headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": sig}).status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(send, range(6))) == [200] * 6
    assert stack.rows()["text_processed"] == 1 and stack.rows()["text_messages"] == 2
    assert len(stack.provider.sent(SMS_OUT)) == 1


def test_the_composition_root_serves_the_webhooks(tmp_path: Path) -> None:
    from homeline.webapp import build_app

    store = SqliteStore(tmp_path / "s.sqlite3")
    app = build_app(store, load_directory(AGENTS), tmp_path, https=False, say=lambda m: None)
    try:
        with WebServer(app, "127.0.0.1", 0) as web, httpx.Client(base_url=web.url) as c:
            # no messenger:verify_token set yet (homeline secrets set): refused, not absent
            r = c.get("/webhooks/messenger", params={"hub.mode": "subscribe",
                                                     "hub.verify_token": "",
                                                     "hub.challenge": "1"})
            assert r.status_code == 403
            assert c.post("/webhooks/sms", content=b"a=b", headers={
                "Content-Type": "application/x-www-form-urlencoded"}).status_code == 403
    finally:
        store.close()


def test_the_access_log_never_shows_the_verify_token(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """`homeline serve` runs uvicorn with its access log: the handshake's query string
    (hub.verify_token) must not reach it."""
    import threading
    import time

    import uvicorn

    from web.server import uvicorn_config

    caplog.set_level(logging.INFO)
    for st in _stack(tmp_path):
        # the same app in a second server, with the access log on as `homeline serve` has
        server = uvicorn.Server(uvicorn_config(st.app, "127.0.0.1", 0, log_config=None))
        # (a WebServer's access_log=False left uvicorn.access not propagating: listen on it)
        logging.getLogger("uvicorn.access").addHandler(caplog.handler)
        t = threading.Thread(target=server.run, daemon=True)
        t.start()
        try:
            deadline = time.monotonic() + 10
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            r = httpx.get(f"http://127.0.0.1:{port}/webhooks/messenger", params={
                "hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"})
            assert r.text == "42"
        finally:
            server.should_exit = True
            t.join(10)
            logging.getLogger("uvicorn.access").removeHandler(caplog.handler)
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/webhooks/messenger?..." in line for line in access), access
    # every server-side line (the test's own httpx client logs the URL it asked for)
    assert not [r for r in caplog.records
                if r.name != "httpx" and VERIFY in r.getMessage()]


def test_twilio_signature_matches_the_documented_example() -> None:
    """The example of Twilio's "Webhooks security" page (auth token 12345)."""
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"),
              ("Digits", "1234"), ("From", "+12349013030"), ("To", "+18005551212")]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    # the order the form came in does not matter: sorted by name
    assert twilio_signature("12345", url, params[::-1]) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_a_reply_the_provider_refuses_is_recorded(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for st in _stack(tmp_path, base_url=f"http://127.0.0.1:{port}"):
        assert st.sms("opening hours", "SM1").status_code == 200
        conv = st.store.open_conversation("sms", "+15550123")
        assert conv is not None
        [(_, event, data)] = st.store.text_events(conv.id)
        assert event == "reply-failed" and data["why"].startswith("sms:")
        assert [m.direction for m in st.store.text_messages(conv.id)] == ["in", "out"]


def test_the_reply_comes_from_the_number_the_customer_texted(stack: Stack) -> None:
    assert stack.sms("opening hours", "SM1", to="+15550177").status_code == 200
    [sent] = stack.provider.sent(SMS_OUT)
    assert sent.form()["From"] == "+15550177" and sent.form()["To"] == "+15550123"
