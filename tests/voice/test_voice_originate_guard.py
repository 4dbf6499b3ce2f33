"""The Originates the engine may send (a callback; a supervisor's listen/whisper/barge)
are checked before they leave:
anything that could start an application or reach another context is refused."""
from __future__ import annotations

import pytest

from voice.executor import CALLBACK_CONTEXT, check_originate
from voice.supervise import SUPERVISE_CONTEXT, check_spy_originate

GOOD = {"Channel": f"Local/cb-amy@{CALLBACK_CONTEXT}/n", "Context": CALLBACK_CONTEXT,
        "Exten": "caller", "Priority": "1"}


def test_the_callback_originate_passes() -> None:
    check_originate(dict(GOOD))


@pytest.mark.parametrize("change, says", [
    ({"Channel": "PJSIP/amy"}, "is not Local/"),
    ({"Channel": "Local/cb-amy@default/n"}, "is not Local/"),
    ({"Context": "default"}, "context 'default'"),
    ({"Application": "System", "Data": "rm -rf /"}, "no Application/Data"),
])
def test_every_other_originate_is_refused_naming_why(change: dict[str, str], says: str) -> None:
    with pytest.raises(ValueError, match="Originate refused") as err:
        check_originate({**GOOD, **change})
    assert says in str(err.value)


# -- the supervisor desk's Originate (voice/supervise.py): listen, whisper, barge ----------

SPY = {"Channel": "PJSIP/sam", "Context": SUPERVISE_CONTEXT, "Exten": "whisper",
       "Priority": "1", "Async": "true", "ChannelId": "hlspy-1764590000.42-1",
       "Variable": "HOMELINE_SPY=PJSIP/amy-0000001a,HOMELINE_SUPERVISOR=sam,"
                   "HOMELINE_CALL_ID=1764590000.42"}


@pytest.mark.parametrize("exten", ["listen", "whisper", "barge"])
def test_the_spy_originate_passes_for_each_mode(exten: str) -> None:
    check_spy_originate({**SPY, "Exten": exten}, {"sam"}, {"amy"})


@pytest.mark.parametrize("change, says", [
    ({"Channel": "PJSIP/amy"}, "not a supervisor's own endpoint"),  # an agent's phone
    ({"Channel": "Local/x@homeline-supervise/n"}, "not a supervisor's own endpoint"),
    ({"Channel": "PJSIP/sam@trunk"}, "not a supervisor's own endpoint"),
    ({"Context": "homeline-callback"}, "context 'homeline-callback'"),
    ({"Context": "default"}, "context 'default'"),
    ({"Application": "ChanSpy", "Data": "PJSIP/amy-0000001a,qB"}, "no Application/Data"),
    ({"Exten": "spy"}, "extension 'spy'"),
    ({"Codecs": "ulaw"}, "fields ['Codecs'] are not the spy's"),
    ({"Account": "x", "EarlyMedia": "true"}, "fields ['Account', 'EarlyMedia']"),
    ({"Priority": "2"}, "at priority 1"),
    # the spied channel: only an agent's leg, nothing that adds a ChanSpy argument
    ({"Variable": "HOMELINE_SPY=PJSIP/bob-0000001a,HOMELINE_SUPERVISOR=sam,"
                  "HOMELINE_CALL_ID=1.2"}, "not an agent's"),
    ({"Variable": "HOMELINE_SPY=PJSIP/amy-0000001a)qB,HOMELINE_SUPERVISOR=sam,"
                  "HOMELINE_CALL_ID=1.2"}, "not an agent's"),
    ({"Variable": "HOMELINE_SPY=PJSIP/homeline-caller-0000001a,HOMELINE_SUPERVISOR=sam,"
                  "HOMELINE_CALL_ID=1.2"}, "not an agent's"),
    ({"Variable": "HOMELINE_SPY=PJSIP/amy-0000001a,HOMELINE_SUPERVISOR=eve,"
                  "HOMELINE_CALL_ID=1.2"}, "not the spy's own"),
    ({"Variable": "HOMELINE_SPY=PJSIP/amy-0000001a,HOMELINE_SUPERVISOR=sam,"
                  "HOMELINE_CALL_ID=1.2,HOMELINE_AGENT=amy"}, "not the spy's own"),
])
def test_every_other_spy_originate_is_refused_naming_why(change: dict[str, str],
                                                         says: str) -> None:
    with pytest.raises(ValueError, match="Originate refused") as err:
        check_spy_originate({**SPY, **change}, {"sam"}, {"amy"})
    assert says in str(err.value)


def test_the_callback_guard_still_refuses_the_spy_context() -> None:
    with pytest.raises(ValueError, match="Originate refused"):
        check_originate(dict(SPY))
