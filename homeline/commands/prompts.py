"""`homeline prompts build|check|install`: the localized prompt set Asterisk plays."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "prompts",
        help="build, check and install the localized prompts (espeak-ng + numpy)",
        description=__doc__,
    )
    cmds = parser.add_subparsers(dest="prompts_command", metavar="ACTION")
    cmds.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--catalog",
            type=Path,
            default=None,
            help="prompt catalog (default: prompts/catalog.yaml)",
        )
        p.add_argument(
            "--build-dir",
            type=Path,
            default=None,
            help="where built WAVs live (default: <cache>/prompts/8k or 16k)",
        )
        p.add_argument("--wideband", action="store_true", help="16 kHz instead of 8 kHz")

    build = cmds.add_parser("build", help="generate missing or changed prompts")
    common(build)
    build.add_argument(
        "--target-dbfs",
        type=float,
        default=-20.0,
        help="active speech level to normalize to (default -20 dBFS)",
    )
    build.add_argument("--quiet", action="store_true", help="no per-prompt progress")
    build.set_defaults(func=_build)

    check = cmds.add_parser("check", help="validate every built prompt file")
    common(check)
    check.add_argument("--target-dbfs", type=float, default=-20.0)
    check.set_defaults(func=_check)

    inst = cmds.add_parser("install", help="copy prompts to <sounds>/<lang>/homeline/")
    common(inst)
    inst.add_argument(
        "--sounds-dir",
        type=Path,
        default=None,
        help="Asterisk sounds directory (default: the sandbox's)",
    )
    inst.set_defaults(func=_install)


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from prompts.catalog import load_catalog

    return load_catalog(args.catalog)


def _build_dir(args: argparse.Namespace) -> Path:
    from homeline.paths import prompt_build_dir

    return Path(args.build_dir) if args.build_dir is not None else prompt_build_dir(args.wideband)


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from prompts.build import BuildSettings

    return BuildSettings(rate=16000 if args.wideband else 8000, target_dbfs=args.target_dbfs)


def _build(args: argparse.Namespace) -> int:
    from prompts.build import build_all
    from prompts.catalog import PromptsError

    try:
        catalog = _load(args)
        report = build_all(
            catalog,
            out_dir=_build_dir(args),
            progress=(lambda _m: None) if args.quiet else (lambda m: print(m, flush=True)),
            wideband=args.wideband,
            settings=_settings(args),
        )
    except PromptsError as exc:
        print(exc, file=sys.stderr)
        return 1
    for problem in report.problems:
        print(problem, file=sys.stderr)
    if args.quiet:
        print(report)
    return 0 if report.ok else 1


def _check(args: argparse.Namespace) -> int:
    from prompts.catalog import PromptsError
    from prompts.check import check_prompts

    try:
        catalog = _load(args)
        problems = check_prompts(catalog, _build_dir(args), args.wideband,
                                 settings=_settings(args))
    except PromptsError as exc:
        print(exc, file=sys.stderr)
        return 1
    for problem in problems:
        print(problem)
    total = len(catalog.ids) * len(catalog.languages)
    print(
        f"{len(catalog.ids)} prompts x {len(catalog.languages)} languages ({total} files): "
        f"{len(problems)} problem(s)"
    )
    return 1 if problems else 0


def _install(args: argparse.Namespace) -> int:
    from prompts.catalog import PromptsError
    from prompts.install import install

    sounds = args.sounds_dir
    if sounds is None:
        from homeline.pbx.sandbox import sounds_dir

        sounds = sounds_dir()
        if not sounds.is_dir():
            print(
                f"{sounds}: the Asterisk sandbox is not provisioned yet "
                "(run `homeline setup`, or pass --sounds-dir DIR)",
                file=sys.stderr,
            )
            return 1
    try:
        report = install(sounds, _build_dir(args), wideband=args.wideband)
    except PromptsError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(report)
    return 0
