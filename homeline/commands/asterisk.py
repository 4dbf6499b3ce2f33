"""`homeline asterisk` sub-commands."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Not written yet: adds nothing, so `homeline asterisk` is an unknown command."""
