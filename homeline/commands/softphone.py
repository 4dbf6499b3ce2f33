"""`homeline softphone` sub-commands: a home agent's softphone and a one-shot caller.

    homeline softphone agent --server 127.0.0.1:5060 --user agent1 --password s3cret
    homeline softphone agent --tls --ca ca.pem --server pbx.example.org:5061 --user agent1 ...
    homeline softphone call sip:100@127.0.0.1:5060 --from alice --dtmf 12# --duration 5
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("softphone", help="pjsua2 softphone: agent or scripted caller")
    cmds = parser.add_subparsers(dest="softphone_command", metavar="ACTION")
    cmds.required = True

    agent = cmds.add_parser("agent", help="register an agent softphone and print its events")
    agent.add_argument("--server", help="registrar HOST:PORT (omit: no registration)")
    agent.add_argument("--user", required=True, help="SIP user (PJSIP endpoint/aor name)")
    agent.add_argument("--password", default="", help="digest password")
    agent.add_argument("--auth-user", help="digest username if not --user")
    agent.add_argument("--port", type=int, default=0,
                       help="local SIP port, UDP or TLS (0: any free)")
    agent.add_argument("--tls", action="store_true",
                       help="register and take calls over SIP over TLS with SRTP media "
                       "(the server's TLS port, 5061 by default)")
    agent.add_argument("--ca", metavar="PEM",
                       help="with --tls: the CA the server's certificate must chain to "
                       "(Homeline's test CA: <state dir>/tls/ca.pem)")
    agent.add_argument("--bind", default="127.0.0.1", metavar="ADDR",
                       help="local address for SIP and RTP (default 127.0.0.1)")
    agent.add_argument("--answer-delay", type=float, default=0.0, metavar="S",
                       help="seconds of ringing before the automatic answer")
    agent.add_argument("--no-answer", action="store_true", help="leave calls ringing")
    agent.add_argument("--play", metavar="WAV", help="mono 16-bit WAV to play into each call")
    agent.add_argument("--play-loop", action="store_true", help="play the WAV over and over")
    agent.add_argument("--record", metavar="WAV",
                       help="record each call (8 kHz mono); {n} = call number")
    agent.add_argument("--register-timeout", type=float, default=10.0, metavar="S")
    agent.add_argument("--pjsip-log-level", type=int, default=0, metavar="N")
    agent.set_defaults(func=_agent)

    call = cmds.add_parser("call", help="place one call and print its timeline")
    call.add_argument("uri", help="SIP URI to call, e.g. sip:100@127.0.0.1:5060")
    call.add_argument("--from", dest="from_user", default="caller", help="From user part")
    call.add_argument("--dtmf", default="", help="RFC 4733 digits to send once answered")
    call.add_argument("--dtmf-delay", type=float, default=1.0, metavar="S",
                      help="seconds after the answer before the first digit")
    call.add_argument("--dtmf-interval", type=float, default=0.25, metavar="S")
    call.add_argument("--play", metavar="WAV", help="mono 16-bit WAV to play once answered")
    call.add_argument("--record", metavar="WAV", help="record what the caller hears")
    call.add_argument("--duration", type=float, default=5.0, metavar="S",
                      help="seconds to stay in the call after the answer (0: until remote ends)")
    call.add_argument("--answer-timeout", type=float, default=30.0, metavar="S")
    call.add_argument("--pjsip-log-level", type=int, default=0, metavar="N")
    call.set_defaults(func=_call)


def _line(t0: float, event: Any) -> str:
    return f"{event.at - t0:+9.3f}s  {event.user:<12} {event.describe()}"


def _agent(args: argparse.Namespace) -> int:
    from softphone import AgentPhone, SoftphoneError, SoftphoneHost

    t0 = time.monotonic()
    if args.tls and not args.ca:
        print("error: --tls needs --ca PEM (the CA that signed the server's certificate)",
              file=sys.stderr)
        return 2
    try:
        with SoftphoneHost(bind=args.bind, log_level=args.pjsip_log_level) as host:
            agent = AgentPhone(
                host, args.user, server=args.server, password=args.password,
                auth_user=args.auth_user, port=args.port, answer_delay=args.answer_delay,
                no_answer=args.no_answer, play=args.play, record=args.record,
                play_loop=args.play_loop, tls_ca_file=args.ca if args.tls else None,
            )
            print(f"{agent.user} listening at {agent.uri}", flush=True)
            seen = 0
            if args.server:
                try:
                    agent.wait_registered(args.register_timeout)
                except SoftphoneError as exc:
                    for event in agent.events.snapshot():
                        print(_line(t0, event))
                    print(f"error: {exc}", file=sys.stderr)
                    return 1
            try:
                while True:
                    new = agent.events.wait_new(seen, 0.5)
                    for event in new:
                        print(_line(t0, event), flush=True)
                    seen += len(new)
            except KeyboardInterrupt:
                print("stopping: hanging up, unregistering", flush=True)
                agent.close()
                for event in agent.events.wait_new(seen, 0.1):
                    print(_line(t0, event), flush=True)
            return 0
    except SoftphoneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _call(args: argparse.Namespace) -> int:
    from softphone import CallError, SoftphoneError, SoftphoneHost, SoftphoneTimeout, TestCaller

    t0 = time.monotonic()
    answered = False
    try:
        with SoftphoneHost(log_level=args.pjsip_log_level) as host:
            caller = TestCaller(host, args.from_user)
            leg = caller.call(args.uri, play=args.play, record=args.record)
            seen = 0

            def flush() -> None:
                nonlocal seen
                new = caller.events.snapshot()[seen:]
                for event in new:
                    print(_line(t0, event), flush=True)
                seen += len(new)

            try:
                leg.wait_confirmed(args.answer_timeout)
                answered = True
                flush()
                if args.dtmf:
                    leg.wait_audio(5)
                    if args.dtmf_delay > 0:
                        time.sleep(args.dtmf_delay)
                    leg.send_dtmf(args.dtmf, interval=args.dtmf_interval)
                    print(f"{time.monotonic() - t0:+9.3f}s  {caller.user:<12} "
                          f"sent DTMF {args.dtmf!r}", flush=True)
                deadline = time.monotonic() + args.duration
                while not leg.ended and (args.duration <= 0 or time.monotonic() < deadline):
                    time.sleep(0.05)
                    flush()
                leg.hangup()
                end = leg.wait_disconnected(10)
            except (CallError, SoftphoneTimeout) as exc:
                flush()
                print(f"not answered: {exc}", file=sys.stderr)
                return 1
            except KeyboardInterrupt:
                leg.hangup()
                end = leg.wait_disconnected(10)
            flush()
            if args.record:
                leg.stop_recording()
                print(f"recorded {args.record}")
            print(f"ended: {end.status} {end.reason}; answered: {'yes' if answered else 'no'}")
            return 0 if answered else 1
    except SoftphoneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
