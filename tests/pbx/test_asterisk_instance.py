"""A real Asterisk (Debian sid, in the provisioned root) started, queried and stopped."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from homeline.pbx.chroot import host_mounts_under
from homeline.pbx.errors import AsteriskStartError
from homeline.pbx.process import AsteriskInstance
from homeline.pbx.sandbox import AsteriskRoot, ensure_root

pytestmark = pytest.mark.asterisk

AMI_USER, AMI_SECRET = "hltest", "hltest-secret"

# autoload, minus channel drivers and services that would open sockets or need
# servers; the same list the lab configuration used.
NOLOAD = """
chan_iax2 chan_skinny chan_mgcp chan_unistim chan_ooh323 chan_dahdi chan_motif
chan_console chan_alsa chan_oss chan_mobile res_xmpp pbx_dundi pbx_ael pbx_lua
res_phoneprov res_pjsip_phoneprov_provider res_hep res_hep_pjsip res_hep_rtcp
res_snmp cdr_sqlite res_config_odbc res_config_pgsql cel_pgsql cdr_pgsql
res_config_ldap res_calendar res_calendar_caldav res_calendar_ews
res_calendar_exchange res_calendar_icalendar res_stun_monitor res_smdi
app_voicemail_imap app_voicemail_odbc res_resolver_unbound
""".split()


@pytest.fixture(scope="session")
def asterisk_root() -> AsteriskRoot:
    return ensure_root(progress=lambda line: print(f"[asterisk root] {line}"))


def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        # a server would set SO_REUSEADDR too; it still fails if anyone listens
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def write_minimal_config(inst: AsteriskInstance, sip_port: int, ami_port: int) -> None:
    etc = inst.etc_dir
    (etc / "modules.conf").write_text(
        "[modules]\nautoload=yes\n" + "".join(f"noload => {m}.so\n" for m in NOLOAD)
    )
    (etc / "logger.conf").write_text(
        "[general]\n[logfiles]\nconsole => notice,warning,error\n"
        "messages.log => notice,warning,error\n"
    )
    (etc / "pjsip.conf").write_text(
        "[global]\ntype=global\nendpoint_identifier_order=username,ip,anonymous\n\n"
        f"[transport-udp]\ntype=transport\nprotocol=udp\nbind=127.0.0.1:{sip_port}\n"
    )
    (etc / "manager.conf").write_text(
        f"[general]\nenabled=yes\nport={ami_port}\nbindaddr=127.0.0.1\nwebenabled=no\n\n"
        f"[{AMI_USER}]\nsecret={AMI_SECRET}\ndeny=0.0.0.0/0.0.0.0\n"
        "permit=127.0.0.1/255.255.255.255\nread=all\nwrite=all\n"
    )
    (etc / "extensions.conf").write_text(
        "[general]\nstatic=yes\nwriteprotect=yes\n\n"
        "[homeline-test]\n"
        "exten => s,1,Answer()\n same => n,Playback(hello-world)\n same => n,Hangup()\n"
    )


def ami_login(port: int, username: str, secret: str) -> tuple[str, list[str]]:
    """Banner and first response of a raw AMI login (AMI: "Action: Login")."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        reader = conn.makefile("rb")
        banner = reader.readline().decode().strip()
        conn.sendall(
            f"Action: Login\r\nUsername: {username}\r\nSecret: {secret}\r\n\r\n".encode()
        )
        response = []
        while (line := reader.readline()) not in (b"\r\n", b""):
            response.append(line.decode().strip())
        conn.sendall(b"Action: Logoff\r\n\r\n")
        return banner, response


def instance_pids(inst: AsteriskInstance) -> list[int]:
    """Live processes whose command line names this instance's asterisk.conf."""
    marker = str(inst.to_chroot(inst.asterisk_conf)).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def make_instance(
    asterisk_root: AsteriskRoot,
) -> Iterator[Callable[[str], tuple[AsteriskInstance, int, int]]]:
    created: list[AsteriskInstance] = []

    def make(suffix: str) -> tuple[AsteriskInstance, int, int]:
        inst = AsteriskInstance(asterisk_root, f"t{os.getpid()}-{suffix}")
        created.append(inst)
        sip_port, ami_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
        write_minimal_config(inst, sip_port, ami_port)
        return inst, sip_port, ami_port

    yield make
    for inst in created:
        inst.remove()


def test_instance_boots_answers_cli_and_ami(
    make_instance: Callable[[str], tuple[AsteriskInstance, int, int]],
) -> None:
    inst, sip_port, ami_port = make_instance("one")
    started = time.monotonic()
    with inst:
        print(f"FullyBooted after {time.monotonic() - started:.2f} s")
        assert inst.running()
        assert "fully booted" in inst.cli("core waitfullybooted")
        assert "Asterisk 2" in inst.cli("core show version")
        assert "Playback(hello-world)" in inst.cli("dialplan show homeline-test")
        banner, response = ami_login(ami_port, AMI_USER, AMI_SECRET)
        assert banner.startswith("Asterisk Call Manager/")
        assert "Response: Success" in response
        _, refused = ami_login(ami_port, AMI_USER, "wrong")
        assert "Response: Error" in refused
        status = inst.status()
        assert status["running"] and status["pid"] == inst.pid()
        assert status["uptime"].startswith("System uptime")
        assert ("127.0.0.1", ami_port) in status["ports"]["tcp"]
        assert ("127.0.0.1", sip_port) in status["ports"]["udp"]
        # what Asterisk writes lands in the instance's own tree
        assert (inst.dir / "db/astdb.sqlite3").is_file()
        assert inst.control_socket.exists()
    assert not inst.running()
    assert instance_pids(inst) == []


