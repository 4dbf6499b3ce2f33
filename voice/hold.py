"""What a caller on hold hears from the engine between stretches of music: their
place in line and the expected wait ([homeline-hold] runs ``AGI(.../position)``
every ``HOMELINE_ANNOUNCE_S`` seconds, the interval the flow's route node set).

The words come from ``ivr.engine.announcement`` (the same prompts the IVR says
when it routes the call); playing them is plain STREAM FILE, not interruptible
(res_agi.c: an empty escape-digit list lets no key stop the file).
"""
from __future__ import annotations

import logging

from ivr.commands import PromptItem, PromptRef
from voice.fastagi import AgiChannel

__all__ = ["announce_on_hold"]


async def announce_on_hold(agi: AgiChannel, items: tuple[PromptItem, ...],
                     log: logging.Logger) -> int:
    """Play ``items``; returns how many played (a missing prompt is logged and skipped)."""
    played = 0
    for item in items:
        if not isinstance(item, PromptRef):
            continue  # the announcement is prompts only
        reply = await agi.command("STREAM FILE", f"homeline/{item.prompt_id}", '""')
        if reply.result == "-1":  # the file is missing (res_agi.c), not a hang-up
            log.warning("hold announcement: prompt %s could not be played", item.prompt_id)
            continue
        played += 1
    return played
