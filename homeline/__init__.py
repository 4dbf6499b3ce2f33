"""Homeline: the composition root.

This package is the only place that wires the components together: it reads
configuration, provisions the real Asterisk and pjsua2, and runs the engine
(FastAGI IVR + AMI router adapter) and the demo. The components themselves live
in the top-level packages ``ivr``, ``routing``, ``prompts`` and ``softphone``.
"""
from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
