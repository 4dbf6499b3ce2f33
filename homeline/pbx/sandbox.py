"""Provision a real Asterisk in a Debian sid root, using only the Debian archive.

Debian 12 (bookworm) and 13 (trixie) ship no ``asterisk`` package; sid does, but
it needs a newer libc than bookworm's, so it lives in a ``debootstrap
--variant=minbase sid`` root under ``cache_dir()/asterisk/root`` and runs chrooted
(see :mod:`homeline.pbx.chroot`: private mount namespace, no host mounts).

:func:`ensure_root` is idempotent and picks the cheapest way that works:

1. a usable root is already there: return it (a few milliseconds);
2. a tarball of a previous cold build for the same package list exists:
   unpack it (a few seconds);
3. otherwise build it from the mirror the host already uses, then write the
   tarball for next time (one to three minutes).

sid moves, so the version is never pinned: the cache is keyed on the requested
package list, and the tarball name carries the Asterisk version it holds.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO

from homeline.paths import cache_dir
from homeline.pbx.chroot import CHROOT_ENV, chroot_command, host_mounts_under
from homeline.pbx.errors import SandboxError

__all__ = [
    "SUITE",
    "PACKAGES",
    "AsteriskRoot",
    "SandboxError",
    "asterisk_cache_dir",
    "default_root_path",
    "ensure_root",
    "host_mirror",
    "package_key",
    "sounds_dir",
]

SUITE = "sid"
PACKAGES: tuple[str, ...] = (
    "asterisk",
    "asterisk-core-sounds-en-wav",
    "asterisk-core-sounds-es-wav",
    "asterisk-core-sounds-fr-wav",
    "asterisk-moh-opsound-wav",
)
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Bump when the layout of the root changes in a way old tarballs do not have.
_FORMAT = 2
_MARKER = "etc/homeline-sandbox.json"
_ASTERISK = "/usr/sbin/asterisk"

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class AsteriskRoot:
    """A provisioned Debian sid root holding an installed Asterisk."""

    path: Path
    version: str
    packages: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def sounds_dir(self) -> Path:
        return self.path / "usr/share/asterisk/sounds"

    @property
    def asterisk_uid(self) -> int:
        return self._passwd_entry()[0]

    @property
    def asterisk_gid(self) -> int:
        return self._passwd_entry()[1]

    def _passwd_entry(self) -> tuple[int, int]:
        # The Debian package creates the user in the root, not on the host; the
        # host may have no such user or a different uid for it.
        passwd = self.path / "etc/passwd"
        for line in passwd.read_text(encoding="utf-8").splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == "asterisk":
                return int(fields[2]), int(fields[3])
        raise SandboxError(f"{passwd}: no 'asterisk' user (is the asterisk package installed?)")

    def language_dir(self, language: str) -> Path:
        """Host path of the prompts of ``language`` (e.g. "en", "es", "fr").

        ``sounds/en`` is an update-alternatives link with an absolute target that
        only makes sense inside the root, so links are followed root-relative.
        """
        path = self.sounds_dir / language
        for _ in range(16):
            if not path.is_symlink():
                return path
            target = PurePosixPath(os.readlink(path))
            path = self.to_host(target) if target.is_absolute() else path.parent / target
        raise SandboxError(f"{self.sounds_dir / language}: too many levels of symbolic links")

    def to_chroot(self, host_path: Path | str) -> PurePosixPath:
        """The path a process inside the root sees for ``host_path``."""
        resolved = Path(host_path).resolve()
        try:
            rel = resolved.relative_to(self.path.resolve())
        except ValueError:
            raise ValueError(f"{host_path} is not inside the Asterisk root {self.path}") from None
        return PurePosixPath("/") / rel.as_posix()

    def to_host(self, chroot_path: PurePosixPath | str) -> Path:
        """The host path of ``chroot_path`` (an absolute path inside the root)."""
        inner = PurePosixPath(chroot_path)
        if not inner.is_absolute() or ".." in inner.parts:
            raise ValueError(f"{chroot_path!r}: expected an absolute path without '..'")
        return self.path / inner.relative_to("/")

    def command(self, argv: Sequence[str]) -> list[str]:
        """The host argv that runs ``argv`` inside this root (see :mod:`.chroot`)."""
        return chroot_command(self.path, argv)


def asterisk_cache_dir() -> Path:
    return cache_dir() / "asterisk"


def default_root_path() -> Path:
    return asterisk_cache_dir() / "root"


def sounds_dir() -> Path:
    """Sounds directory of the default root (exists once :func:`ensure_root` ran)."""
    return default_root_path() / "usr/share/asterisk/sounds"


def package_key(packages: Sequence[str] = PACKAGES, suite: str = SUITE) -> str:
    """Cache key of a root: what was asked for, not what the archive had that day."""
    text = json.dumps({"format": _FORMAT, "suite": suite, "packages": sorted(packages)})
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def host_mirror(etc_apt: Path = Path("/etc/apt")) -> str:
    """The Debian mirror the host's apt uses (deb822 first, then one-line style)."""
    deb822 = etc_apt / "sources.list.d" / "debian.sources"
    if deb822.is_file():
        for stanza in re.split(r"\n\s*\n", deb822.read_text(encoding="utf-8")):
            fields = _deb822_fields(stanza)
            if "deb" not in fields.get("types", "").split():
                continue
            for uri in fields.get("uris", "").split():
                if "security" not in uri:
                    return uri.rstrip("/")
    one_line = etc_apt / "sources.list"
    if one_line.is_file():
        for line in one_line.read_text(encoding="utf-8").splitlines():
            tokens = [t for t in re.sub(r"\[[^]]*\]", " ", line).split() if t]
            if len(tokens) >= 2 and tokens[0] == "deb" and "security" not in tokens[1]:
                return tokens[1].rstrip("/")
    return DEFAULT_MIRROR