def test_two_instances_at_once_then_nothing_left(
    asterisk_root: AsteriskRoot,
    make_instance: Callable[[str], tuple[AsteriskInstance, int, int]],
) -> None:
    first, sip_a, ami_a = make_instance("a")
    second, sip_b, ami_b = make_instance("b")
    first.start()
    second.start()
    pids = (first.pid(), second.pid())
    assert None not in pids and pids[0] != pids[1]
    for port in (ami_a, ami_b):
        assert "Response: Success" in ami_login(port, AMI_USER, AMI_SECRET)[1]
    first.stop()
    second.stop()
    second.stop()  # idempotent
    for pid in pids:
        assert pid is not None and not Path(f"/proc/{pid}").exists()
    assert instance_pids(first) == [] and instance_pids(second) == []
    assert host_mounts_under(asterisk_root.path) == []
    for port in (sip_a, sip_b):
        assert port_is_free(port, socket.SOCK_DGRAM)
    for port in (ami_a, ami_b):
        assert port_is_free(port, socket.SOCK_STREAM)


def test_up_in_one_process_down_in_another(
    make_instance: Callable[[str], tuple[AsteriskInstance, int, int]],
) -> None:
    """What `homeline asterisk up` then `down` do: the starter exits, Asterisk stays."""
    inst, _, ami_port = make_instance("updown")
    code = (
        "from homeline.pbx.sandbox import ensure_root\n"
        "from homeline.pbx.process import AsteriskInstance\n"
        f"AsteriskInstance(ensure_root(), {inst.name!r}).start()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    pid = inst.pid()
    assert pid is not None and instance_pids(inst) == [pid]
    assert "Response: Success" in ami_login(ami_port, AMI_USER, AMI_SECRET)[1]
    assert inst.status()["running"]
    inst.stop()
    assert not inst.running() and instance_pids(inst) == []
    assert port_is_free(ami_port, socket.SOCK_STREAM)


def test_stop_from_another_process_via_pidfile(
    make_instance: Callable[[str], tuple[AsteriskInstance, int, int]],
) -> None:
    inst, _, _ = make_instance("other")
    inst.start()
    pid = inst.pid()
    code = (
        "from homeline.pbx.sandbox import ensure_root\n"
        "from homeline.pbx.process import AsteriskInstance\n"
        f"inst = AsteriskInstance(ensure_root(), {inst.name!r})\n"
        "assert inst.running(), 'pidfile not seen from another process'\n"
        "inst.stop()\n"
        "print(inst.running())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert not inst.running()
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    inst.stop()  # the owner's stop still works (reaps, removes nothing twice)


def test_exception_inside_with_stops_asterisk(
    make_instance: Callable[[str], tuple[AsteriskInstance, int, int]],
) -> None:
    inst, _, _ = make_instance("exc")
    with pytest.raises(KeyboardInterrupt), inst:
        assert inst.running()
        raise KeyboardInterrupt
    assert not inst.running()
    assert instance_pids(inst) == []


def test_failed_boot_raises_with_the_reason(
    make_instance: Callable[[str], tuple[AsteriskInstance, int, int]],
) -> None:
    inst, _, _ = make_instance("broken")
    # modules.conf(5): a `require`d module that cannot load aborts the boot
    with (inst.etc_dir / "modules.conf").open("a") as fh:
        fh.write("require => res_homeline_does_not_exist.so\n")
    started = time.monotonic()
    with pytest.raises(AsteriskStartError) as caught:
        inst.start(timeout=20)
    elapsed = time.monotonic() - started
    print(f"failed boot reported after {elapsed:.2f} s")
    message = str(caught.value)
    assert "exited with status" in message
    assert "res_homeline_does_not_exist.so" in message.splitlines()[0]
    assert str(inst.console_log) in message
    assert elapsed < 15
    assert not inst.running() and instance_pids(inst) == []


def test_missing_modules_conf_is_named(
    make_instance: Callable[[str], tuple[AsteriskInstance, int, int]],
) -> None:
    inst, _, _ = make_instance("nomodules")
    (inst.etc_dir / "modules.conf").unlink()
    with pytest.raises(AsteriskStartError, match="modules.conf' invalid or missing"):
        inst.start(timeout=20)
    assert not inst.running() and instance_pids(inst) == []


def test_boot_timeout_stops_the_half_started_asterisk(
    make_instance: Callable[[str], tuple[AsteriskInstance, int, int]],
) -> None:
    inst, _, ami_port = make_instance("slow")
    with pytest.raises(AsteriskStartError, match="not FullyBooted after 0.0 s"):
        inst.start(timeout=0.0)
    assert not inst.running() and instance_pids(inst) == []
    assert port_is_free(ami_port, socket.SOCK_STREAM)


def test_root_has_prompts_for_each_language(asterisk_root: AsteriskRoot) -> None:
    for language in ("en", "es", "fr"):
        prompts = asterisk_root.language_dir(language)
        assert (prompts / "hello-world.wav").is_file(), prompts
        assert len(list(prompts.glob("*.wav"))) > 200
    assert asterisk_root.asterisk_uid > 0 and asterisk_root.version.startswith("2")
