"""Validate built prompt files; report every problem at once with prompt id and language."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from adminfiles import Problem
from prompts.audio import active_level_dbfs
from prompts.build import BuildSettings
from prompts.catalog import REQUIRED_LANGUAGES, Catalog

__all__ = ["check_prompts", "MIN_SECONDS", "MAX_SECONDS", "LOUDNESS_TOLERANCE_DB"]

MIN_SECONDS = 0.2
MAX_SECONDS = 60.0
LOUDNESS_TOLERANCE_DB = 3.0
_MAX_EDGE_SILENCE_S = 0.5
_SILENT_DBFS = -50.0


def check_prompts(
    catalog: Catalog,
    build_dir: Path,
    wideband: bool = False,
    languages: Iterable[str] = REQUIRED_LANGUAGES,
    settings: BuildSettings | None = None,
) -> list[Problem]:
    """Every problem with the built prompts (empty list: all good).

    Checks: a file per prompt and language, WAV 16-bit PCM mono at the build
    rate, duration bounds, no clipped samples, not silent, leading/trailing
    silence, active level within ``LOUDNESS_TOLERANCE_DB`` of the target, and
    translations missing from the catalog.
    """
    import soundfile as sf

    cfg = settings or BuildSettings(rate=16000 if wideband else 8000)
    root = Path(build_dir)
    wanted = tuple(languages)
    problems = catalog.missing_translations(wanted)
    langs = sorted(set(wanted) | set(catalog.languages))
    for pid in catalog.ids:
        for lang in langs:
            if not catalog.has(pid, lang):
                continue
            path = root / lang / f"{pid}.wav"
            name = str(path)

            def add(
                message: str, code: str, _pid: str = pid, _lang: str = lang, _name: str = name
            ) -> None:
                problems.append(Problem(_name, _pid, _lang, message, code))

            if not path.is_file():
                add("not built (run `homeline prompts build`)", "not-built")
                continue
            try:
                info = sf.info(name)
                pcm, rate = sf.read(name, dtype="int16", always_2d=True)
            except (RuntimeError, OSError) as exc:
                add(f"unreadable: {exc}", "unreadable")
                continue
            if info.format != "WAV" or info.subtype != "PCM_16":
                add(f"format {info.format}/{info.subtype}, expected WAV/PCM_16", "format")
            if rate != cfg.rate:
                add(f"sample rate {rate} Hz, expected {cfg.rate}", "sample-rate")
            if info.channels != 1:
                add(f"{info.channels} channels, expected mono", "channels")
            seconds = pcm.shape[0] / rate if rate else 0.0
            if not MIN_SECONDS <= seconds <= MAX_SECONDS:
                add(f"duration {seconds:.2f} s outside {MIN_SECONDS}-{MAX_SECONDS} s", "duration")
            x = pcm[:, 0].astype(np.float32) / 32768.0
            clipped = int(np.count_nonzero(np.abs(pcm[:, 0].astype(np.int32)) >= 32767))
            if clipped:
                add(f"{clipped} clipped samples", "clipping")
            level = active_level_dbfs(x, rate) if x.size else -120.0
            if level < _SILENT_DBFS:
                add(f"silent (active level {level:.1f} dBFS)", "silent")
                continue
            if abs(level - cfg.target_dbfs) > LOUDNESS_TOLERANCE_DB:
                add(
                    f"active level {level:.1f} dBFS, target {cfg.target_dbfs:.1f} "
                    f"+/- {LOUDNESS_TOLERANCE_DB} dB",
                    "loudness",
                )
            lead, tail = _edge_silence(x, rate)
            if lead > _MAX_EDGE_SILENCE_S or tail > _MAX_EDGE_SILENCE_S:
                add(f"silence at the edges: {lead:.2f} s lead, {tail:.2f} s tail", "edge-silence")
    return problems


def _edge_silence(x: np.ndarray, rate: int) -> tuple[float, float]:
    loud = np.flatnonzero(np.abs(x) >= 10 ** (-45.0 / 20))
    if loud.size == 0:
        return x.size / rate, x.size / rate
    return loud[0] / rate, (x.size - 1 - loud[-1]) / rate
