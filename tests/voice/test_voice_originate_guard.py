"""The one Originate the engine may send (a callback) is checked before it leaves:
anything that could start an application or reach another context is refused."""
from __future__ import annotations

import pytest

from voice.executor import CALLBACK_CONTEXT, check_originate

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
