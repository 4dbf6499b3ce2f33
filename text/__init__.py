"""Homeline text channels (SMS, Messenger): the conversation core.

Pure, like ``ivr`` and ``routing``: no socket, file (but `load_text_config`,
as ``ivr.load_flow``), thread or wall clock. `handle` takes a conversation, an
event and ``now`` and returns the decisions (`SendReply`, `LookUp`,
`HandToPerson`, `SurveyAnswered`); the web adapter (``web.webhooks``, ``web.textexec``) carries
them out. `mask_secure` removes card numbers before anything is kept.
"""
from __future__ import annotations

from text.config import (
    IntentRule,
    Lookup,
    Providers,
    TextConfig,
    TextConfigError,
    check_text_config,
    load_text_config,
)
from text.conversation import (
    CHANNELS,
    STATES,
    SURVEY_ANSWER_WINDOW,
    ChatClosed,
    Conversation,
    Decision,
    Event,
    HandToPerson,
    LookUp,
    LookupAnswered,
    LookupFailed,
    MessageReceived,
    SendReply,
    Step,
    SurveyAnswered,
    detect_language,
    find_intent,
    handle,
    survey_answer,
)
from text.mask import MASK, Masked, luhn_valid, mask_secure

__all__ = [
    "TextConfig", "TextConfigError", "IntentRule", "Lookup", "Providers", "load_text_config",
    "check_text_config", "Conversation", "MessageReceived", "LookupAnswered", "LookupFailed",
    "Event", "SendReply", "LookUp", "HandToPerson", "Decision", "Step", "handle",
    "detect_language", "find_intent", "CHANNELS", "ChatClosed", "SurveyAnswered",
    "survey_answer", "SURVEY_ANSWER_WINDOW", "STATES", "MASK", "Masked", "mask_secure",
    "luhn_valid",
]
