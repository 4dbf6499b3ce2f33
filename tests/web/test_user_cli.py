"""`homeline user add|passwd|remove|list` as an admin runs them, against the store a
running web app uses: passwords piped or generated and shown once, never a hash printed."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from web_testkit import AGENTS, REPO, Portal


def user(portal: Portal, *args: str, stdin: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeline", "user", *args,
                           "--db", str(portal.store.path)],
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def login(portal: Portal, name: str, password: str) -> int:
    return portal.client().post("/api/session", json={"user": name, "password": password}
                                ).status_code


def all_hashes(portal: Portal) -> list[str]:
    return [u.password_hash for u in portal.store.users()]


def test_add_with_a_piped_password_then_log_in(portal: Portal) -> None:
    r = user(portal, "add", "chloe", "--role", "agent", "--directory", str(AGENTS),
             stdin="chloe-password\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "user chloe added (agent, agent chloe)\n"
    assert "chloe-password" not in r.stdout + r.stderr
    stored = portal.store.user("chloe")
    assert stored is not None and stored.agent_id == "chloe"
    assert stored.password_hash.startswith("$argon2id$")
    assert "chloe-password" not in stored.password_hash
    assert login(portal, "chloe", "chloe-password") == 200
    r = user(portal, "add", "chloe", "--role", "agent", stdin="other-password\n")
    assert r.returncode == 1 and "'chloe' exists already" in r.stderr


def test_a_generated_password_is_printed_once_and_works(portal: Portal) -> None:
    r = user(portal, "add", "sup2", "--role", "supervisor")  # stdin: /dev/null
    assert r.returncode == 0, r.stderr
    (shown,) = re.findall(r"shown once, not stored; keep it now\): (\S+)$", r.stdout, re.M)
    assert len(shown) >= 16 and r.stdout.count(shown) == 1
    assert login(portal, "sup2", shown) == 200
    # never shown again, and no hash is ever printed
    for args in (("list",), ("list", "--json")):
        out = user(portal, *args)
        assert out.returncode == 0, out.stderr
        assert shown not in out.stdout and "argon2" not in out.stdout
        assert not any(h in out.stdout for h in all_hashes(portal))
    rows = json.loads(user(portal, "list", "--json").stdout)
    assert [(x["name"], x["role"], x["agent"]) for x in rows] == [
        ("ada", "admin", None), ("alice", "agent", "alice"), ("bruno", "agent", "bruno"),
        ("sam", "supervisor", None), ("sup2", "supervisor", None)]
    assert set(rows[0]) == {"name", "role", "agent", "created_at", "password_changed_at"}
    text = user(portal, "list").stdout.splitlines()
    assert text[4].split()[:3] == ["sup2", "supervisor", "-"]


def test_unknown_agents_and_short_passwords_are_refused(portal: Portal) -> None:
    r = user(portal, "add", "zed", "--role", "agent", "--directory", str(AGENTS),
             stdin="zed-password\n")
    assert r.returncode == 2 and "unknown agent 'zed'" in r.stderr
    assert "known: alice, bruno, chloe" in r.stderr
    r = user(portal, "add", "boss", "--role", "supervisor", "--agent", "ghost",
             "--directory", str(AGENTS), stdin="boss-password\n")
    assert r.returncode == 2 and "unknown agent 'ghost' given as --agent" in r.stderr
    r = user(portal, "add", "dee", "--role", "agent", "--agent", "diego", stdin="short\n")
    assert r.returncode == 2 and "8 to 1024 characters" in r.stderr
    r = user(portal, "add", "root", "--role", "root", stdin="root-password\n")
    assert r.returncode == 2 and "invalid choice: 'root'" in r.stderr
    assert {u.name for u in portal.store.users()} == {"ada", "alice", "bruno", "sam"}


def test_passwd_replaces_the_password_and_ends_sessions(portal: Portal) -> None:
    c, _ = portal.login("bruno")
    r = user(portal, "passwd", "bruno", stdin="bruno-new-password\n")
    assert r.returncode == 0, r.stderr
    assert "sessions are ended" in r.stdout and "bruno-new-password" not in r.stdout
    assert c.get("/api/me").status_code == 401
    assert login(portal, "bruno", "bruno-password") == 401
    assert login(portal, "bruno", "bruno-new-password") == 200
    r = user(portal, "passwd", "bruno")  # generated this time
    (shown,) = re.findall(r"keep it now\): (\S+)$", r.stdout, re.M)
    assert login(portal, "bruno", shown) == 200
    r = user(portal, "passwd", "nobody", stdin="whatever-pass\n")
    assert r.returncode == 2 and "no user 'nobody'" in r.stderr


def test_remove_ends_the_users_sessions(portal: Portal) -> None:
    c, _ = portal.login("alice")
    r = user(portal, "remove", "alice")
    assert r.returncode == 0 and "user alice removed" in r.stdout
    assert c.get("/api/me").status_code == 401
    assert login(portal, "alice", "alice-password") == 401
    r = user(portal, "remove", "alice")
    assert r.returncode == 2 and "no user 'alice'" in r.stderr
