"""Build every prompt of the catalog as a WAV Asterisk plays natively.

espeak-ng speaks the text in the language's voice (or a recorded override is
taken), then numpy: mono, resample to 8 kHz (16 kHz with ``wideband``), trim
leading/trailing silence, normalize the active speech level, 10 ms fades, peak
limited (never clipped), written as 16-bit PCM WAV.

Asterisk's ``wav`` format is 8 kHz 16-bit signed linear mono and ``wav16`` /
``sln16`` 16 kHz (Asterisk formats ``format_wav``), so no transcoding happens
when it plays a prompt to a G.711 or G.722 leg.

Output: ``<out_dir>/<lang>/<prompt-id>.wav`` plus ``manifest.json`` holding the
content hash of each file's inputs (text, voice, settings, espeak-ng version,
override bytes): a rebuild only redoes what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from adminfiles import Problem
from prompts.audio import fade, normalize, trim_silence
from prompts.catalog import Catalog, PromptsError
from prompts.resample import resample, to_mono

__all__ = [
    "VOICES",
    "BuildError",
    "BuildSettings",
    "BuildReport",
    "build_all",
    "espeak_version",
]

# espeak-ng voice per Asterisk language directory (`espeak-ng --voices=<lang>`).
VOICES: dict[str, str] = {"en": "en-us", "es": "es", "fr": "fr", "de": "de", "it": "it", "pt": "pt"}
_FORMAT_VERSION = 1  # bump when the processing changes, so every prompt rebuilds
_MANIFEST = "manifest.json"

Progress = Callable[[str], None]


class BuildError(PromptsError):
    """A prompt could not be built (espeak-ng missing or failing, unreadable override)."""


@dataclass(frozen=True, slots=True)
class BuildSettings:
    rate: int = 8000
    target_dbfs: float = -20.0  # active speech level; -20 dBFS ~ -17 dBm0 on G.711
    peak_limit_dbfs: float = -1.0
    trim_threshold_db: float = -45.0
    keep_silence_s: float = 0.05
    fade_ms: float = 10.0
    words_per_minute: int = 160
    pitch: int = 45


@dataclass(slots=True)
class BuildReport:
    out_dir: Path
    built: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        removed = f", {len(self.removed)} removed" if self.removed else ""
        return (
            f"{len(self.built)} built, {len(self.unchanged)} unchanged{removed}, "
            f"{len(self.problems)} failed in {self.seconds:.1f} s -> {self.out_dir}"
        )


def espeak_version() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise BuildError("espeak-ng not found: install the Debian package 'espeak-ng'")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


@dataclass(frozen=True, slots=True)
class _Job:
    prompt_id: str
    lang: str
    text: str | None
    override: Path | None
    voice: str
    digest: str


def _digest(job_fields: dict[str, object]) -> str:
    blob = json.dumps(job_fields, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_all(
    catalog: Catalog,
    out_dir: Path,
    progress: Progress = print,
    wideband: bool = False,
    settings: BuildSettings | None = None,
    jobs: int | None = None,
) -> BuildReport:
    """Build what is missing or changed into ``out_dir``; return what was done.

    The caller names the directory (the composition root keeps the cache layout,
    ``homeline.paths.prompt_build_dir``); this package knows no Homeline paths.
    """
    started = time.monotonic()
    cfg = settings or BuildSettings(rate=16000 if wideband else 8000)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = BuildReport(out)
    manifest_path = out / _MANIFEST
    try:
        manifest: dict[str, str] = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    needs_tts = any(lang not in e.files for e in catalog.prompts.values() for lang in e.texts)
    version = espeak_version() if needs_tts else ""
    todo: list[_Job] = []
    for pid, entry in catalog.prompts.items():
        for lang in sorted(set(entry.texts) | set(entry.files)):
            override = entry.files.get(lang)
            voice = VOICES.get(lang, lang.split("_")[0])
            fields: dict[str, object] = {
                "format": _FORMAT_VERSION,
                "settings": asdict(cfg),
                "lang": lang,
            }
            if override is not None:
                fields["override"] = _file_digest(override)
            else:
                fields.update(text=entry.texts[lang], voice=voice, espeak=version)
            digest = _digest(fields)
            key = f"{lang}/{pid}"
            target = out / lang / f"{pid}.wav"
            if manifest.get(key) == digest and target.is_file():
                report.unchanged.append(key)
                continue
            todo.append(_Job(pid, lang, entry.texts.get(lang), override, voice, digest))
    wanted = {
        f"{lang}/{pid}"
        for pid, e in catalog.prompts.items()
        for lang in set(e.texts) | set(e.files)
    }
    for old in sorted(out.glob("*/*.wav")):
        key = f"{old.parent.name}/{old.stem}"
        if key not in wanted:  # dropped from the catalog: do not install it any more
            old.unlink()
            manifest.pop(key, None)
            report.removed.append(key)
    if report.removed:
        _write_manifest(manifest_path, manifest)
    if not todo:
        report.seconds = time.monotonic() - started
        progress(f"prompts: all {len(report.unchanged)} up to date in {out}")
        return report
    progress(f"prompts: building {len(todo)} of {len(todo) + len(report.unchanged)} into {out}")
    workers = jobs or max(1, min(8, os.cpu_count() or 1))
    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [(job, pool.submit(_build_one, job, out, cfg)) for job in todo]
        for job, fut in futures:
            key = f"{job.lang}/{job.prompt_id}"
            done += 1
            try:
                seconds = fut.result()
            except BuildError as exc:
                report.problems.append(
                    Problem(str(catalog.path), job.prompt_id, job.lang, str(exc), "build-failed")
                )
                progress(f"  [{done}/{len(todo)}] {key}: FAILED: {exc}")
                continue
            manifest[key] = job.digest
            report.built.append(key)
            progress(f"  [{done}/{len(todo)}] {key} ({seconds:.1f} s of audio)")
    _write_manifest(manifest_path, manifest)
    report.seconds = time.monotonic() - started
    progress(f"prompts: {report}")
    return report


def _write_manifest(path: Path, manifest: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _speak(text: str, voice: str, cfg: BuildSettings) -> tuple[np.ndarray, int]:
    import soundfile as sf

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise BuildError("espeak-ng not found: install the Debian package 'espeak-ng'")
    with tempfile.TemporaryDirectory(prefix="homeline-tts-") as tmp:
        wav = Path(tmp) / "tts.wav"
        # Text goes on stdin, never on the command line (it is admin input).
        proc = subprocess.run(
            [
                exe,
                "-v",
                voice,
                "-s",
                str(cfg.words_per_minute),
                "-p",
                str(cfg.pitch),
                "-w",
                str(wav),
                "--stdin",
            ],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0 or not wav.is_file():
            err = proc.stderr.decode("utf-8", "replace").strip() or f"exit {proc.returncode}"
            raise BuildError(f"espeak-ng -v {voice} failed: {err}")
        data, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    return data, int(rate)


def _build_one(job: _Job, out: Path, cfg: BuildSettings) -> float:
    import soundfile as sf

    if job.override is not None:
        try:
            data, rate = sf.read(str(job.override), dtype="float32", always_2d=True)
        except (RuntimeError, OSError) as exc:
            raise BuildError(f"cannot read override {job.override}: {exc}") from exc
        rate = int(rate)
    else:
        assert job.text is not None
        data, rate = _speak(job.text, job.voice, cfg)
    x = to_mono(data)
    x = resample(x, rate, cfg.rate)
    x = trim_silence(x, cfg.rate, cfg.trim_threshold_db, cfg.keep_silence_s)
    if x.size == 0:
        raise BuildError("audio is silent after trimming")
    x, _gain = normalize(x, cfg.rate, cfg.target_dbfs, cfg.peak_limit_dbfs)
    x = fade(x, cfg.rate, cfg.fade_ms)
    pcm = np.clip(np.rint(x * 32767.0), -32767, 32767).astype(np.int16)
    target = out / job.lang / f"{job.prompt_id}.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    sf.write(str(tmp), pcm, cfg.rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, target)
    return float(pcm.size / cfg.rate)
