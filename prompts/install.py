"""Install built prompts where Asterisk looks them up per channel language.

Asterisk splits ``CHANNEL(language)`` at underscores and tries
``<sounds>/<lang>/<file>`` from the most to the least specific language, then
``<sounds>/<file>`` (docs.asterisk.org, Deployment > Internationalization and
Localization > "Sound Prompt Searching based on Channel Language"). So
``STREAM FILE homeline/<id>`` with ``CHANNEL(language)=fr`` plays
``<sounds>/fr/homeline/<id>.wav``.

Asterisk's ``format_wav`` reads ``.wav`` as 8 kHz 16-bit mono and registers
16 kHz WAV as the separate format ``wav16`` with the extension ``.wav16``
(formats/format_wav.c), so wideband prompts are installed as ``<id>.wav16``;
both can sit side by side and Asterisk picks the cheaper one for the call.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from prompts.catalog import PromptsError

__all__ = ["InstallError", "InstallReport", "install", "SUBDIR"]

SUBDIR = "homeline"


class InstallError(PromptsError):
    """Nothing to install, or the sounds directory cannot be written."""


@dataclass(slots=True)
class InstallReport:
    sounds_dir: Path
    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{len(self.copied)} copied, {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} stale removed under {self.sounds_dir}/<lang>/{SUBDIR}/"
        )


def install(
    sounds_dir: Path,
    build_dir: Path,
    wideband: bool = False,
    owner: tuple[int, int] | None = None,
) -> InstallReport:
    """Copy ``<build_dir>/<lang>/<id>.wav`` to ``<sounds_dir>/<lang>/homeline/<id>.wav``
    (``.wav16`` for a 16 kHz build).

    Files whose bytes already match are left alone; installed prompts that no
    longer exist in the build are removed (only inside ``homeline/``).
    ``owner`` (uid, gid) chowns what is written, e.g. to the Asterisk user.
    """
    src_root = Path(build_dir)
    sources = sorted(src_root.glob("*/*.wav"))
    if not sources:
        raise InstallError(f"{src_root}: no built prompts (run `homeline prompts build` first)")
    dest_root = Path(sounds_dir)
    if not dest_root.parent.is_dir():
        # Never create a half Asterisk tree where a sandbox root should be.
        raise InstallError(
            f"{dest_root}: no such directory's parent (is Asterisk installed there?)"
        )
    report = InstallReport(dest_root)
    wanted: set[Path] = set()
    import soundfile as sf

    ext = ".wav"
    for src in sources:
        lang = src.parent.name
        ext = ".wav16" if sf.info(str(src)).samplerate == 16000 else ".wav"
        dest = dest_root / lang / SUBDIR / (src.stem + ext)
        wanted.add(dest.resolve())
        key = f"{lang}/{SUBDIR}/{dest.name}"
        if (
            dest.is_file()
            and dest.stat().st_size == src.stat().st_size
            and (dest.read_bytes() == src.read_bytes())
        ):
            report.unchanged.append(key)
            continue
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o644)
            if owner is not None:
                os.chown(tmp, *owner)
                os.chown(dest.parent, *owner)
            os.replace(tmp, dest)
        except OSError as exc:
            raise InstallError(f"{dest}: cannot install: {exc.strerror}") from exc
        report.copied.append(key)
    # sounds/<lang> may be a link to a voice directory beside it (sounds/en ->
    # en_US_f_Allison): the same file is then seen twice, so compare resolved paths
    for stale in sorted(dest_root.glob(f"*/{SUBDIR}/*{ext}")):
        if stale.resolve() not in wanted and stale.exists():
            stale.unlink()
            report.removed.append(str(stale.relative_to(dest_root)))
    return report
