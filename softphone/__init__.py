"""Homeline's softphone layer on pjsua2: home-agent softphones and scripted callers.

One :class:`SoftphoneHost` per process owns pjsua2 and its single thread; any
number of :class:`AgentPhone` and :class:`TestCaller` accounts live on it, and
each call is a thread-safe :class:`CallLeg` handle::

    with SoftphoneHost() as host:
        agent = AgentPhone(host, "agent1", server="127.0.0.1:5060", password="s3cret")
        agent.wait_registered(5)
        caller = TestCaller(host, "alice")
        leg = caller.call("sip:100@127.0.0.1:5060")
        leg.wait_confirmed(10)
        leg.send_dtmf("12#")
        leg.hangup()
        leg.wait_disconnected(5)
"""
from softphone.audio import (
    dominant_frequency,
    read_wav,
    rms_dbfs,
    tone_power_ratio,
    write_tone_wav,
)
from softphone.errors import (
    CallError,
    RegistrationError,
    SoftphoneError,
    SoftphoneTimeout,
    SoftphoneUnavailable,
)
from softphone.events import (
    AudioStarted,
    CallStateChanged,
    DtmfReceived,
    EventLog,
    IncomingCall,
    MessageReceived,
    Registered,
    RegistrationFailed,
    SoftphoneEvent,
    Unregistered,
)
from softphone.host import SoftphoneHost
from softphone.legs import CallLeg
from softphone.phones import AgentPhone, TestCaller

__all__ = [
    "SoftphoneHost",
    "AgentPhone",
    "TestCaller",
    "CallLeg",
    "EventLog",
    "SoftphoneEvent",
    "Registered",
    "RegistrationFailed",
    "Unregistered",
    "IncomingCall",
    "CallStateChanged",
    "AudioStarted",
    "DtmfReceived",
    "MessageReceived",
    "SoftphoneError",
    "SoftphoneUnavailable",
    "SoftphoneTimeout",
    "RegistrationError",
    "CallError",
    "write_tone_wav",
    "read_wav",
    "dominant_frequency",
    "rms_dbfs",
    "tone_power_ratio",
]
