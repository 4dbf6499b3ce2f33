"""The payment desk's AMI guard: only the four call-class actions it needs, Redirect
only into the two payment contexts, and nothing that looks like a card number."""
from __future__ import annotations

import pytest

from voice.payment import PAYMENT_AGENT_CONTEXT, PAYMENT_CONTEXT, check_payment_action


def test_the_desks_own_actions_pass() -> None:
    check_payment_action("MixMonitorMute", {"Channel": "PJSIP/homeline-caller-00000000",
                                            "Direction": "both", "State": "1"})
    check_payment_action("Redirect", {
        "Channel": "PJSIP/homeline-caller-00000000", "Context": PAYMENT_CONTEXT, "Exten": "s",
        "Priority": "1", "ExtraChannel": "PJSIP/amy-00000001",
        "ExtraContext": PAYMENT_AGENT_CONTEXT, "ExtraExten": "s", "ExtraPriority": "1"})
    check_payment_action("Bridge", {"Channel1": "PJSIP/homeline-caller-00000000",
                                    "Channel2": "PJSIP/amy-00000001", "Tone": "no"})
    check_payment_action("Hangup", {"Channel": "PJSIP/amy-00000001"})


@pytest.mark.parametrize(("name", "fields", "why"), [
    ("Originate", {"Channel": "PJSIP/amy"}, "only MixMonitorMute"),
    ("Setvar", {"Variable": "X", "Value": "1"}, "only MixMonitorMute"),
    ("Redirect", {"Channel": "PJSIP/x-1", "Context": "default"}, "not homeline-payment"),
    ("Redirect", {"Channel": "PJSIP/x-1", "Context": PAYMENT_CONTEXT,
                  "ExtraChannel": "PJSIP/amy-2", "ExtraContext": "homeline-agent"},
     "not homeline-payment"),
    ("Hangup", {"Channel": "4111111111111111"}, "card number"),
])
def test_anything_else_is_refused_before_it_is_sent(name: str, fields: dict[str, str],
                                                    why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_payment_action(name, fields)
