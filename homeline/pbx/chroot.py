"""Run a command inside the Asterisk root without ever leaving a mount on the host.

Each command runs in its own private mount namespace (util-linux ``unshare(1)``,
``mount_namespaces(7)``): ``/proc`` and ``/dev`` are mounted into the root inside
that namespace only, so they disappear with the last process of the namespace,
however it ends (exit, SIGKILL, crash of the caller). Nothing is ever unmounted
by hand and nothing is visible in the host's ``/proc/mounts``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["CHROOT_ENV", "chroot_command", "host_mounts_under"]

# A clean environment for programs in the root: the host's PATH/LANG/PYTHON* must
# not leak into a different distribution.
CHROOT_ENV: dict[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LC_ALL": "C",
    "DEBIAN_FRONTEND": "noninteractive",
}

# "$0" is the root, "$@" the command: no quoting of user data into the script.
_SCRIPT = (
    'mount -t proc proc "$0/proc" && '
    'mount --bind /dev "$0/dev" && '
    'exec chroot "$0" "$@"'
)


def chroot_command(root: Path, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` chrooted into ``root`` with /proc and /dev mounted.

    ``unshare`` without ``--fork`` execs the shell, which execs ``chroot``, which
    execs the program: the PID of the returned command is the program's PID.
    """
    return [
        "unshare", "--mount", "--propagation", "private", "--",
        "sh", "-c", _SCRIPT, str(root), *argv,
    ]


def host_mounts_under(path: Path) -> list[str]:
    """Mount points of the host's mount namespace at or below ``path``."""
    prefix = str(path.resolve())
    found = []
    with open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) < 2:
                continue
            # /proc/mounts escapes blanks as octal (\040), see proc(5)
            point = fields[1].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found
