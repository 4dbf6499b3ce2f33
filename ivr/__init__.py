"""Homeline IVR: the flow language (model, loader, validator), the per-call state
machine and speech intent.

Flow problems are ``adminfiles.Problem`` values (``FlowInvalid.problems``), the
report shared by every admin-edited file.

The adapters that run flows on real calls live in ``voice`` (``voice.fastagi``,
``voice.agi_runner``); ``ivr.speech`` is imported from its module, not here,
so the pure core stays light.
"""
from __future__ import annotations

from ivr.commands import (
    AWAITING_COMMANDS,
    FINAL_COMMANDS,
    CallerHungUp,
    CollectDigits,
    Command,
    DigitsEntered,
    Event,
    Hangup,
    InputTimedOut,
    Lookup,
    LookupCompleted,
    LookupFailed,
    Play,
    PromptItem,
    PromptRef,
    RecordAudio,
    RecordingFinished,
    ReturnToDialplan,
    Route,
    RouteAccepted,
    RouteRequest,
    SayDigits,
    SayNumber,
    SetLanguage,
    SetVariable,
    SpeechRecognized,
    SurveyAnswered,
    Transfer,
    Voicemail,
)
from ivr.engine import CallSession
from ivr.errors import AgiProtocolError, EngineError, FlowInvalid, IvrError
from ivr.expr import Expr, ExprError, Secret, parse_expr
from ivr.flow import Flow
from ivr.loader import check_flow, load_flow, load_prompt_catalog
from ivr.registry import FlowRegistry, ReloadReport

__all__ = [
    "AWAITING_COMMANDS", "FINAL_COMMANDS", "CallerHungUp", "CollectDigits", "Command",
    "DigitsEntered", "Event", "Hangup", "InputTimedOut", "Lookup", "LookupCompleted",
    "LookupFailed", "Play", "PromptItem", "PromptRef", "RecordAudio", "RecordingFinished",
    "ReturnToDialplan", "Route", "RouteAccepted", "RouteRequest", "SayDigits", "SayNumber",
    "SetLanguage", "SetVariable", "SpeechRecognized", "SurveyAnswered", "Transfer", "Voicemail",
    "CallSession", "AgiProtocolError", "EngineError", "FlowInvalid", "IvrError",
    "Expr", "ExprError", "Secret", "parse_expr", "Flow", "check_flow", "load_flow",
    "load_prompt_catalog", "FlowRegistry", "ReloadReport",
]
