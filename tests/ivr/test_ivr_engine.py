"""The per-call state machine, driven directly: no telephony, no doubles."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from ivr_testkit import FLOWS, OPEN_NOW

from ivr.commands import (
    CallerHungUp,
    CollectDigits,
    DigitsEntered,
    Hangup,
    InputTimedOut,
    Lookup,
    LookupCompleted,
    LookupFailed,
    Play,
    PromptRef,
    RecordAudio,
    RecordingFinished,
    ReturnToDialplan,
    Route,
    RouteAccepted,
    SetLanguage,
    SpeechRecognized,
    SurveyAnswered,
    Voicemail,
)
from ivr.engine import CallSession
from ivr.errors import EngineError
from ivr.loader import load_flow

CARD = "4111111111111111"


@pytest.fixture(scope="module")
def main_menu(catalog):
    return load_flow(FLOWS / "main-menu.yaml", catalog=catalog)


@pytest.fixture(scope="module")
def support(catalog):
    return load_flow(FLOWS / "support-line.yaml", catalog=catalog)


def last(cmds, kind):
    found = [c for c in cmds if isinstance(c, kind)]
    assert found, f"no {kind.__name__} in {cmds}"
    return found[-1]


def new(flow, caller="+15550100"):
    return CallSession(flow, call_id="c-1", caller=caller)


def test_menu_choice_routes_with_intent_language_and_caller(main_menu):
    s = new(main_menu)
    cmds = s.start(OPEN_NOW)
    assert isinstance(cmds[0], Play) and cmds[0].items == (PromptRef("welcome"),)
    assert last(cmds, CollectDigits).node == "main"
    routed = last(s.step(DigitsEntered("2"), OPEN_NOW), Route)
    # the menu's route nodes announce nothing: the IVR need not wait for the router
    assert routed.needs_position is False
    route = routed.request
    assert (route.queue, route.intent, route.language, route.caller) == (
        "tech", "tech", "en", "+15550100")
    assert route.flow_version == main_menu.version
    assert s.step(RouteAccepted(1, 30), OPEN_NOW) == [ReturnToDialplan("routed")]
    assert s.finished and s.outcome == "routed"


def test_no_input_reprompts_then_exhaustion_goes_to_general(main_menu):
    s = new(main_menu)
    s.start(OPEN_NOW)
    for _ in range(2):  # max_retries: 2
        c = last(s.step(InputTimedOut(), OPEN_NOW), CollectDigits)
        assert c.prompts[0] == PromptRef("no-input") and c.prompts[1] == PromptRef("main-menu")
    route = last(s.step(InputTimedOut(), OPEN_NOW), Route).request
    assert route.queue == "general"


def test_invalid_digit_reprompts_with_no_match_prompt(main_menu):
    s = new(main_menu)
    s.start(OPEN_NOW)
    c = last(s.step(DigitsEntered("9"), OPEN_NOW), CollectDigits)
    assert c.prompts[0] == PromptRef("invalid-option")
    assert last(s.step(DigitsEntered("1"), OPEN_NOW), Route).request.queue == "billing"


def test_language_switch_changes_later_prompts_and_the_route(main_menu):
    s = new(main_menu)
    s.start(OPEN_NOW)
    assert last(s.step(DigitsEntered("3"), OPEN_NOW), CollectDigits).node == "choose-language"
    cmds = s.step(DigitsEntered("3"), OPEN_NOW)
    assert SetLanguage("fr") in cmds
    assert last(cmds, CollectDigits).language == "fr"
    assert last(s.step(DigitsEntered("1"), OPEN_NOW), Route).request.language == "fr"


def test_secure_digits_never_leave_the_session_in_clear(support):
    s = new(support)
    out = s.start(OPEN_NOW)
    out += s.step(LookupFailed("down"), OPEN_NOW)
    out += s.step(DigitsEntered("1"), OPEN_NOW)     # English
    out += s.step(DigitsEntered("1"), OPEN_NOW)     # billing
    collect = last(out, CollectDigits)
    assert collect.secure and collect.node == "account-number"
    out += s.step(DigitsEntered("12345678"), OPEN_NOW)
    lookup = last(out, Lookup)
    assert "12345678" in lookup.url              # the CRM dip needs it (never logged)
    out += s.step(LookupCompleted({"status": "ok"}), OPEN_NOW)
    out += s.step(InputTimedOut(), OPEN_NOW)     # no callback
    out += s.step(RouteAccepted(2, 200), OPEN_NOW)
    shown = repr([c for c in out if not isinstance(c, Lookup)]) + repr(s.variables())
    assert "12345678" not in shown
    assert s.variables()["account"] == "[secure: 8 digits]"
    assert "12345678" not in repr(s.route_request)
    assert s.outcome == "routed"


def test_announcement_uses_catalog_prompts(support):
    s = new(support)
    s.start(OPEN_NOW)
    s.step(LookupFailed("down"), OPEN_NOW)
    s.step(DigitsEntered("1"), OPEN_NOW)
    s.step(DigitsEntered("3"), OPEN_NOW)         # sales: no announcement, no callback
    s2 = new(support)
    s2.start(OPEN_NOW)
    s2.step(LookupFailed("down"), OPEN_NOW)
    s2.step(DigitsEntered("1"), OPEN_NOW)
    s2.step(DigitsEntered("2"), OPEN_NOW)        # tech: speech
    s2.step(SpeechRecognized("internet", 1.0, "internet"), OPEN_NOW)
    routed = last(s2.step(InputTimedOut(), OPEN_NOW), Route)  # callback offer declined
    assert routed.needs_position is True   # the router's answer is said to the caller
    play = last(s2.step(RouteAccepted(3, 400), OPEN_NOW), Play)
    assert play.items == (PromptRef("queue-position-3"), PromptRef("wait-about-five-minutes"))


@pytest.mark.parametrize("result, node", [
    (SpeechRecognized("mobile", 1.0, "mobile phone"), None),
    (SpeechRecognized("mobile", 0.3, "mobile phone"), "tech-reason"),  # doubtful: ask again
    (SpeechRecognized(None, 0.0, ""), "tech-reason"),
])
def test_speech_confidence_threshold(support, result, node):
    s = new(support)
    s.start(OPEN_NOW)
    s.step(LookupFailed("down"), OPEN_NOW)
    s.step(DigitsEntered("1"), OPEN_NOW)
    cmds = s.step(DigitsEntered("2"), OPEN_NOW)
    assert last(cmds, RecordAudio).purpose == "speech"
    cmds = s.step(result, OPEN_NOW)
    if node is None:
        assert last(cmds, CollectDigits).node == "tech"     # callback offer first
        assert last(s.step(InputTimedOut(), OPEN_NOW), Route).request.intent == "mobile"
    else:
        again = last(cmds, RecordAudio)
        assert again.node == node
        # a second doubtful answer falls back to the keypad menu, never a guess
        cmds = s.step(result, OPEN_NOW)
        assert last(cmds, CollectDigits).node == "tech-menu"
        assert not any(isinstance(c, Route) for c in cmds)


def test_after_hours_and_holiday_go_to_voicemail(support):
    evening = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
    christmas = datetime(2026, 12, 25, 10, 0, tzinfo=UTC)
    for now in (evening, christmas):
        s = new(support)
        cmds = s.start(now)
        assert last(cmds, Voicemail).box == "support"
        assert s.outcome == "voicemail"


def test_hours_are_evaluated_in_the_calendar_time_zone_with_dst(support):
    # 07:30 UTC in July is 08:30 in London (BST): open; in January it is 07:30: closed.
    july = datetime(2026, 7, 1, 7, 30, tzinfo=UTC)
    january = datetime(2026, 1, 7, 7, 30, tzinfo=UTC)
    assert isinstance(new(support).start(july)[-1], Lookup)
    assert isinstance(new(support).start(january)[-1], Voicemail)
    # the same instant given in another offset gives the same answer
    assert isinstance(new(support).start(july.astimezone(timezone(timedelta(hours=-5))))[-1],
                      Lookup)


def test_lookup_result_becomes_variables_and_branches(support):
    s = new(support)
    s.start(OPEN_NOW)
    s.step(LookupCompleted({"tier": "Gold"}), OPEN_NOW)
    assert s.variables()["customer_tier"] == "gold"
    s.step(DigitsEntered("1"), OPEN_NOW)
    s.step(DigitsEntered("3"), OPEN_NOW)
    assert s.route_request.data["customer_tier"] == "gold"


def test_a_known_customer_is_routed_with_a_higher_priority(support):
    gold = new(support)
    gold.start(OPEN_NOW)
    gold.step(LookupCompleted({"tier": "Gold"}), OPEN_NOW)
    gold.step(DigitsEntered("1"), OPEN_NOW)
    gold.step(DigitsEntered("3"), OPEN_NOW)
    plain = new(support)
    plain.start(OPEN_NOW)
    plain.step(LookupCompleted({"tier": "bronze"}), OPEN_NOW)
    plain.step(DigitsEntered("1"), OPEN_NOW)
    plain.step(DigitsEntered("3"), OPEN_NOW)
    assert gold.route_request.queue == plain.route_request.queue == "sales"
    assert (gold.route_request.priority, plain.route_request.priority) == (3, 0)


def test_callback_offer_accepted(support):
    s = new(support)
    s.start(OPEN_NOW)
    s.step(LookupFailed("x"), OPEN_NOW)
    s.step(DigitsEntered("1"), OPEN_NOW)
    s.step(DigitsEntered("1"), OPEN_NOW)
    s.step(InputTimedOut(), OPEN_NOW)
    s.step(InputTimedOut(), OPEN_NOW)
    s.step(InputTimedOut(), OPEN_NOW)            # account number exhausted -> billing
    routed = last(s.step(DigitsEntered("1"), OPEN_NOW), Route)
    req = routed.request
    assert req.callback is True
    assert routed.needs_position is False  # a callback announces no place in line
    assert s.step(RouteAccepted(4, 900), OPEN_NOW)[-1] == ReturnToDialplan("callback")


def test_post_call_survey(support):
    s = CallSession(support, call_id="c-9", caller="", variables={"intent": "tech"})
    cmds = s.start(OPEN_NOW, entry=support.post_call)
    assert last(cmds, CollectDigits).node == "survey"
    assert last(s.step(DigitsEntered("7"), OPEN_NOW), CollectDigits).prompts[0] == PromptRef(
        "survey-invalid")
    assert last(s.step(DigitsEntered("4"), OPEN_NOW), RecordAudio).purpose == "comment"
    cmds = s.step(RecordingFinished("/tmp/c.wav", 2.0), OPEN_NOW)
    assert SurveyAnswered(4, "/tmp/c.wav") in cmds
    assert isinstance(cmds[-1], Hangup) and s.outcome == "hangup"


def test_naive_now_is_refused(main_menu):
    with pytest.raises(ValueError, match="aware"):
        new(main_menu).start(datetime(2026, 1, 1, 10, 0))


def test_unexpected_event_names_state_and_event(main_menu):
    s = new(main_menu)
    s.start(OPEN_NOW)
    with pytest.raises(EngineError, match="'digits'.*RouteAccepted"):
        s.step(RouteAccepted(), OPEN_NOW)


def test_caller_hang_up_ends_quietly(main_menu):
    s = new(main_menu)
    s.start(OPEN_NOW)
    assert s.step(CallerHungUp(), OPEN_NOW) == []
    assert s.finished and s.outcome == "caller-hangup"
    with pytest.raises(EngineError, match="after the call finished"):
        s.step(DigitsEntered("1"), OPEN_NOW)


def test_transition_table_is_data_shared_with_the_graph(main_menu):
    from ivr.graph import to_dot

    assert main_menu.transitions[("main", "option:3")] == "choose-language"
    dot = to_dot(main_menu)
    for src, _outcome, dst in main_menu.edges():
        assert f'"{src}" -> "{dst}"' in dot
