"""Voice over Asterisk: the adapter between a real PBX and Homeline's cores.

- ``voice.fastagi``: the FastAGI server (Asterisk's ``AGI(agi://...)`` lands here);
- ``voice.agi_runner``: runs an IVR flow (``ivr``) on a live call over AGI;
- ``voice.ami``: the supervised AMI connection; ``voice.ami_events``: AMI events
  translated into router events (``routing.events``);
- ``voice.executor``: every router decision carried out on the live call.

The cores (``routing``, ``ivr``, ``prompts``) import nothing from here. Modules
load lazily: importing ``voice`` pulls in neither pyst2 nor asterisk-ami.
"""
from __future__ import annotations

__all__ = ["fastagi", "agi_runner", "ami", "ami_events", "executor"]
