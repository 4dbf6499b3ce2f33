"""Build (once) and install the pjsua2 Python module from Debian's pjproject source.

Why this route: PyPI's ``pjsua2`` is an sdist that needs a pjproject tree, and the
prebuilt ``pjsua2-python`` wheel bundles an end-of-life OpenSSL. Debian sid's
``asterisk`` source package carries pjproject as its ``orig-Xpjproject`` component
(see Debian's ``asterisk/debian/README.source``), so the sources come from the
Debian archive through ``apt-get source`` with a private apt state: the host's
own apt configuration and lists are never touched.

The finished wheel is cached under ``cache_dir()/pjsua2/<sha256[:16]>-<pytag>/``,
keyed on the tarball's sha256 and the interpreter's tag; the downloaded tarball is
kept under ``cache_dir()/pjsua2/src/`` so a later run needs no network at all.

Steps (each reported with elapsed seconds, each logged to a file in the key dir):
fetch -> extract -> configure -> make dep -> make -> swig python -> wheel -> install.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from homeline.paths import cache_dir

__all__ = ["Pjsua2BuildError", "ensure_installed", "python_tag", "is_importable"]

Progress = Callable[[str], None]

SOURCE_PACKAGE = "asterisk"
TARBALL_GLOB = "*.orig-Xpjproject.tar.xz"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
ARCHIVE_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

# pjproject's ./configure flags: external codecs/SRTP from Debian's -dev packages,
# no video/sound device (Homeline uses the null audio device), epoll ioqueue.
CONFIGURE_FLAGS = (
    "CFLAGS=-fPIC -O2",
    "CXXFLAGS=-fPIC -O2",
    "--with-external-srtp",
    "--with-external-gsm",
    "--with-external-speex",
    "--enable-speex-resample",
    "--disable-ilbc-codec",
    "--disable-g7221-codec",
    "--disable-libyuv",
    "--disable-libwebrtc",
    "--disable-video",
    "--disable-sound",
    "--disable-upnp",
    "--disable-bcg729",
    "--disable-openh264",
    "--disable-silk",
    "--enable-epoll",
)
JOBS = "-j2"

# pjlib/include/pj/config_site.h. pjsua's compiled-in limits are sized for one
# handset (pjsua.h: PJSUA_MAX_CALLS 4, PJSUA_MAX_ACC 8; pj/config.h:
# PJ_IOQUEUE_MAX_HANDLES 64); one Homeline process runs many agents and callers.
CONFIG_SITE = """\
#define PJMEDIA_HAS_VIDEO 0
#define PJSUA_MAX_CALLS 64
#define PJSUA_MAX_ACC 32
#define PJ_IOQUEUE_MAX_HANDLES 1024
"""
# A wheel built with another recipe is stale even if the tarball is the same.
RECIPE = hashlib.sha256(("\n".join(CONFIGURE_FLAGS) + CONFIG_SITE).encode()).hexdigest()[:16]


class Pjsua2BuildError(RuntimeError):
    """A provisioning step failed; the message names the step and its log file."""

    def __init__(self, step: str, detail: str, log: Path | None = None) -> None:
        where = f" (log: {log})" if log is not None else ""
        super().__init__(f"pjsua2 {step} failed: {detail}{where}")
        self.step = step
        self.log = log


def python_tag(python: str | None = None) -> str:
    """``cp311-x86_64`` style tag of the interpreter the wheel is built for."""
    exe = python or sys.executable
    out = subprocess.run(
        [exe, "-c", "import sys,platform;"
         "print(f'cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}')"],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


MIN_MAX_CALLS = 64


def is_importable(python: str | None = None) -> bool:
    """True if ``python``'s environment imports a pjsua2 built with Homeline's limits.

    Checked out of process. ``UaConfig().maxCalls`` defaults to the compiled-in
    PJSUA_MAX_CALLS, which tells a wheel of this recipe from a stock build (4 calls).
    """
    exe = python or sys.executable
    code = ("import sys, pjsua2; "
            f"sys.exit(0 if pjsua2.UaConfig().maxCalls >= {MIN_MAX_CALLS} else 3)")
    proc = subprocess.run([exe, "-c", code], capture_output=True, timeout=60)
    return proc.returncode == 0


def ensure_installed(progress: Progress = print, *, refresh: bool = False) -> Path:
    """Make ``import pjsua2`` work for ``sys.executable``; return the wheel's path.

    Quick when pjsua2 already imports (returns the newest cached wheel for this
    interpreter, or the installed module's file if it came from elsewhere).
    ``refresh=True`` fetches the tarball again even if one is cached (sid moves).
    Raises :class:`Pjsua2BuildError`.
    """
    t0 = time.monotonic()

    def say(msg: str) -> None:
        progress(f"[pjsua2 {time.monotonic() - t0:6.1f}s] {msg}")

    root = cache_dir() / "pjsua2"
    root.mkdir(parents=True, exist_ok=True)
    tag = python_tag()
    if not refresh and is_importable():
        wheel = _newest_wheel(root, tag)
        say(f"already importable ({wheel or 'installed outside the cache'})")
        return wheel or _module_file()
    with _locked(root / ".lock"):
        tarball = _cached_tarball(root)
        if tarball is None or refresh:
            tarball = _fetch_tarball(root, say)
        digest = _sha256(tarball)
        key_dir = root / f"{digest[:16]}-{tag}"
        key_dir.mkdir(parents=True, exist_ok=True)
        wheels = sorted(key_dir.glob("pjsua2-*.whl"))
        recipe_file = key_dir / "recipe.txt"
        if wheels and (not recipe_file.exists() or recipe_file.read_text().strip() != RECIPE):
            say("cached wheel was built with another recipe: rebuilding")
            for stale in wheels:
                stale.unlink()
            wheels = []
        if wheels:
            say(f"cached wheel {wheels[-1].name} (tarball sha256 {digest[:16]})")
            wheel = wheels[-1]
        else:
            say(f"building from {tarball.name} (sha256 {digest[:16]}) for {tag}")
            wheel = _build(tarball, key_dir, say)
        _run("install", [sys.executable, "-m", "pip", "install", "--no-deps",
                         "--force-reinstall", "--no-index", "--disable-pip-version-check",
                         "-q", str(wheel)],
             key_dir / "install.log", say)
        if not is_importable():
            raise Pjsua2BuildError("install", "wheel installed but `import pjsua2` fails "
                                   f"or lacks PJSUA_MAX_CALLS >= {MIN_MAX_CALLS}",
                                   key_dir / "install.log")
        say(f"installed {wheel.name}")
        return wheel


# -- fetch ---------------------------------------------------------------------------


def _host_mirror() -> str:
    """The host's own Debian mirror (first ``URIs:`` of debian.sources), else deb.debian.org."""
    try:
        for line in DEBIAN_SOURCES.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    except OSError:
        pass
    return DEFAULT_MIRROR


def _apt_options(apt_dir: Path) -> list[str]:
    opts = {
        "Dir::Etc::sourcelist": str(apt_dir / "sources.list"),
        "Dir::Etc::sourceparts": "-",
        "Dir::State::Lists": str(apt_dir / "lists"),
        "Dir::Cache": str(apt_dir / "cache"),
        "APT::Get::List-Cleanup": "0",
        "Acquire::Languages": "none",
        # sid's Release files are short-lived; a mirror lagging a day must not fail us.
        "Acquire::Check-Valid-Until": "false",
    }
    if os.geteuid() == 0:
        # The cache usually lives under /root (0700), which the _apt sandbox user
        # cannot write; download as root instead of falling back with warnings.
        opts["APT::Sandbox::User"] = "root"
    return [arg for k, v in opts.items() for arg in ("-o", f"{k}={v}")]


def _fetch_tarball(root: Path, say: Callable[[str], None]) -> Path:
    apt_dir = root / "apt"
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt_dir / sub).mkdir(parents=True, exist_ok=True)
    mirror = _host_mirror()
    signed = f"[signed-by={ARCHIVE_KEYRING}] " if ARCHIVE_KEYRING.exists() else ""
    # Only sid carries asterisk (bookworm and trixie have none).
    (apt_dir / "sources.list").write_text(f"deb-src {signed}{mirror} sid main\n")
    opts = _apt_options(apt_dir)
    _run("fetch (apt-get update)", ["apt-get", *opts, "update"], root / "fetch.log", say)
    download = Path(tempfile.mkdtemp(prefix="download-", dir=root))
    try:
        _run("fetch (apt-get source)",
             ["apt-get", *opts, "source", "--download-only", SOURCE_PACKAGE],
             root / "fetch.log", say, cwd=download, append=True)
        found = sorted(download.glob(TARBALL_GLOB))
        if not found:
            raise Pjsua2BuildError("fetch", f"no {TARBALL_GLOB} in the {SOURCE_PACKAGE} "
                                   "source package", root / "fetch.log")
        src = root / "src"
        src.mkdir(exist_ok=True)
        for old in src.glob(TARBALL_GLOB):
            old.unlink()
        target = src / found[-1].name
        shutil.move(str(found[-1]), target)
        say(f"fetched {target.name} ({target.stat().st_size / 1e6:.1f} MB)")
        return target
    finally:
        shutil.rmtree(download, ignore_errors=True)


