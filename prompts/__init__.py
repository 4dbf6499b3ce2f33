"""Prompts and audio: the localized prompt catalog, its build/check/install,
DTMF generation and detection, and the audio-flow proof used on live calls.

Submodules: ``catalog`` (load/validate ``catalog.yaml``), ``build`` (espeak-ng +
numpy), ``check``, ``install`` (Asterisk sounds tree), ``dtmf`` (Q.24 detector,
generator, redaction), ``audio_proof``. Names are re-exported lazily so
importing the catalog does not pull numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "PromptsError",
    "CatalogError",
    "Catalog",
    "load_catalog",
    "build_all",
    "BuildReport",
    "check_prompts",
    "install",
    "DtmfDetector",
    "DigitEvent",
    "Detection",
    "generate",
    "detect",
    "detect_batch",
    "detect_file",
    "redact",
    "AudioProof",
    "write_probe",
    "verify_heard",
]

_WHERE = {
    "PromptsError": "catalog",
    "CatalogError": "catalog",
    "Catalog": "catalog",
    "load_catalog": "catalog",
    "build_all": "build",
    "BuildReport": "build",
    "check_prompts": "check",
    "install": "install",
    "DtmfDetector": "dtmf",
    "DigitEvent": "dtmf",
    "Detection": "dtmf",
    "generate": "dtmf",
    "detect": "dtmf",
    "detect_batch": "dtmf",
    "detect_file": "dtmf",
    "redact": "dtmf",
    "AudioProof": "audio_proof",
    "write_probe": "audio_proof",
    "verify_heard": "audio_proof",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'prompts' has no attribute {name!r}")
    return getattr(importlib.import_module(f"prompts.{module}"), name)
