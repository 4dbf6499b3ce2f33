"""`homeline dtmf detect|generate|redact`: in-band DTMF in WAV files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "dtmf", help="detect, generate or redact in-band DTMF in WAV files", description=__doc__
    )
    cmds = parser.add_subparsers(dest="dtmf_command", metavar="ACTION")
    cmds.required = True

    det = cmds.add_parser("detect", help="print the digits in a WAV (any rate, mono/stereo)")
    det.add_argument("file", type=Path)
    det.add_argument(
        "--json",
        action="store_true",
        help='{"digits": "...", "events": [{"digit", "start_s", "end_s"}]}',
    )
    det.set_defaults(func=_detect)

    gen = cmds.add_parser("generate", help="write test audio for a digit string")
    gen.add_argument("digits", help="0-9 * # A-D; ',' or ' ' inserts a pause")
    gen.add_argument("-o", "--output", type=Path, required=True)
    gen.add_argument("--rate", type=int, default=8000)
    gen.add_argument("--tone-ms", type=float, default=80.0)
    gen.add_argument("--gap-ms", type=float, default=80.0)
    gen.add_argument("--level-dbm0", type=float, default=-7.0, help="low tone level")
    gen.add_argument("--twist-db", type=float, default=2.0, help="high tone above low tone")
    gen.set_defaults(func=_generate)

    red = cmds.add_parser("redact", help="silence DTMF tones in a recording")
    red.add_argument("input", type=Path)
    red.add_argument("-o", "--output", type=Path, required=True)
    red.add_argument(
        "--pad-ms",
        type=float,
        default=20.0,
        help="also silence this much before and after each tone",
    )
    red.set_defaults(func=_redact)


def _read_error(path: Path, exc: Exception) -> int:
    print(f"{path}: cannot read audio: {exc}", file=sys.stderr)
    return 2


def _detect(args: argparse.Namespace) -> int:
    from prompts.dtmf import detect_file

    try:
        found = detect_file(args.file)
    except (RuntimeError, OSError) as exc:
        return _read_error(args.file, exc)
    if args.json:
        print(json.dumps(found.to_json()))
        return 0
    for ev in found.events:
        print(f"{ev.digit}  {ev.start_s:8.3f} s - {ev.end_s:8.3f} s")
    print(f"digits: {found.digits}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    import soundfile as sf

    from prompts.dtmf import DtmfError, generate, to_int16

    try:
        audio = generate(
            args.digits,
            args.rate,
            tone_ms=args.tone_ms,
            gap_ms=args.gap_ms,
            level_dbm0=args.level_dbm0,
            twist_db=args.twist_db,
        )
    except DtmfError as exc:
        print(exc, file=sys.stderr)
        return 2
    sf.write(str(args.output), to_int16(audio), args.rate, subtype="PCM_16")
    print(f"{args.output}: {args.digits!r}, {audio.size / args.rate:.2f} s at {args.rate} Hz")
    return 0


def _redact(args: argparse.Namespace) -> int:
    import numpy as np
    import soundfile as sf

    from prompts.dtmf import redact

    try:
        data, rate = sf.read(str(args.input), dtype="float32", always_2d=True)
        info = sf.info(str(args.input))
    except (RuntimeError, OSError) as exc:
        return _read_error(args.input, exc)
    out = np.empty_like(data)
    digits = 0
    for ch in range(data.shape[1]):
        out[:, ch], found = redact(data[:, ch], int(rate), pad_ms=args.pad_ms)
        digits += len(found.events)
    subtype = info.subtype if info.subtype in ("PCM_16", "PCM_24", "PCM_32", "FLOAT") else "PCM_16"
    sf.write(str(args.output), out, int(rate), subtype=subtype)
    print(f"{args.output}: {digits} DTMF tone(s) silenced")
    return 0
