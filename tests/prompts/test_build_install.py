"""Prompt build (espeak-ng + numpy), check and install, on a small catalog in a temp dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from prompts.audio import active_level_dbfs
from prompts.build import BuildSettings, build_all
from prompts.catalog import load_catalog
from prompts.check import check_prompts
from prompts.install import install

pytestmark = [
    pytest.mark.espeak,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed"),
]

CATALOG = """\
welcome:
  en: "Thank you for calling."
  es: "Gracias por llamar."
  fr: "Merci de votre appel."
menu:
  en: "For billing, press 1."
  es: "Para facturación, pulse 1."
  fr: "Pour la facturation, appuyez sur 1."
"""


@pytest.fixture()
def catalog_path(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    return path


def test_build_formats_trims_normalizes_and_rebuilds_only_changes(
    tmp_path: Path, catalog_path: Path
) -> None:
    out = tmp_path / "build"
    lines: list[str] = []
    report = build_all(load_catalog(catalog_path), out, progress=lines.append)
    assert report.ok and sorted(report.built) == sorted(
        f"{lang}/{pid}" for lang in ("en", "es", "fr") for pid in ("welcome", "menu")
    )
    assert any("[6/6]" in line for line in lines)  # per-prompt progress
    cfg = BuildSettings()
    for wav in out.glob("*/*.wav"):
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
        pcm, _ = sf.read(str(wav), dtype="int16")
        assert np.max(np.abs(pcm.astype(np.int32))) < 32767  # no clipping
        assert abs(pcm[0]) < 200 and abs(pcm[-1]) < 200  # faded edges
        level = active_level_dbfs(pcm.astype(np.float32) / 32768, 8000)
        assert abs(level - cfg.target_dbfs) <= 1.0
        lead = np.flatnonzero(np.abs(pcm) > 50)[0] / 8000
        assert lead < 0.1  # leading silence trimmed
    assert check_prompts(load_catalog(catalog_path), out) == []

    # Nothing changed: no work at all.
    again = build_all(load_catalog(catalog_path), out, progress=lines.append)
    assert again.built == [] and len(again.unchanged) == 6
    # One text changed: only that file is rebuilt.
    catalog_path.write_text(
        CATALOG.replace("Gracias por llamar.", "Gracias por su llamada."), encoding="utf-8"
    )
    third = build_all(load_catalog(catalog_path), out, progress=lines.append)
    assert third.built == ["es/welcome"]
    # A prompt dropped from the catalog is removed from the build (so not installed).
    catalog_path.write_text(CATALOG.split("menu:")[0], encoding="utf-8")
    fourth = build_all(load_catalog(catalog_path), out, progress=lines.append)
    assert sorted(fourth.removed) == ["en/menu", "es/menu", "fr/menu"]
    assert sorted(p.name for p in out.glob("*/*.wav")) == ["welcome.wav"] * 3


def test_wideband_build_is_16k(tmp_path: Path, catalog_path: Path) -> None:
    report = build_all(
        load_catalog(catalog_path), tmp_path / "wb", progress=lambda _m: None, wideband=True
    )
    assert report.ok
    assert {sf.info(str(p)).samplerate for p in (tmp_path / "wb").glob("*/*.wav")} == {16000}


def test_check_reports_every_problem_with_id_and_language(
    tmp_path: Path, catalog_path: Path
) -> None:
    out = tmp_path / "build"
    build_all(load_catalog(catalog_path), out, progress=lambda _m: None)
    # Break three files in three ways, and drop a translation from the catalog.
    sf.write(str(out / "en" / "menu.wav"), np.zeros(8000, np.int16), 8000, subtype="PCM_16")
    loud = np.clip(np.sin(np.arange(8000) * 0.3) * 40000, -32768, 32767).astype(np.int16)
    sf.write(str(out / "es" / "menu.wav"), loud, 8000, subtype="PCM_16")
    tone = (np.sin(np.arange(16000) * 0.2) * 3000).astype(np.int16)
    sf.write(str(out / "fr" / "welcome.wav"), np.stack([tone, tone], 1), 16000, subtype="PCM_16")
    catalog_path.write_text(
        CATALOG.replace('  fr: "Pour la facturation, appuyez sur 1."\n', ""), encoding="utf-8"
    )
    problems = check_prompts(load_catalog(catalog_path), out)
    found = {(p.node, p.key, p.code) for p in problems}
    assert ("menu", "fr", "missing-translation") in found
    assert ("menu", "en", "silent") in found
    assert ("menu", "es", "clipping") in found
    assert ("welcome", "fr", "sample-rate") in found and ("welcome", "fr", "channels") in found
    assert all(str(p).startswith(f"{out}/") or p.code == "missing-translation" for p in problems)


def test_install_layout_follows_asterisk_language_lookup(
    tmp_path: Path, catalog_path: Path
) -> None:
    out = tmp_path / "build"
    build_all(load_catalog(catalog_path), out, progress=lambda _m: None)
    sounds = tmp_path / "sounds"
    (sounds / "en" / "homeline").mkdir(parents=True)
    (sounds / "en" / "homeline" / "retired.wav").write_bytes(b"old")
    (sounds / "en" / "demo-congrats.wav").write_bytes(b"asterisk's own")
    report = install(sounds, out)
    assert len(report.copied) == 6 and report.removed == ["en/homeline/retired.wav"]
    for lang in ("en", "es", "fr"):
        for pid in ("welcome", "menu"):
            dest = sounds / lang / "homeline" / f"{pid}.wav"
            assert dest.read_bytes() == (out / lang / f"{pid}.wav").read_bytes()
    assert (sounds / "en" / "demo-congrats.wav").read_bytes() == b"asterisk's own"
    assert len(install(sounds, out).unchanged) == 6


def test_cli_build_check_install(tmp_path: Path, catalog_path: Path) -> None:
    env = dict(os.environ, HOMELINE_CACHE=str(tmp_path / "cache"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "homeline", "prompts", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    b = run("build", "--catalog", str(catalog_path))
    assert b.returncode == 0, b.stderr
    assert "6 built, 0 unchanged, 0 failed" in b.stdout
    assert (tmp_path / "cache" / "prompts" / "8k" / "fr" / "menu.wav").is_file()
    again = run("build", "--catalog", str(catalog_path))
    assert "all 6 up to date" in again.stdout
    c = run("check", "--catalog", str(catalog_path))
    assert c.returncode == 0 and "0 problem(s)" in c.stdout, c.stdout
    i = run("install", "--catalog", str(catalog_path), "--sounds-dir", str(tmp_path / "snd"))
    assert i.returncode == 0 and "6 copied" in i.stdout, i.stderr
    assert (tmp_path / "snd" / "es" / "homeline" / "welcome.wav").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text("x:\n  en: ''\n", encoding="utf-8")
    e = run("build", "--catalog", str(bad))
    assert e.returncode == 1 and f"{bad}:x:en: text must be a non-empty string" in e.stderr


def test_wideband_installs_as_wav16_beside_narrowband(tmp_path: Path, catalog_path: Path) -> None:
    cat = load_catalog(catalog_path)
    build_all(cat, tmp_path / "nb", progress=lambda _m: None)
    build_all(cat, tmp_path / "wb", progress=lambda _m: None, wideband=True)
    sounds = tmp_path / "sounds"
    install(sounds, tmp_path / "nb")
    report = install(sounds, tmp_path / "wb")
    assert report.removed == [] and len(report.copied) == 6
    menu = sounds / "fr" / "homeline"
    assert sf.info(str(menu / "menu.wav")).samplerate == 8000
    assert sf.info(str(menu / "menu.wav16")).samplerate == 16000
