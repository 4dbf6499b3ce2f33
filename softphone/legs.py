"""One SIP call as seen by one local account: the pjsua2 ``Call`` and its public handle.

:class:`CallLeg` is the thread-safe handle users hold. It never references a
pjsua2 object: it looks its :class:`PjCall` up by key on the pjsua2 thread, so a
handle dropped on any thread cannot run a pjsua2 destructor there.
"""
from __future__ import annotations

import functools
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from softphone.errors import CallError, SoftphoneTimeout
from softphone.events import (
    AudioStarted,
    CallStateChanged,
    DtmfReceived,
    EventLog,
    SoftphoneEvent,
)
from softphone.host import SoftphoneHost, pj_callback, pj_error_text

__all__ = ["CallLeg", "make_pj_call_class", "wav_complete", "wav_seconds"]

# pjsip_inv_state names (pjsip/sip_inv.h)
STATES = ("NULL", "CALLING", "INCOMING", "EARLY", "CONNECTING", "CONFIRMED", "DISCONNECTED")


def wav_complete(path: Path) -> bool:
    """True once pjmedia's WAV writer has closed ``path``: it writes the RIFF and
    data sizes only when the port is destroyed, which the conference bridge does
    asynchronously on its clock thread (pjmedia conf ports are group-locked)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(44)
            size = fh.seek(0, 2)
    except OSError:
        return False
    if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    riff = int.from_bytes(head[4:8], "little")
    data = int.from_bytes(head[40:44], "little")
    return riff == size - 8 and data == size - 44


def wait_wav_complete(path: Path, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not wav_complete(path):
        if time.monotonic() > deadline:
            raise SoftphoneTimeout(f"recording {path} was not closed within {timeout:g} s")
        time.sleep(0.01)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / float(wav.getframerate())


class CallLeg:
    """Handle on one call of an :class:`~softphone.AgentPhone` or
    :class:`~softphone.TestCaller`. All methods are thread-safe."""

    def __init__(
        self, host: SoftphoneHost, key: int, user: str, direction: str, account_log: EventLog
    ) -> None:
        self._host = host
        self._key = key
        self.user = user
        self.direction = direction  # "incoming" | "outgoing"
        self.events = EventLog()
        self._account_log = account_log
        self._lock = threading.Lock()
        self.call_id = ""
        self.remote_uri = ""
        self.local_uri = ""
        self._state = "NULL"
        self._status = 0
        self._reason = ""
        self._digits: list[str] = []
        self._recording: Path | None = None

    def __repr__(self) -> str:
        return f"<CallLeg {self.direction} {self.user} {self.call_id} {self._state}>"

    # -- state -----------------------------------------------------------------------

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def last_status(self) -> tuple[int, str]:
        """Last SIP status code and reason phrase seen on this call."""
        with self._lock:
            return self._status, self._reason

    @property
    def ended(self) -> bool:
        return self.state == "DISCONNECTED"

    @property
    def dtmf_received(self) -> str:
        """Digits received so far (RFC 4733 or SIP INFO), in order."""
        with self._lock:
            return "".join(self._digits)

    def wait_state(self, state: str, timeout: float = 10.0) -> CallStateChanged:
        """Wait until the call has reached ``state`` (one of CALLING, INCOMING, EARLY,
        CONNECTING, CONFIRMED, DISCONNECTED); returns that state change."""
        if state not in STATES:
            raise CallError(f"unknown call state {state!r}; allowed: {', '.join(STATES)}")
        event = self.events.wait_for(
            lambda e: isinstance(e, CallStateChanged) and e.state == state,
            timeout, what=f"{state} on call {self.call_id or self.user}",
        )
        assert isinstance(event, CallStateChanged)
        return event

    def wait_confirmed(self, timeout: float = 10.0) -> CallStateChanged:
        """Wait for the 200 OK/ACK; raises :class:`CallError` (with the SIP status)
        if the call ends first, :class:`SoftphoneTimeout` if neither happens."""
        event = self.events.wait_for(
            lambda e: isinstance(e, CallStateChanged)
            and e.state in ("CONFIRMED", "DISCONNECTED"),
            timeout, what=f"answer on call {self.call_id or self.user}",
        )
        assert isinstance(event, CallStateChanged)
        if event.state == "DISCONNECTED":
            raise CallError(
                f"call {event.call_id} ended without being answered: "
                f"{event.status} {event.reason}", event.status, event.reason,
            )
        return event

    def wait_disconnected(self, timeout: float = 10.0) -> CallStateChanged:
        """Wait for the end of the call; the event carries the final SIP status/reason."""
        return self.wait_state("DISCONNECTED", timeout)

    def wait_audio(self, timeout: float = 10.0) -> AudioStarted:
        """Wait until the call's audio media is active (RTP flowing both ways)."""
        event = self.events.wait_for(
            lambda e: isinstance(e, AudioStarted), timeout,
            what=f"audio on call {self.call_id or self.user}",
        )
        assert isinstance(event, AudioStarted)
        return event

    def wait_dtmf(self, count: int, timeout: float = 10.0) -> str:
        """Wait until at least ``count`` digits were received; returns all digits."""
        self.events.wait_for(
            lambda e: isinstance(e, DtmfReceived) and len(self.dtmf_received) >= count,
            timeout, what=f"{count} DTMF digit(s) on call {self.call_id or self.user}",
        )
        return self.dtmf_received

    # -- actions ---------------------------------------------------------------------

    def answer(self, status: int = 200, timeout: float = 5.0) -> None:
        """Answer an incoming call (200) or send a provisional response (180, 183)."""
        self._do(lambda c: c.answer_with(status), f"answer {status}", timeout)

    def hangup(self, status: int = 0, timeout: float = 5.0) -> None:
        """End the call: BYE if answered, CANCEL if still ringing out, or a final
        response (``status``, default 603 by pjsua) if ringing in. No-op if ended."""
        self._do(lambda c: c.hangup_with(status), "hangup", timeout, missing_ok=True)

    def send_dtmf(
        self, digits: str, *, interval: float = 0.25, duration_ms: int = 120,
        method: str = "rfc4733",
    ) -> None:
        """Send ``digits`` one at a time, ``interval`` s apart (blocks meanwhile).

        ``method``: ``"rfc4733"`` (RTP telephone-event, RFC 4733 section 2) or
        ``"sip-info"`` (application/dtmf-relay INFO requests).
        """
        allowed = set("0123456789*#ABCDabcd")
        bad = [d for d in digits if d not in allowed]
        if bad:
            raise CallError(f"invalid DTMF digit(s) {''.join(bad)!r}; allowed: 0-9 * # A-D")
        if method not in ("rfc4733", "sip-info"):
            raise CallError(f"unknown DTMF method {method!r}; allowed: rfc4733, sip-info")
        def sender(digit: str) -> Callable[[Any], None]:
            return lambda call: call.send_dtmf(digit, method, duration_ms)

        for i, digit in enumerate(digits):
            if i:
                time.sleep(interval)
            self._do(sender(digit), f"send DTMF {digit!r}", 5.0)

    def play(self, wav: str | Path, *, loop: bool = False) -> float:
        """Play a mono 16-bit PCM WAV into the call (replacing any current playback);
        starts when audio is active. Returns the file's duration in seconds."""
        path = Path(wav).resolve()
        if not path.is_file():
            raise CallError(f"no such WAV file: {path}")
        seconds = wav_seconds(path)
        self._do(lambda c: c.set_player(path, loop), "play", 5.0)
        return seconds

    def play_tone(self, frequencies: float | tuple[float, ...], seconds: float,
                  *, amplitude: float = 0.4) -> float:
        """Play a generated sine tone (one or several summed frequencies, Hz)."""
        from softphone.audio import write_tone_wav

        freqs = frequencies if isinstance(frequencies, tuple) else (frequencies,)
        name = "tone-" + "-".join(f"{f:g}" for f in freqs) + f"-{seconds:g}s-{amplitude:g}.wav"
        path = self._host.workdir / name
        if not path.exists():
            write_tone_wav(path, freqs, seconds, amplitude=amplitude)
        return self.play(path)

    def stop_playing(self) -> None:
        self._do(lambda c: c.set_player(None, False), "stop playing", 5.0, missing_ok=True)

    def record(self, wav: str | Path) -> Path:
        """Record what this side hears (8 kHz mono 16-bit WAV) from now, or from
        when audio starts, until :meth:`stop_recording` or the end of the call."""
        path = Path(wav).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._do(lambda c: c.set_recorder(path), "record", 5.0)
        with self._lock:
            self._recording = path
        return path

    def stop_recording(self, timeout: float = 2.0) -> Path | None:
        """Stop recording (done anyway when the call ends), wait until the WAV file
        is complete (header written) and return its path (None if never recorded)."""
        self._do(lambda c: c.set_recorder(None), "stop recording", 5.0, missing_ok=True)
        with self._lock:
            path = self._recording
        if path is not None:
            wait_wav_complete(path, timeout)
        return path

    def media_info(self, timeout: float = 5.0) -> dict[str, str]:
        """The audio stream as negotiated: ``proto`` (``RTP/AVP``, or ``RTP/SAVP``
        for SRTP, RFC 3711 section 12), ``local`` and ``remote`` RTP addresses."""
        def info(call: Any) -> dict[str, str]:
            pj = self._host.pj
            ci = call.getInfo()  # keep ci alive while reading ci.media
            for mi in ci.media:
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    stream = call.getStreamInfo(mi.index)
                    transport = call.getMedTransportInfo(mi.index)
                    savp = bool(int(stream.proto) & int(pj.PJMEDIA_TP_PROFILE_SRTP))
                    return {"proto": "RTP/SAVP" if savp else "RTP/AVP",
                            "local": str(transport.localRtpName),
                            "remote": str(stream.remoteRtpAddress)}
            raise CallError(f"call {self.call_id}: no active audio stream")
        return dict(self._do(info, "read the media info", timeout))

    # -- pjsua2 thread side ----------------------------------------------------------

    def _do(self, fn: Callable[[Any], Any], what: str, timeout: float,
            missing_ok: bool = False) -> Any:
        def run() -> Any:
            call = self._host.calls.get(self._key)
            if call is None:
                if missing_ok:
                    return None
                raise CallError(f"cannot {what}: call {self.call_id or self.user} has ended")
            try:
                return fn(call)
            except CallError:
                raise
            except Exception as exc:
                raise CallError(f"cannot {what} on call {self.call_id}: "
                                f"{pj_error_text(exc)}") from exc
        return self._host.call(run, timeout, what)

    def _log(self, event: SoftphoneEvent) -> None:
        self.events.append(event)
        self._account_log.append(event)

    def _on_state(self, state: str, status: int, reason: str, call_id: str) -> None:
        with self._lock:
            if call_id:
                self.call_id = call_id
            self._state, self._status, self._reason = state, status, reason
        self._log(CallStateChanged(time.monotonic(), self.user, self.call_id, state,
                                   status, reason))

    def _on_audio(self) -> None:
        self._log(AudioStarted(time.monotonic(), self.user, self.call_id))

    def _on_dtmf(self, digit: str, method: str, duration_ms: int) -> None:
        with self._lock:
            self._digits.append(digit)
        self._log(DtmfReceived(time.monotonic(), self.user, self.call_id, digit, method,
                               duration_ms))


