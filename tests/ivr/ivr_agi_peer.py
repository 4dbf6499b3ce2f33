"""PROTOCOL TEST PEER, not Asterisk: a TCP client that speaks FastAGI the way
Asterisk 22's res_agi does (environment block, then one ``200 result=...`` line per
command, ``HANGUP`` on caller hang-up), used ONLY for the FastAGI parser/protocol
tests. Real calls through a real Asterisk are in tests/integration.

Reply formats follow res_agi.c: STREAM FILE ``200 result=<ascii|0> endpos=<n>``,
WAIT FOR DIGIT ``200 result=<ascii|0>``, SET VARIABLE ``200 result=1``, EXEC MSet
``200 result=0``,
GET VARIABLE ``200 result=1 (<value>)`` or ``200 result=0``, GET FULL VARIABLE
``200 result=1 (<expanded>)``, EXEC Read ``200 result=0`` (app_read.c returns 0 and
sets the variable and READSTATUS), RECORD FILE
``200 result=0 (timeout) endpos=<n>``, VERBOSE/HANGUP ``200 result=1``.
"""
from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterable


class AgiPeer:
    def __init__(self, port: int, *, script: str = "ivr", keys: Iterable[str] = (),
                 variables: dict[str, str] | None = None, uniqueid: str = "1764064800.1",
                 callerid: str = "+15550100",
                 stream_replies: dict[str, str] | None = None, first_key: str = "") -> None:
        self.port = port
        # the key pressed while Read() answers and plays the first prompts ('' none)
        self.first_key = first_key
        # prompt name -> the reply to its STREAM FILE (default: played to the end)
        self.stream_replies = dict(stream_replies or {})
        self.script = script
        self.keys = list(keys)
        self.variables = dict(variables or {})
        self.uniqueid = uniqueid
        self.callerid = callerid
        self.commands: list[str] = []
        self.hung_up = False
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def env(self) -> str:
        pairs = {
            "agi_network": "yes",
            "agi_network_script": self.script,
            "agi_request": f"agi://127.0.0.1:{self.port}/{self.script}",
            "agi_channel": "PJSIP/caller-00000001",
            "agi_language": "en",
            "agi_type": "PJSIP",
            "agi_uniqueid": self.uniqueid,
            "agi_version": "22.5.2",
            "agi_callerid": self.callerid,
            "agi_calleridname": "Test Caller",
            "agi_callingpres": "0",
            "agi_dnid": "100",
            "agi_context": "homeline-inbound",
            "agi_extension": "100",
            "agi_priority": "2",
            "agi_enhanced": "0.0",
            "agi_accountcode": "",
            "agi_threadid": "140000000000000",
        }
        return "".join(f"{k}: {v}\n" for k, v in pairs.items()) + "\n"

    def start(self) -> AgiPeer:
        self._thread.start()
        return self

    def join(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "AGI peer still running"

    def _reply(self, line: str) -> str | None:
        verb = line.split(" ", 2)
        cmd = " ".join(verb[:2]).upper()
        if cmd.startswith("STREAM FILE") or cmd.startswith("SAY "):
            for prompt, reply in self.stream_replies.items():
                if f"/{prompt}\"" in line:
                    return reply
            return "200 result=0 endpos=8000"
        if cmd.startswith("WAIT FOR"):
            if not self.keys:
                return "200 result=0"
            key = self.keys.pop(0)
            if key == "HANGUP":
                return None
            return f"200 result={ord(key) if key else 0}"
        if cmd.upper().startswith("EXEC READ"):
            args = line.split(" ", 2)[2].strip().strip('"').split(",")
            self.variables[args[0]] = self.first_key
            self.variables["READSTATUS"] = "OK" if self.first_key else "TIMEOUT"
            return "200 result=0"
        if cmd.startswith("GET FULL"):
            expr = line.split(" ", 3)[3].strip().strip('"')
            expanded = re.sub(r"\$\{(\w+)\}", lambda m: self.variables.get(m.group(1), ""),
                              expr)
            return f"200 result=1 ({expanded})"
        if cmd.startswith("GET VARIABLE"):
            name = line.split(" ", 2)[2].strip().strip('"')
            value = self.variables.get(name)
            return "200 result=0" if value is None else f"200 result=1 ({value})"
        if cmd.startswith("SET VARIABLE"):
            parts = line.split('"')
            if len(parts) >= 4:
                self.variables[parts[1]] = parts[3]
            return "200 result=1"
        if cmd.upper().startswith("EXEC MSET"):
            # EXEC answers with the application's return value (res_agi.c handle_exec)
            args = line.split(" ", 2)[2].strip().strip('"')
            for pair in args.split(","):
                name, _, value = pair.partition("=")
                self.variables[name] = value
            return "200 result=0"
        if cmd.startswith("RECORD FILE"):
            return "200 result=0 (timeout) endpos=0"
        if cmd.startswith("ANSWER") or cmd == "EXEC ANSWER":
            return "200 result=0"
        return "200 result=1"

    def _run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            f = sock.makefile("rw", encoding="utf-8", newline="\n")
            f.write(self.env())
            f.flush()
            try:
                while True:
                    line = f.readline()
                    if not line:
                        break
                    line = line.rstrip("\n")
                    self.commands.append(line)
                    reply = self._reply(line)
                    if reply is None:  # the caller hangs up: FastAGI sends HANGUP
                        f.write("HANGUP\n")
                        f.flush()
                        self.hung_up = True
                        break
                    f.write(reply + "\n")
                    f.flush()
            except OSError:
                pass
        self.done.set()
