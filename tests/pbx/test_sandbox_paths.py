"""Pure parts of the Asterisk sandbox: mirror detection, cache key, path mapping, /proc."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path, PurePosixPath

import pytest

from homeline.pbx.chroot import host_mounts_under
from homeline.pbx.errors import SandboxError
from homeline.pbx.process import AsteriskInstance, bound_ports
from homeline.pbx.sandbox import AsteriskRoot, ensure_root, host_mirror, package_key


def test_mirror_from_deb822_skips_security(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d/debian.sources").write_text(
        "Types: deb\n# comment\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    )
    assert host_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources_with_options(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian sid main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n"
    )
    assert host_mirror(tmp_path) == "http://one.example/debian"


def test_mirror_default_when_nothing_configured(tmp_path: Path) -> None:
    assert host_mirror(tmp_path) == "http://deb.debian.org/debian"


def test_package_key_ignores_order_but_not_content() -> None:
    assert package_key(["a", "b"]) == package_key(["b", "a"])
    assert package_key(["a", "b"]) != package_key(["a", "c"])
    assert package_key(["a"], suite="sid") != package_key(["a"], suite="trixie")


def test_path_mapping_round_trip(tmp_path: Path) -> None:
    root = AsteriskRoot(path=tmp_path, version="22.0")
    inner = PurePosixPath("/srv/homeline/demo/spool/monitor/x.wav")
    assert root.to_host(inner) == tmp_path / "srv/homeline/demo/spool/monitor/x.wav"
    assert root.to_chroot(root.to_host(inner)) == inner
    assert root.to_chroot(tmp_path) == PurePosixPath("/")
    with pytest.raises(ValueError):
        root.to_chroot(tmp_path.parent / "elsewhere")
    with pytest.raises(ValueError):
        root.to_host("/srv/../../etc/passwd")
    with pytest.raises(ValueError):
        root.to_host("relative/path")


def test_language_dir_follows_absolute_links_inside_the_root(tmp_path: Path) -> None:
    sounds = tmp_path / "usr/share/asterisk/sounds"
    (sounds / "en_US_f_Allison").mkdir(parents=True)
    (tmp_path / "etc/alternatives").mkdir(parents=True)
    (tmp_path / "etc/alternatives/asterisk-prompt-en").symlink_to(
        "/usr/share/asterisk/sounds/en_US_f_Allison"
    )
    (sounds / "en").symlink_to("/etc/alternatives/asterisk-prompt-en")
    (sounds / "es").symlink_to("en_US_f_Allison")
    root = AsteriskRoot(path=tmp_path, version="22.0")
    assert root.language_dir("en") == sounds / "en_US_f_Allison"
    assert root.language_dir("es") == sounds / "en_US_f_Allison"
    assert root.language_dir("de") == sounds / "de"


def test_uid_comes_from_the_roots_passwd(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nasterisk:x:101:104::/var/lib/asterisk:/usr/sbin/nologin\n"
    )
    root = AsteriskRoot(path=tmp_path, version="22.0")
    assert (root.asterisk_uid, root.asterisk_gid) == (101, 104)


def test_pidfile_with_recycled_pid_is_not_running(tmp_path: Path) -> None:
    inst = AsteriskInstance(AsteriskRoot(path=tmp_path, version="22.0"), "demo")
    assert inst.etc_dir == tmp_path / "srv/homeline/demo/etc" and inst.etc_dir.is_dir()
    assert inst.pid() is None
    # our own PID, but a start time that is not ours: a recycled PID, not Asterisk
    inst.pidfile.write_text(json.dumps({"pid": os.getpid(), "starttime": 1}))
    assert inst.pid() is None and not inst.running()
    inst.stop()  # nothing to stop: no error, pidfile cleared
    assert not inst.pidfile.exists()


@pytest.mark.parametrize("name", ["", "-x", "a/b", "..", "x" * 49, "a b"])
def test_instance_names_are_checked(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        AsteriskInstance(AsteriskRoot(path=tmp_path, version="22.0"), name)


def test_bound_ports_sees_our_own_sockets() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp6:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        udp6.bind(("::1", 0))
        ports = bound_ports(os.getpid())
        assert ("127.0.0.1", tcp.getsockname()[1]) in ports["tcp"]
        assert ("127.0.0.1", udp.getsockname()[1]) in ports["udp"]
        assert ("::1", udp6.getsockname()[1]) in ports["udp"]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as unbound_listener:
        unbound_listener.bind(("127.0.0.1", 0))  # bound but not listening: not reported
        port = unbound_listener.getsockname()[1]
        assert ("127.0.0.1", port) not in bound_ports(os.getpid())["tcp"]


def test_failed_cold_build_names_the_step_and_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """debootstrap against a closed loopback port: fails fast, leaves nothing."""
    monkeypatch.setenv("HOMELINE_CACHE", str(tmp_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    lines: list[str] = []
    with pytest.raises(SandboxError, match=r"step 'debootstrap' exited with \d+; log: ") as caught:
        ensure_root(progress=lines.append, mirror=f"http://127.0.0.1:{closed}/debian")
    log = Path(str(caught.value).rsplit("log: ", 1)[1])
    assert log.parent == tmp_path / "asterisk/logs"
    assert "Failed getting release file" in log.read_text()
    assert any("debootstrap" in line and " s]" in line for line in lines)
    assert sorted(p.name for p in (tmp_path / "asterisk").iterdir()) == ["lock", "logs"]
    assert host_mounts_under(tmp_path) == []