@functools.cache
def make_pj_call_class(pj: Any) -> type:
    """The ``pjsua2.Call`` subclass (built lazily: pjsua2 is imported at run time)."""

    class PjCall(pj.Call):  # type: ignore[misc]
        """Lives in ``host.calls`` only; every method runs on the pjsua2 thread."""

        def __init__(self, host: SoftphoneHost, account: Any, leg: CallLeg,
                     call_id: int = pj.PJSUA_INVALID_ID) -> None:
            super().__init__(account, call_id)
            self.host = host
            self.leg = leg
            self.audio: Any = None
            self.audio_seen = False
            self.player: Any = None
            self.recorder: Any = None
            self.released = False

        # callbacks --------------------------------------------------------------
        @pj_callback
        def onCallState(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API
            ci = self.getInfo()
            state = STATES[ci.state] if 0 <= ci.state < len(STATES) else str(ci.stateText)
            if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                # close the WAV files before anyone waiting on DISCONNECTED reads them
                self.player = None
                self.recorder = None
                self.audio = None
            self.leg._on_state(state, int(ci.lastStatusCode), str(ci.lastReason),
                               str(ci.callIdString))
            if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                # pjsua2 may still touch this Call until the callback returns
                self.host.after_events(self.release)

        @pj_callback
        def onCallMediaState(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API
            ci = self.getInfo()  # keep ci alive while iterating ci.media (pjsua2 pitfall)
            for mi in ci.media:
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    self.audio = self.getAudioMedia(mi.index)
                    self._connect()
                    if not self.audio_seen:
                        self.audio_seen = True
                        self.leg._on_audio()
                    return

        @pj_callback
        def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API
            method = "sip-info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc4733"
            self.leg._on_dtmf(str(prm.digit), method, int(prm.duration))

        # actions ----------------------------------------------------------------
        def answer_with(self, status: int) -> None:
            op = pj.CallOpParam()
            op.statusCode = status
            self.answer(op)

        def hangup_with(self, status: int = 0) -> None:
            op = pj.CallOpParam()
            op.statusCode = status
            self.hangup(op)

        def hangup_quietly(self) -> None:
            try:
                if self.isActive():
                    self.hangup_with(0)
            except Exception:  # noqa: BLE001 - shutting down
                pass

        def send_dtmf(self, digit: str, method: str, duration_ms: int) -> None:
            if self.audio is None and method == "rfc4733":
                raise CallError(f"cannot send DTMF on call {self.leg.call_id}: no active audio")
            prm = pj.CallSendDtmfParam()
            prm.digits = digit
            prm.duration = duration_ms
            prm.method = (pj.PJSUA_DTMF_METHOD_SIP_INFO if method == "sip-info"
                          else pj.PJSUA_DTMF_METHOD_RFC2833)
            self.sendDtmf(prm)

        def set_player(self, path: Path | None, loop: bool) -> None:
            self.player = None  # destroys the previous player (leaves the bridge)
            if path is not None:
                player = pj.AudioMediaPlayer()
                player.createPlayer(str(path), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
                self.player = player
                self._connect()

        def set_recorder(self, path: Path | None) -> None:
            # destroying an AudioMediaRecorder closes the WAV and writes its header
            self.recorder = None
            if path is not None:
                recorder = pj.AudioMediaRecorder()
                recorder.createRecorder(str(path))
                self.recorder = recorder
                self._connect()

        def _connect(self) -> None:
            # audio flows only after startTransmit (conference bridge connections)
            if self.audio is None:
                return
            if self.player is not None:
                self.player.startTransmit(self.audio)
            if self.recorder is not None:
                self.audio.startTransmit(self.recorder)

        def release(self) -> None:
            """Drop media objects and this Call from the registry (pjsua2 thread)."""
            if self.released:
                return
            self.released = True
            self.player = None
            self.recorder = None
            self.audio = None
            self.host.calls.pop(self.leg._key, None)

    return PjCall
