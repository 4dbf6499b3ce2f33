"""Translate AMI events into the router's own events.

Which AMI events mean what (Asterisk wiki, "Asterisk 22 ManagerEvents"):

- ``DeviceStateChange`` for ``PJSIP/<agent>``: ``UNAVAILABLE``/``INVALID`` means no
  registered contact; any other state means the softphone is registered.
- ``DialEnd`` on the caller's channel (its ``Uniqueid`` is our call id, the agent's
  leg is ``DestChannel``): ``DialStatus: ANSWER`` is an answered offer;
  ``NOANSWER``/``BUSY``/``CHANUNAVAIL``/``CONGESTION`` a failed one; ``CANCEL`` means
  the caller left, which the ``Hangup`` that follows reports.
- ``Hangup`` of the caller's channel ends the call (abandoned if never
  connected); ``Hangup`` of the agent's leg (``Linkedid`` = the caller's
  ``Uniqueid``) ends a connected call from the agent's side.

The translator holds only the mapping from channels to calls; every rule about
what happens next belongs to the router.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from routing.events import (
    AgentRegistered,
    AgentUnregistered,
    CallbackAccepted,
    CallbackNotAnswered,
    CallEnded,
    CallerAbandoned,
    Event,
    OfferAnswered,
    OfferNotAnswered,
)
from voice.ami import AmiEvent

__all__ = ["AmiTranslator", "TrackedCall", "agent_of_channel"]

_UNREACHABLE_STATES = {"UNAVAILABLE", "INVALID", "UNKNOWN"}
_FAILED_DIAL = {"NOANSWER": "no-answer", "BUSY": "busy", "CHANUNAVAIL": "unavailable",
                "CONGESTION": "congestion"}


def agent_of_channel(channel: str) -> str | None:
    """``PJSIP/alice-0000002a`` -> ``alice`` (channel names are ``PJSIP/<endpoint>-<seq>``)."""
    if not channel.startswith("PJSIP/"):
        return None
    name = channel[len("PJSIP/"):]
    endpoint, sep, _seq = name.rpartition("-")
    return endpoint if sep else name


@dataclass(slots=True)
class TrackedCall:
    call_id: str
    channel: str
    phase: str = "waiting"  # waiting | connected | agent-left
    agent_id: str | None = None
    agent_channel: str | None = None  # the agent's leg once answered (ChanSpy's target)
    dialing: str | None = None  # the agent offered the call (its Dial rings them)


@dataclass(slots=True)
class TrackedCallback:
    """A dial-back: ``agent_leg`` (Local ;2, rings the agent) and ``caller_leg``
    (Local ;1, dials the caller once the agent answered), by their Uniqueids."""

    call_id: str
    agent_id: str
    agent_leg: str
    caller_leg: str
    phase: str = "ringing-agent"  # ringing-agent | dialing-caller | connected | over
    legs_up: int = 2
    first_down: str | None = None  # the leg whose Hangup came first (connected)


class AmiTranslator:
    def __init__(self, agent_ids: Iterable[str]) -> None:
        self._agents = set(agent_ids)
        self._registered: set[str] = set()
        self.calls: dict[str, TrackedCall] = {}
        self._callback_legs: dict[str, TrackedCallback] = {}

    def add_agent(self, agent_id: str) -> None:
        self._agents.add(agent_id)

    def track(self, call_id: str, channel: str, agent_id: str | None = None) -> None:
        """A call left the IVR for the router: follow its channel from now on
        (``agent_id``: it is already connected to that agent, e.g. after a restart)."""
        self.calls[call_id] = TrackedCall(call_id=call_id, channel=channel,
                                          phase="connected" if agent_id else "waiting",
                                          agent_id=agent_id)

    def assume_registered(self, agent_id: str) -> None:
        """The router believes the agent registered (stored state): the next device
        state list says otherwise if the phone is gone."""
        if agent_id in self._agents:
            self._registered.add(agent_id)

    def track_callback(self, call_id: str, agent_id: str, agent_leg: str,
                       caller_leg: str) -> None:
        """A dial-back was originated with these channel ids (Originate ChannelId /
        OtherChannelId): follow both legs."""
        cb = TrackedCallback(call_id, agent_id, agent_leg, caller_leg)
        self._callback_legs[agent_leg] = self._callback_legs[caller_leg] = cb

    def callback_leg(self, call_id: str) -> str | None:
        """The agent-ringing leg of the call's dial-back in progress, if any."""
        for cb in self._callback_legs.values():
            if cb.call_id == call_id and cb.phase != "over":
                return cb.agent_leg
        return None

    def forget_callback(self, call_id: str) -> None:
        for leg, cb in list(self._callback_legs.items()):
            if cb.call_id == call_id:
                del self._callback_legs[leg]

    def ringing(self, call_id: str, agent_id: str) -> None:
        """The executor sent the call to ring ``agent_id``: through the trunk to another
        node, the DialEnd's leg is the trunk's (``PJSIP/homeline-node-a-...``), not the
        agent's, so the agent is known from here."""
        call = self.calls.get(call_id)
        if call is not None:
            call.dialing = agent_id

    def channel_of(self, call_id: str) -> str | None:
        call = self.calls.get(call_id)
        return call.channel if call is not None else None

    def agent_channel_of(self, call_id: str) -> tuple[str, str] | None:
        """``(agent id, agent's channel)`` of a call connected to an agent, else None."""
        call = self.calls.get(call_id)
        if call is None or call.phase != "connected" or not call.agent_id \
                or not call.agent_channel:
            return None
        return call.agent_id, call.agent_channel

    def registered(self, agent_id: str) -> bool:
        return agent_id in self._registered

    def registered_agents(self) -> set[str]:
        """Agents whose softphone is registered, as far as AMI has told us."""
        return set(self._registered)

    def translate(self, event: AmiEvent) -> list[Event]:
        handler = getattr(self, f"_on_{event.name}", None)
        return handler(event) if handler else []

    # -- per event -----------------------------------------------------------
    def _device(self, device: str, state: str) -> list[Event]:
        agent = device[len("PJSIP/"):] if device.startswith("PJSIP/") else None
        if agent is None or agent not in self._agents:
            return []
        reachable = state.upper() not in _UNREACHABLE_STATES
        if reachable and agent not in self._registered:
            self._registered.add(agent)
            return [AgentRegistered(agent)]
        if not reachable and agent in self._registered:
            self._registered.discard(agent)
            return [AgentUnregistered(agent)]
        return []

    def _on_DeviceStateChange(self, event: AmiEvent) -> list[Event]:  # noqa: N802
        return self._device(event.get("Device"), event.get("State"))

    def _callback_dial_end(self, cb: TrackedCallback, leg: str, status: str) -> list[Event]:
        if leg == cb.agent_leg and cb.phase == "ringing-agent":
            if status == "ANSWER":
                cb.phase = "dialing-caller"
                return [OfferAnswered(cb.call_id, cb.agent_id)]
            if status in _FAILED_DIAL:
                cb.phase = "over"
                return [OfferNotAnswered(cb.call_id, cb.agent_id, cause=_FAILED_DIAL[status])]
        if leg == cb.caller_leg and cb.phase == "dialing-caller":
            if status == "ANSWER":
                cb.phase = "connected"
                return []
            cb.phase = "over"
            return [CallbackNotAnswered(cb.call_id, _FAILED_DIAL.get(status, status.lower()))]
        return []

    def _callback_hangup(self, cb: TrackedCallback, leg: str) -> list[Event]:
        cb.legs_up -= 1
        if cb.legs_up <= 0:
            self.forget_callback(cb.call_id)
        if cb.phase == "connected":
            # Who hung up is said by the UserEvent the side that hung up sends before its
            # own Hangup ([homeline-callback]); the other leg's Hangup, from another
            # channel, may reach AMI before it. So the first Hangup waits for that word
            # or for the second Hangup (then the first leg down is the best guess).
            if cb.legs_up > 0:
                cb.first_down = leg
                return []
            cb.phase = "over"
            first = cb.first_down or leg
            return [CallEnded(cb.call_id, by="agent" if first == cb.agent_leg else "caller")]
        if cb.phase == "dialing-caller":  # the agent hung up while the caller's phone rang
            cb.phase = "over"
            return [CallbackNotAnswered(cb.call_id, "agent-left")]
        return []  # ringing the agent (cancelled by the router) or already over

    def _on_DialEnd(self, event: AmiEvent) -> list[Event]:  # noqa: N802
        cb = self._callback_legs.get(event.get("Uniqueid"))
        if cb is not None:
            return self._callback_dial_end(cb, event.get("Uniqueid"),
                                           event.get("DialStatus").upper())
        call = self.calls.get(event.get("Uniqueid"))
        agent = agent_of_channel(event.get("DestChannel"))
        if call is not None and agent not in self._agents and call.dialing:
            agent = call.dialing  # the leg is the trunk's (PJSIP/homeline-node-a-...)
        if call is None or agent is None:
            return []
        status = event.get("DialStatus").upper()
        if status == "ANSWER":
            call.phase, call.agent_id = "connected", agent
            call.agent_channel = event.get("DestChannel")
            return [OfferAnswered(call.call_id, agent)]
        if status in _FAILED_DIAL:
            return [OfferNotAnswered(call.call_id, agent, cause=_FAILED_DIAL[status])]
        return []

    def _on_UserEvent(self, event: AmiEvent) -> list[Event]:  # noqa: N802
        # Homeline's own UserEvents ([homeline-callback-offer], [homeline-agent-dial]),
        # trusted only from the caller's own channel
        cb = self._callback_legs.get(event.get("Uniqueid"))
        said = {"HomelineAgentHungUp": "agent", "HomelineCallerHungUp": "caller"}
        if cb is not None and event.get("UserEvent") in said:
            if cb.phase == "connected":
                cb.phase = "over"
                return [CallEnded(cb.call_id, by=said[event.get("UserEvent")])]
            return []
        call = self.calls.get(event.get("Uniqueid"))
        if call is None:
            return []
        if event.get("UserEvent") == "HomelineCallbackAccepted":
            return [CallbackAccepted(call.call_id)]
        if event.get("UserEvent") == "HomelineAgentHungUp" and call.phase == "connected":
            call.phase = "agent-left"  # the Hangups that follow end nothing more
            return [CallEnded(call.call_id, by="agent")]
        return []

    def _on_Hangup(self, event: AmiEvent) -> list[Event]:  # noqa: N802
        cb = self._callback_legs.get(event.get("Uniqueid"))
        if cb is not None:
            return self._callback_hangup(cb, event.get("Uniqueid"))
        call = self.calls.get(event.get("Uniqueid"))
        if call is not None:
            del self.calls[call.call_id]
            if call.phase == "connected":
                return [CallEnded(call.call_id, by="caller")]
            if call.phase == "agent-left":
                return []
            return [CallerAbandoned(call.call_id)]
        linked = self.calls.get(event.get("Linkedid"))
        agent = agent_of_channel(event.get("Channel"))
        if linked is not None and linked.phase == "connected" and agent == linked.agent_id:
            linked.phase = "agent-left"
            return [CallEnded(linked.call_id, by="agent")]
        return []

    # -- after a reconnect -----------------------------------------------------
    def resync(self, channels: Iterable[AmiEvent], devices: Iterable[AmiEvent]) -> list[Event]:
        """Events missed while AMI was down, from ``CoreShowChannels`` and ``DeviceStateList``."""
        out: list[Event] = []
        for device in devices:
            out += self._device(device.get("Device"), device.get("State"))
        alive = {c.get("Uniqueid"): c for c in channels}
        for call in list(self.calls.values()):
            seen = alive.get(call.call_id)
            if seen is None:
                out += self._on_Hangup(AmiEvent("Hangup", {"Uniqueid": call.call_id}))
                continue
            if call.phase == "waiting" and seen.get("BridgeId"):
                # bridged to an agent while we were away: find the agent's leg
                for other in alive.values():
                    agent = agent_of_channel(other.get("Channel"))
                    if (other.get("BridgeId") == seen.get("BridgeId") and agent
                            and agent in self._agents):
                        call.phase, call.agent_id = "connected", agent
                        call.agent_channel = other.get("Channel")
                        out.append(OfferAnswered(call.call_id, agent))
                        break
        return out
