"""Wiring of the text channels (issue 11): ``dialplans/text.yaml``, the secret
store's provider secrets, the senders per provider, the IVR's HTTP lookup; the
webhooks' service for the web app, the chat executor for the engine."""
from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from homeline.paths import DIALPLANS_DIR
from homeline.secrets import SecretStore
from routing.directory import Directory
from text import TextConfig, TextConfigError, load_text_config
from text.config import check_routing
from voice.agi_runner import http_lookup
from web.chatexec import ChatExecutor
from web.senders import MessengerSender, Sender, TwilioSender
from web.textexec import TextChannels, TextChatStore

__all__ = ["text_channels", "chat_executor", "TEXT_CONFIG"]

TEXT_CONFIG = DIALPLANS_DIR / "text.yaml"


def _config(path: Path, tell: Callable[[str], None]) -> TextConfig | None:
    if not path.exists():
        return None
    try:
        return load_text_config(path)
    except TextConfigError as exc:
        tell(f"text channels off: {path} has problems:\n{exc}")
        return None


def _senders(config: TextConfig, secrets: SecretStore) -> dict[str, Sender]:
    p = config.providers
    senders: dict[str, Sender] = {}
    if p.sms_base_url:
        senders["sms"] = TwilioSender(p.sms_base_url, p.sms_account_sid, p.sms_from,
                                      lambda: secrets.lookup("sms:auth_token"))
    if p.messenger_base_url:
        senders["messenger"] = MessengerSender(p.messenger_base_url,
                                               lambda: secrets.lookup("messenger:page_token"))
    return senders


def _teller(say: Callable[[str], None] | None) -> Callable[[str], None]:
    return say or (lambda m: print(m, file=sys.stderr))


def text_channels(store: TextChatStore, secrets: SecretStore, clock: Callable[[], datetime],
                  path: Path = TEXT_CONFIG, say: Callable[[str], None] | None = None,
                  directory: Directory | None = None) -> TextChannels | None:
    """The webhooks' service, or None (said why) when the file is missing or has problems."""
    tell = _teller(say)
    config = _config(path, tell)
    if config is None:
        return None
    if directory is not None:
        # a queue text.yaml names that the directory lacks: said, and the router
        # refuses those conversations (the customer is told) rather than none working
        for problem in check_routing(config, directory, str(path)):
            tell(f"text channels: {problem}")
    return TextChannels(config, store, clock, secrets.lookup, _senders(config, secrets),
                        http_lookup)


def chat_executor(store: TextChatStore, secrets: SecretStore, clock: Callable[[], datetime],
                  directory: Directory, path: Path = TEXT_CONFIG,
                  say: Callable[[str], None] | None = None) -> ChatExecutor | None:
    """The engine's executor of the router's chat decisions, or None without text channels."""
    config = _config(path, _teller(say))
    if config is None:
        return None
    return ChatExecutor(config, store, clock, _senders(config, secrets),
                        frozenset(q.id for q in directory.queues))