def _deb822_fields(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in stanza.splitlines():
        if line.startswith("#") or ":" not in line or line[:1].isspace():
            continue
        key, value = line.split(":", 1)
        fields[key.strip().lower()] = value.strip()
    return fields


# ---------------------------------------------------------------- the entry point


def ensure_root(progress: Progress = print, *, mirror: str | None = None) -> AsteriskRoot:
    """Return a usable Asterisk root, restoring or building it if needed.

    ``mirror`` (a Debian archive URL) is only used by a cold build; by default
    the host's own (:func:`host_mirror`). Safe to call from several processes
    at once (a file lock serialises the slow paths). Raises
    :class:`SandboxError` naming the failed step and its log.
    """
    root_path = default_root_path()
    key = package_key()
    if _unusable_reason(root_path, key) is None:
        return _load_root(root_path)
    base = asterisk_cache_dir()
    with _locked(base / "lock"):
        reason = _unusable_reason(root_path, key)
        if reason is None:
            return _load_root(root_path)
        steps = _Steps(progress, base / "logs")
        if root_path.exists():
            progress(f"asterisk root at {root_path} is not usable ({reason}); replacing it")
            _remove_tree(root_path)
        tarball = _newest_tarball(base, key)
        if tarball is not None:
            _restore(steps, tarball, root_path, key)
        else:
            _cold_build(steps, root_path, key, mirror or host_mirror())
            root = _load_root(root_path)
            _write_tarball(steps, root, key)
        root = _load_root(root_path)
        progress(f"asterisk root ready: Asterisk {root.version} in {steps.total():.1f} s")
        return root


def _load_root(path: Path) -> AsteriskRoot:
    marker = json.loads((path / _MARKER).read_text(encoding="utf-8"))
    _relative_language_links(path)
    return AsteriskRoot(
        path=path,
        version=_asterisk_version(path),
        packages=tuple(marker["installed"]),
        missing=tuple(marker["missing"]),
    )


def _asterisk_version(path: Path) -> str:
    done = subprocess.run(
        chroot_command(path, [_ASTERISK, "-V"]),
        capture_output=True, text=True, env=CHROOT_ENV, timeout=30, check=False,
    )
    text = done.stdout.strip()
    if done.returncode != 0 or not text.startswith("Asterisk "):
        raise SandboxError(f"{path}: 'asterisk -V' failed: {(text + done.stderr).strip()!r}")
    return text.removeprefix("Asterisk ").strip()


def _unusable_reason(path: Path, key: str) -> str | None:
    """Why the root at ``path`` cannot be used as is, or None if it can."""
    binary = path / _ASTERISK.lstrip("/")
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return "no asterisk binary"
    try:
        marker = json.loads((path / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no provisioning marker (interrupted build?)"
    if marker.get("key") != key:
        return f"built for package list {marker.get('key')}, expected {key}"
    installed = _dpkg_installed(path)
    absent = [p for p in marker.get("installed", ()) if p not in installed]
    if absent:
        return f"packages not installed: {', '.join(absent)}"
    return None


def _dpkg_installed(path: Path) -> set[str]:
    status = path / "var/lib/dpkg/status"
    installed = set()
    for stanza in re.split(r"\n\s*\n", status.read_text(encoding="utf-8", errors="replace")):
        fields = _deb822_fields(stanza)
        if fields.get("status") == "install ok installed" and "package" in fields:
            installed.add(fields["package"])
    return installed


# ---------------------------------------------------------------- steps and logs


class _Steps:
    """Runs provisioning steps: progress with elapsed seconds, one log per step."""

    def __init__(self, progress: Progress, logs_dir: Path) -> None:
        self._progress = progress
        self._logs = logs_dir
        self._logs.mkdir(parents=True, exist_ok=True)
        self._stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"
        self._t0 = time.monotonic()

    def total(self) -> float:
        return time.monotonic() - self._t0

    def note(self, text: str) -> None:
        self._progress(f"[{self.total():6.1f} s] {text}")

    def log_path(self, name: str) -> Path:
        return self._logs / f"{self._stamp}-{name}.log"

    @contextlib.contextmanager
    def step(self, name: str, what: str) -> Iterator[Path]:
        log = self.log_path(name)
        self._progress(f"[{self.total():6.1f} s] {what} ...")
        start = time.monotonic()
        try:
            yield log
        except SandboxError:
            raise
        except Exception as exc:
            with log.open("a", encoding="utf-8") as fh:
                fh.write(f"\n{type(exc).__name__}: {exc}\n")
            raise SandboxError(f"step {name!r} failed: {exc}; log: {log}") from exc
        self._progress(f"[{self.total():6.1f} s] {what}: done in {time.monotonic() - start:.1f} s")

    def run(self, name: str, what: str, argv: Sequence[str], *, timeout: float) -> str:
        """Run ``argv`` with output to the step's log; return that output."""
        with self.step(name, what) as log:
            with log.open("w", encoding="utf-8") as fh:
                fh.write(f"$ {shlex.join(argv)}\n")
                fh.flush()
                header = fh.tell()
                code = _run_killable(argv, fh, timeout)
            if code != 0:
                reason = "timed out" if code is None else f"exited with {code}"
                raise SandboxError(f"step {name!r} {reason}; log: {log}")
            with log.open(encoding="utf-8", errors="replace") as fh:
                fh.seek(header)
                return fh.read()
        raise AssertionError("unreachable")  # pragma: no cover


def _run_killable(argv: Sequence[str], out: IO[str], timeout: float) -> int | None:
    """Run in a new session; on timeout or any exception kill the whole group."""
    proc = subprocess.Popen(  # noqa: S603
        list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        env=CHROOT_ENV, start_new_session=True,
    )
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None
    except BaseException:
        _kill_group(proc)
        raise


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove_tree(path: Path) -> None:
    mounts = host_mounts_under(path)
    if mounts:
        raise SandboxError(f"refusing to delete {path}: still mounted: {', '.join(mounts)}")
    users = _processes_rooted_in(path)
    if users:
        raise SandboxError(f"refusing to delete {path}: used by PIDs {users}")
    shutil.rmtree(path)


def _processes_rooted_in(path: Path) -> list[int]:
    target = str(path.resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "root") == target:
                    pids.append(int(entry.name))
    return pids


# ---------------------------------------------------------------- restore / build


def _tarball_name(version: str, key: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9.]+", "_", version)
    return f"asterisk-{SUITE}-{safe}-{key}.tar.zst"


def _newest_tarball(base: Path, key: str) -> Path | None:
    found = sorted(base.glob(f"asterisk-{SUITE}-*-{key}.tar.zst"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _restore(steps: _Steps, tarball: Path, root_path: Path, key: str) -> None:
    staging = root_path.with_name(f"root.restore-{os.getpid()}")
    if staging.exists():
        _remove_tree(staging)
    staging.mkdir(parents=True)
    try:
        steps.run(
            "restore", f"restore {tarball.name}",
            ["tar", "-C", str(staging), "--numeric-owner", "-I", "zstd", "-xpf", str(tarball)],
            timeout=600,
        )
        reason = _unusable_reason(staging, key)
        if reason is not None:
            raise SandboxError(f"{tarball} holds an unusable root ({reason}); delete it")
        staging.rename(root_path)
    except BaseException:
        if staging.exists():
            _remove_tree(staging)
        raise


def _cold_build(steps: _Steps, root_path: Path, key: str, mirror: str) -> None:
    staging = root_path.with_name(f"root.build-{os.getpid()}")
    if staging.exists():
        _remove_tree(staging)
    try:
        _build_into(steps, staging, mirror, key)
        staging.rename(root_path)
    except BaseException:
        if staging.exists():
            _remove_tree(staging)
        raise


def _build_into(steps: _Steps, root: Path, mirror: str, key: str) -> None:
    # debootstrap mounts /proc and /sys in the target itself: run it in a private
    # mount namespace too, so an interrupted run cannot leave them on the host.
    steps.run(
        "debootstrap", f"debootstrap --variant=minbase {SUITE} from {mirror}",
        ["unshare", "--mount", "--propagation", "private", "--",
         "debootstrap", "--variant=minbase", SUITE, str(root), mirror],
        timeout=1200,
    )
    with steps.step("configure", "configure apt and services in the root"):
        # The mirror's sid Release file may be past its Valid-Until (snapshot
        # mirrors): apt.conf(5) Acquire::Check-Valid-Until.
        (root / "etc/apt/apt.conf.d/99homeline").write_text(
            'Acquire::Check-Valid-Until "false";\n'
            'APT::Install-Recommends "false";\n'
            'Dpkg::Use-Pty "false";\n',
            encoding="utf-8",
        )
        # invoke-rc.d(8): exit status 101 of policy-rc.d = "action forbidden",
        # so package scripts do not start Asterisk inside the root.
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n", encoding="utf-8")
        policy.chmod(0o755)
        resolv = root / "etc/resolv.conf"
        if resolv.is_symlink():
            resolv.unlink()
        shutil.copyfile("/etc/resolv.conf", resolv)
    steps.run("apt-update", "apt-get update in the root",
              chroot_command(root, ["apt-get", "update"]), timeout=900)
    probe = steps.run(
        "apt-cache", f"check {len(PACKAGES)} package names in {SUITE}",
        chroot_command(root, [
            "sh", "-c",
            'for p in "$@"; do if apt-cache show --no-all-versions "$p" >/dev/null 2>&1; '
            'then echo "present $p"; else echo "missing $p"; fi; done', "sh", *PACKAGES,
        ]),
        timeout=300,
    )
    present = [p for p in PACKAGES if f"present {p}" in probe.split("\n")]
    missing = [p for p in PACKAGES if p not in present]
    if missing:
        steps.note(f"not in Debian {SUITE}, skipped: {', '.join(missing)}")
    if "asterisk" not in present:
        log = steps.log_path("apt-cache")
        raise SandboxError(f"Debian {SUITE} has no 'asterisk' package; log: {log}")
    steps.run(
        "apt-install", f"apt-get install {' '.join(present)}",
        chroot_command(root, ["apt-get", "install", "-y", "--no-install-recommends", *present]),
        timeout=1800,
    )
    steps.run("apt-clean", "apt-get clean", chroot_command(root, ["apt-get", "clean"]), timeout=300)
    with steps.step("languages", "link sounds/<language> to the installed voices"):
        _link_languages(root / "usr/share/asterisk/sounds")
    with steps.step("marker", "record what was installed"):
        # The package lists are 100+ MB and only needed to install more.
        lists = root / "var/lib/apt/lists"
        for entry in lists.iterdir():
            if entry.is_file():
                entry.unlink()
        version = _asterisk_version(root)
        marker = {
            "format": _FORMAT,
            "key": key,
            "suite": SUITE,
            "mirror": mirror,
            "requested": list(PACKAGES),
            "installed": present,
            "missing": missing,
            "asterisk_version": version,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (root / _MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _link_languages(sounds: Path) -> None:
    """Make ``sounds/es``, ``sounds/fr``... exist, as ``sounds/en`` does.

    Debian's asterisk-core-sounds-en registers ``sounds/en`` as an alternative,
    but the es/fr packages only install ``es_MX_f_Allison``/``fr_CA_f_June``
    (language_region_gender_voice); Asterisk looks prompts up by the channel's
    language ("es"), so without a link Spanish calls would hear nothing.
    """
    for voice in sorted(p for p in sounds.iterdir() if p.is_dir() and not p.is_symlink()):
        match = re.fullmatch(r"([a-z]{2})_[A-Z]{2}_[fm]_\w+", voice.name)
        if match and not os.path.lexists(sounds / match.group(1)):
            (sounds / match.group(1)).symlink_to(voice.name)


def _relative_language_links(root: Path) -> None:
    """Make ``sounds/en`` a relative link, like ``sounds/es`` and ``sounds/fr``.

    update-alternatives makes it absolute (``/etc/alternatives/asterisk-prompt-en``),
    which resolves outside the root when seen from the host, so installing
    prompts from the host into ``sounds/en/homeline`` would miss. Asterisk sees
    the same directory either way.
    """
    sounds = root / "usr/share/asterisk/sounds"
    if not sounds.is_dir():
        return
    for link in sorted(p for p in sounds.iterdir() if p.is_symlink()):
        if not re.fullmatch(r"[a-z]{2}", link.name):
            continue
        target = PurePosixPath(os.readlink(link))
        if not target.is_absolute():
            continue
        resolved = link
        for _ in range(16):
            if not resolved.is_symlink():
                break
            hop = PurePosixPath(os.readlink(resolved))
            resolved = (root / str(hop).lstrip("/")) if hop.is_absolute() else resolved.parent / hop
        if resolved.is_dir() and resolved.parent == sounds:
            tmp = link.with_name(f".{link.name}.relink")
            if os.path.lexists(tmp):
                tmp.unlink()
            tmp.symlink_to(resolved.name)
            os.replace(tmp, link)


def _write_tarball(steps: _Steps, root: AsteriskRoot, key: str) -> None:
    base = asterisk_cache_dir()
    final = base / _tarball_name(root.version, key)
    partial = final.with_name(final.name + ".partial")
    try:
        steps.run(
            "tarball", f"write {final.name}",
            ["tar", "-C", str(root.path), "--numeric-owner",
             "--exclude=./proc/*", "--exclude=./srv/homeline", "--exclude=./tmp/*",
             "--exclude=./var/cache/apt/archives/*.deb",
             "-I", "zstd -T0 -3", "-cpf", str(partial), "."],
            timeout=900,
        )
        partial.rename(final)
    finally:
        partial.unlink(missing_ok=True)
    for old in base.glob(f"asterisk-{SUITE}-*-{key}.tar.zst"):
        if old != final:
            old.unlink()
