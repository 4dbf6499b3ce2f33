"""Install (once) the web app's browser-side libraries from the npm registry.

``package.json`` and ``package-lock.json`` at the top of the repository name
them (htmx and its SSE extension, JsSIP, uPlot, and esbuild to bundle JsSIP).
``npm ci`` installs exactly what the lock file says (https://docs.npmjs.com/cli/commands/npm-ci)
into ``cache_dir()/npm/<sha256[:16]>/``, keyed on both files, with
``--ignore-scripts``: no package's install script runs here. JsSIP 3.13 ships
CommonJS only, so esbuild bundles it into one browser script (an IIFE setting
``window.JsSIP``). A ``.complete`` stamp marks a finished directory: a second run
is a stat or two. The web app serves the files `web.vendor.VENDOR_FILES` names
from that directory.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from homeline.paths import REPO_ROOT, cache_dir
from web.vendor import VENDOR_FILES, missing_vendor_files

__all__ = ["BrowserLibsError", "ensure_browser_libs", "browser_libs_dir", "lock_key"]

Progress = Callable[[str], None]

PACKAGE_FILES = ("package.json", "package-lock.json")
STAMP = ".complete"
# esbuild resolves `require("events")` to the npm package of that name (a JsSIP
# dependency) and picks the "browser" fields of debug: https://esbuild.github.io/api/#platform
BUNDLE_ARGS = ("node_modules/jssip/lib/JsSIP.js", "--bundle", "--format=iife",
               "--global-name=JsSIP", "--platform=browser", "--minify",
               "--target=es2020", "--log-level=warning", "--outfile=bundle/jssip.min.js")


class BrowserLibsError(RuntimeError):
    """npm (or esbuild) could not install the browser libraries; names the log file."""


def lock_key(source: Path = REPO_ROOT) -> str:
    """sha256 over package.json and package-lock.json, first 16 hex digits."""
    h = hashlib.sha256()
    for name in PACKAGE_FILES:
        path = source / name
        try:
            h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        except OSError as exc:
            raise BrowserLibsError(f"{path}: cannot read: {exc.strerror}") from exc
    h.update("\0".join(BUNDLE_ARGS).encode())
    return h.hexdigest()[:16]


def browser_libs_dir(source: Path = REPO_ROOT) -> Path:
    """Where the libraries of the current lock file are (or will be) installed."""
    return cache_dir() / "npm" / lock_key(source)


def _run(argv: list[str], cwd: Path, log_file: Path, what: str) -> None:
    with log_file.open("a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(argv)}\n")
        log.flush()
        try:
            done = subprocess.run(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=600, check=False)
        except FileNotFoundError as exc:
            hint = ("install Debian's nodejs and npm (scripts/bootstrap.sh does)"
                    if argv[0] == "npm" else "is it in package-lock.json?")
            raise BrowserLibsError(f"{what}: {argv[0]} not found; {hint}") from exc
        except subprocess.TimeoutExpired as exc:
            raise BrowserLibsError(f"{what} took over 600 s; see {log_file}") from exc
    if done.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise BrowserLibsError(f"{what} failed (exit {done.returncode}); see {log_file}:\n"
                               + "\n".join(tail))


def ensure_browser_libs(progress: Progress | None = None, source: Path = REPO_ROOT) -> Path:
    """The directory holding `VENDOR_FILES` for the current lock file, installed if needed."""
    say = progress or (lambda _m: None)
    target = browser_libs_dir(source)
    if (target / STAMP).is_file() and not missing_vendor_files(target):
        return target
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second setup waits for the first
        if (target / STAMP).is_file() and not missing_vendor_files(target):
            return target
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=root))
        try:
            for name in PACKAGE_FILES:
                shutil.copy2(source / name, work / name)
            log_file = root / f"{target.name}.install.log"  # kept when a step fails
            log_file.write_text("", encoding="utf-8")
            say(f"browser libraries: npm ci into {target} (log: {log_file})")
            _run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund",
                  "--loglevel=warn"], work, log_file, "npm ci")
            (work / "bundle").mkdir()
            _run([str(work / "node_modules" / ".bin" / "esbuild"), *BUNDLE_ARGS], work,
                 log_file, "esbuild (bundling JsSIP)")
            missing = missing_vendor_files(work)
            if missing:
                raise BrowserLibsError(f"after npm ci, {', '.join(missing)} are missing "
                                       f"(expected {', '.join(VENDOR_FILES[m] for m in missing)})")
            (work / STAMP).write_text(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n",
                                      encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)  # an unfinished earlier attempt
            os.replace(work, target)
            os.replace(log_file, target / "install.log")
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        say(f"browser libraries ready in {time.monotonic() - started:.1f} s")
    return target
