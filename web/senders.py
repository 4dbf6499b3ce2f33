"""Outbound replies: one sender per provider, real HTTP (urllib), the provider's
base URL from ``dialplans/text.yaml`` (a test points it at a local server).

- SMS, Twilio's Messages resource: ``POST {base}/2010-04-01/Accounts/{AccountSid}/
  Messages.json``, form-encoded ``To``, ``From``, ``Body``, HTTP basic auth with
  the account SID and the auth token (Twilio API reference, "Create a Message").
- Messenger, the Send API: ``POST {base}/me/messages`` with JSON
  ``{"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message":
  {"text": ...}}``, the page access token as a Bearer token (in a header, not
  the query string, so it is in no access log).
"""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Protocol

__all__ = ["Sender", "SendFailed", "TwilioSender", "MessengerSender", "SEND_TIMEOUT_S"]

SEND_TIMEOUT_S = 5.0


class SendFailed(Exception):
    """A reply could not be delivered to the provider."""


class Sender(Protocol):
    def send(self, customer: str, text: str, via: str = "") -> None:
        """Send ``text`` to ``customer`` from ``via`` (where they wrote to), or the
        configured sender; raises `SendFailed`."""


def _post(req: urllib.request.Request, what: str) -> None:
    try:
        with urllib.request.urlopen(req, timeout=SEND_TIMEOUT_S) as resp:  # noqa: S310
            resp.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        raise SendFailed(f"{what}: the provider answered {exc.code}") from exc
    except (OSError, ValueError) as exc:
        raise SendFailed(f"{what}: {exc}") from exc


class TwilioSender:
    def __init__(self, base_url: str, account_sid: str, from_number: str,
                 auth_token: Callable[[], str | None]) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_sid, self.from_number, self.auth_token = account_sid, from_number, auth_token

    def send(self, customer: str, text: str, via: str = "") -> None:
        token = self.auth_token()
        if not token:
            raise SendFailed("sms: no sms:auth_token (homeline secrets set sms:auth_token)")
        sid = urllib.parse.quote(self.account_sid, safe="")
        # from the number the customer texted (a centre may have several)
        body = urllib.parse.urlencode({"To": customer, "From": via or self.from_number,
                                       "Body": text}).encode()
        basic = base64.b64encode(f"{self.account_sid}:{token}".encode()).decode("ascii")
        req = urllib.request.Request(
            f"{self.base_url}/2010-04-01/Accounts/{sid}/Messages.json", data=body,
            method="POST", headers={"Authorization": f"Basic {basic}",
                                    "Content-Type": "application/x-www-form-urlencoded"})
        _post(req, "sms")


class MessengerSender:
    def __init__(self, base_url: str, page_token: Callable[[], str | None]) -> None:
        self.base_url = base_url.rstrip("/")
        self.page_token = page_token

    def send(self, customer: str, text: str, via: str = "") -> None:
        token = self.page_token()  # one page: its token says who sends
        if not token:
            raise SendFailed("messenger: no messenger:page_token "
                             "(homeline secrets set messenger:page_token)")
        body = json.dumps({"recipient": {"id": customer}, "messaging_type": "RESPONSE",
                           "message": {"text": text}}).encode()
        req = urllib.request.Request(
            f"{self.base_url}/me/messages", data=body, method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        _post(req, "messenger")
