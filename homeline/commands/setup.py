"""`homeline setup`: provision every heavy, cached part a fresh machine lacks.

Idempotent and quick when everything is there: the Asterisk root (Debian sid
in a chroot), the pjsua2 wheel built from Debian's pjproject tarball, the
prompts built and installed where Asterisk looks up sounds, and the web app's
browser libraries (``npm ci`` of package-lock.json into the cache).
"""
from __future__ import annotations

import argparse
import sys
import time


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "setup",
        help="provision Asterisk, pjsua2, the prompts and the browser libraries "
        "(cached; quick when done)",
        description=__doc__,
    )
    parser.add_argument("--skip-prompts", action="store_true", help="do not build/install prompts")
    parser.add_argument("--only-browser-libs", action="store_true",
                        help="only install the web app's browser libraries (npm ci)")
    parser.set_defaults(func=run)


def _progress(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def _browser_libs() -> int:
    from homeline.provision.browser_libs import BrowserLibsError, ensure_browser_libs

    try:
        where = ensure_browser_libs(progress=_progress)
    except BrowserLibsError as exc:
        print(f"[setup] browser libraries: {exc}", file=sys.stderr, flush=True)
        return 1
    _progress(f"browser libraries: {where}")
    return 0


def run(args: argparse.Namespace) -> int:
    from homeline.pbx.sandbox import ensure_root
    from homeline.provision.pjsua2_wheel import ensure_installed

    started = time.monotonic()
    if args.only_browser_libs:
        return _browser_libs()
    root = ensure_root(progress=_progress)
    _progress(f"asterisk root: {root.path} ({root.version})")
    wheel = ensure_installed(progress=_progress)
    _progress(f"pjsua2: {wheel}")
    if not args.skip_prompts:
        from homeline.paths import prompt_build_dir
        from prompts.build import build_all
        from prompts.catalog import load_catalog
        from prompts.install import install

        build_dir = prompt_build_dir()
        report = build_all(load_catalog(), build_dir, progress=_progress)
        _progress(f"prompts: {report}")
        installed = install(root.sounds_dir, build_dir)
        _progress(f"prompts installed under {root.sounds_dir}: {installed}")
    if _browser_libs() != 0:
        return 1
    _progress(f"ready in {time.monotonic() - started:.1f} s")
    return 0
