"""Wiring of the text channels (issue 11): ``dialplans/text.yaml``, the secret
store's provider secrets, the senders per provider, the IVR's HTTP lookup."""
from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from homeline.paths import DIALPLANS_DIR
from homeline.secrets import SecretStore
from routing.directory import Directory
from text import TextConfigError, load_text_config
from text.config import check_routing
from voice.agi_runner import http_lookup
from web.senders import MessengerSender, Sender, TwilioSender
from web.textexec import TextChannels, TextChatStore

__all__ = ["text_channels", "TEXT_CONFIG"]

TEXT_CONFIG = DIALPLANS_DIR / "text.yaml"


def text_channels(store: TextChatStore, secrets: SecretStore, clock: Callable[[], datetime],
                  path: Path = TEXT_CONFIG, say: Callable[[str], None] | None = None,
                  directory: Directory | None = None) -> TextChannels | None:
    """The webhooks' service, or None (said why) when the file is missing or has problems."""
    tell = say or (lambda m: print(m, file=sys.stderr))
    if not path.exists():
        return None
    try:
        config = load_text_config(path)
    except TextConfigError as exc:
        tell(f"text channels off: {path} has problems:\n{exc}")
        return None
    if directory is not None:
        # a queue text.yaml names that the directory lacks: said, and the router
        # refuses those conversations (the customer is told) rather than none working
        for problem in check_routing(config, directory, str(path)):
            tell(f"text channels: {problem}")
    p = config.providers
    senders: dict[str, Sender] = {}
    if p.sms_base_url:
        senders["sms"] = TwilioSender(p.sms_base_url, p.sms_account_sid, p.sms_from,
                                      lambda: secrets.lookup("sms:auth_token"))
    if p.messenger_base_url:
        senders["messenger"] = MessengerSender(p.messenger_base_url,
                                               lambda: secrets.lookup("messenger:page_token"))
    return TextChannels(config, store, clock, secrets.lookup, senders, http_lookup)