def _cached_tarball(root: Path) -> Path | None:
    found = sorted((root / "src").glob(TARBALL_GLOB))
    return found[-1] if found else None


# -- build ---------------------------------------------------------------------------


def _build(tarball: Path, key_dir: Path, say: Callable[[str], None]) -> Path:
    if shutil.which("swig") is None:
        raise Pjsua2BuildError("prerequisites", "swig not found: install the host packages "
                               "in scripts/apt-packages.txt (scripts/bootstrap.sh)")
    _ensure_build_python(key_dir, say)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=key_dir.parent))
    try:
        say("extract")
        with tarfile.open(tarball) as tar:
            tar.extractall(work, filter="tar")
        tops = [p for p in work.iterdir() if p.is_dir()]
        if len(tops) != 1:
            raise Pjsua2BuildError("extract", f"expected one top directory, got {tops}")
        tree = tops[0]
        # Debian's DFSG repack deletes this non-free file but pjmedia/build/Makefile
        # still lists it; its body is under #if PJMEDIA_AUDIO_DEV_HAS_BDIMAD anyway.
        bdimad = tree / "pjmedia/src/pjmedia-audiodev/bdimad_dev.c"
        if not bdimad.exists():
            bdimad.write_text("/* stub: file removed by Debian's DFSG repack */\n")
        (tree / "pjlib/include/pj/config_site.h").write_text(CONFIG_SITE)
        env = dict(os.environ)
        # swig/python/Makefile runs `python3`: make it the interpreter we build for.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHON_EXE"] = sys.executable
        logs = key_dir
        _run("configure", ["./configure", *CONFIGURE_FLAGS], logs / "configure.log", say,
             cwd=tree, env=env)
        _run("make dep", ["make", "dep", JOBS], logs / "make-dep.log", say, cwd=tree, env=env)
        _run("make", ["make", JOBS], logs / "make.log", say, cwd=tree, env=env)
        swig_dir = tree / "pjsip-apps/src/swig/python"
        _run("swig python", ["make"], logs / "swig-python.log", say, cwd=swig_dir, env=env)
        _run("wheel", ["make", "wheel"], logs / "wheel.log", say, cwd=swig_dir, env=env)
        built = sorted((swig_dir / "dist").glob("pjsua2-*.whl"))
        if not built:
            raise Pjsua2BuildError("wheel", "no pjsua2-*.whl in dist/", logs / "wheel.log")
        partial = key_dir / (built[-1].name + ".partial")
        shutil.copy2(built[-1], partial)
        wheel = key_dir / built[-1].name
        (key_dir / "recipe.txt").write_text(RECIPE + "\n")
        partial.replace(wheel)  # atomic: a present wheel is always complete
        say(f"built {wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB)")
        return wheel
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ensure_build_python(key_dir: Path, say: Callable[[str], None]) -> None:
    check = subprocess.run([sys.executable, "-c", "import setuptools, wheel"],
                           capture_output=True)
    if check.returncode != 0:
        _run("build python (setuptools, wheel)",
             [sys.executable, "-m", "pip", "install", "-q", "setuptools", "wheel"],
             key_dir / "build-python.log", say)


# -- helpers -------------------------------------------------------------------------


def _run(step: str, cmd: Sequence[str], log: Path, say: Callable[[str], None], *,
         cwd: Path | None = None, env: dict[str, str] | None = None,
         append: bool = False) -> None:
    say(f"{step} ... (log: {log})")
    with open(log, "a" if append else "w") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise Pjsua2BuildError(step, f"cannot run {cmd[0]}: {exc}", log) from exc
    if proc.returncode != 0:
        raise Pjsua2BuildError(step, f"{cmd[0]} exited with status {proc.returncode}", log)
    say(f"{step} done")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _newest_wheel(root: Path, tag: str) -> Path | None:
    wheels = sorted(root.glob(f"*-{tag}/pjsua2-*.whl"), key=lambda p: p.stat().st_mtime)
    return wheels[-1] if wheels else None


def _module_file() -> Path:
    out = subprocess.run([sys.executable, "-c", "import pjsua2; print(pjsua2.__file__)"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build at a time per cache (several test runs may provision at once)."""
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


if __name__ == "__main__":  # manual use: python -m homeline.provision.pjsua2_wheel
    print(ensure_installed())
