"""The store's one exception root."""
from __future__ import annotations

__all__ = ["StoreError"]


class StoreError(Exception):
    """The store cannot be opened, read or written, or was asked for something invalid.

    Raised from the driver's error with ``raise ... from`` so the cause is kept.
    """
