"""Tests for the offline real-audio corpus builder (synthetic containers; no Debian package needed).

The builder is demo tooling outside the package (``examples/real_audio_corpus/``), so it is loaded by path.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import random
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundlm.processing.audio_io import AudioInputError

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "real_audio_corpus" / "build_real_audio_corpus.py"


def _load_builder():
    name = "build_real_audio_corpus"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


builder = _load_builder()
MissingAudioPackagesError = builder.MissingAudioPackagesError
Note = builder.Note
SystemPaths = builder.SystemPaths
_vlq = builder._vlq
assign_splits = builder.assign_splits
build_corpus = builder.build_corpus
midi_bytes = builder.midi_bytes
opensfx_license = builder.opensfx_license
random_melody = builder.random_melody
read_mono = builder.read_mono
read_opensfx_cat = builder.read_opensfx_cat
read_qt_rcc = builder.read_qt_rcc
split_rows = builder.split_rows
window_bounds = builder.window_bounds

# --------------------------------------------------------------------------------------------------
# Tiny writers for the two container formats
# --------------------------------------------------------------------------------------------------


def _rcc_bytes(version: int, tree: dict) -> bytes:
    """A Qt .rcc: ``tree`` maps names to sub-dicts (directories) or ``(bytes, compress)`` (files)."""
    names = bytearray()
    name_offsets: dict[str, int] = {}

    def name_offset(name: str) -> int:
        if name not in name_offsets:
            name_offsets[name] = len(names)
            names.extend(struct.pack(">HI", len(name), 0x1234ABCD) + name.encode("utf-16-be"))
        return name_offsets[name]

    order: list[tuple[str, object]] = [("", tree)]  # breadth-first, children of a dir contiguous
    first_child: dict[int, int] = {}
    i = 0
    while i < len(order):
        spec = order[i][1]
        if isinstance(spec, dict):
            first_child[i] = len(order)
            order.extend((child, spec[child]) for child in sorted(spec))
        i += 1
    data = bytearray()
    nodes = bytearray()
    for idx, (name, spec) in enumerate(order):
        noff = name_offset(name) if idx else 0
        if isinstance(spec, dict):
            nodes += struct.pack(">IHII", noff, 0x02, len(spec), first_child[idx])
        else:
            raw, compress = spec
            payload = struct.pack(">I", len(raw)) + zlib.compress(raw) if compress else raw
            nodes += struct.pack(">IHHHI", noff, 0x01 if compress else 0x00, 0, 0, len(data))
            data += struct.pack(">I", len(payload)) + payload
        if version >= 2:
            nodes += struct.pack(">Q", 1_700_000_000_000)  # last-modified (ms)
    header_len = 4 + 16 + (4 if version >= 3 else 0)
    data_off = header_len
    names_off = data_off + len(data)
    tree_off = names_off + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 0)  # overall flags
    return header + bytes(data) + bytes(names) + bytes(nodes)


def _wav_bytes(x: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _ogg_bytes(x: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="OGG", subtype="VORBIS")
    return buf.getvalue()


def _cat_bytes(entries: list[tuple[str, bytes]]) -> bytes:
    """An OpenSFX .cat: (offset | 0x80000000, size) table, then length byte + title + NUL + WAV."""
    table_len = 8 * len(entries)
    table, body = bytearray(), bytearray()
    for title, wav in entries:
        raw_title = title.encode() + b"\0"
        table += struct.pack("<II", (table_len + len(body)) | 0x80000000, len(wav))
        body += bytes([len(raw_title)]) + raw_title + wav
    return bytes(table) + bytes(body)


def _tone(seconds: float, sr: int, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(seed).normal(0.0, 0.05, t.size)
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Parsers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2, 3])
def test_read_qt_rcc_paths_and_bytes(tmp_path: Path, version: int) -> None:
    raw = b"plain bytes \x00\x01\x02" * 3
    packed = bytes(range(256)) * 40
    tree = {
        "top.txt": (b"hello", False),
        "sounds": {"raw.bin": (raw, False), "zipped.ogg": (packed, True), "deeper": {"x.txt": (b"x", True)}},
    }
    path = tmp_path / f"v{version}.rcc"
    path.write_bytes(_rcc_bytes(version, tree))
    assert read_qt_rcc(path) == {
        "top.txt": b"hello",
        "sounds/raw.bin": raw,
        "sounds/zipped.ogg": packed,
        "sounds/deeper/x.txt": b"x",
    }


def test_read_qt_rcc_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rcc"
    bad.write_bytes(b"NOPE" + b"\0" * 40)
    with pytest.raises(ValueError, match="qres"):
        read_qt_rcc(bad)
    wrong_version = tmp_path / "v9.rcc"
    wrong_version.write_bytes(b"qres" + struct.pack(">IIII", 9, 20, 20, 20) + b"\0" * 8)
    with pytest.raises(ValueError, match="version 9"):
        read_qt_rcc(wrong_version)


def test_read_opensfx_cat_titles_and_wavs(tmp_path: Path) -> None:
    wav_a = _wav_bytes(_tone(0.5, 22050), 22050)
    wav_b = _wav_bytes(_tone(0.8, 44100, 220.0), 44100)
    titles = [
        '"Cow". Original "moo.wav" by "someone". License: Creative Commons Zero 1.0.',
        '"Ship horn". By Someone Else. License: Creative Commons Attribution 3.0 Unported.',
    ]
    path = tmp_path / "opensfx.cat"
    path.write_bytes(_cat_bytes(list(zip(titles, [wav_a, wav_b]))))
    entries = read_opensfx_cat(path)
    assert entries == [(titles[0], wav_a), (titles[1], wav_b)]
    x, sr = read_mono(entries[1][1])
    assert sr == 44100 and x.shape == (int(0.8 * 44100),) and x.dtype == np.float32
    assert opensfx_license(titles[0]).startswith('CC0-1.0; Original "moo.wav" by "someone".')
    assert opensfx_license(titles[1]) == "CC-BY-3.0; By Someone Else."


def test_read_opensfx_cat_rejects_truncated(tmp_path: Path) -> None:
    path = tmp_path / "opensfx.cat"
    blob = _cat_bytes([("x", _wav_bytes(_tone(0.2, 8000), 8000))])
    path.write_bytes(blob[:-10])
    with pytest.raises(ValueError, match="past the end"):
        read_opensfx_cat(path)


# --------------------------------------------------------------------------------------------------
# MIDI writer
# --------------------------------------------------------------------------------------------------


def _read_vlq(buf: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        byte = buf[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos
    raise AssertionError("VLQ longer than 4 bytes")


def test_vlq_known_values() -> None:
    assert _vlq(0) == b"\x00"
    assert _vlq(0x7F) == b"\x7f"
    assert _vlq(0x80) == b"\x81\x00"
    assert _vlq(0x3FFF) == b"\xff\x7f"
    assert _vlq(0x200000) == b"\x81\x80\x80\x00"
    with pytest.raises(ValueError):
        _vlq(-1)


def test_midi_bytes_header_and_track_are_valid() -> None:
    notes = random_melody(random.Random(3), 55, 88)
    blob = midi_bytes(notes, program=40, ticks_per_beat=480)
    assert blob[:4] == b"MThd"
    assert struct.unpack(">IHHH", blob[4:14]) == (6, 0, 1, 480)
    assert blob[14:18] == b"MTrk"
    (track_len,) = struct.unpack(">I", blob[18:22])
    track = blob[22:]
    assert len(track) == track_len
    assert track[-3:] == b"\xff\x2f\x00"
    pos, ons, offs, programs, tempo = 0, 0, 0, [], None
    while pos < len(track):
        _delta, pos = _read_vlq(track, pos)
        status = track[pos]
        if status == 0xFF:
            kind, (length, after) = track[pos + 1], _read_vlq(track, pos + 2)
            if kind == 0x51:
                tempo = int.from_bytes(track[after : after + length], "big")
            pos = after + length
        elif status & 0xF0 == 0xC0:
            programs.append(track[pos + 1])
            pos += 2
        elif status & 0xF0 in (0x80, 0x90):
            assert track[pos + 1] < 128 and track[pos + 2] < 128
            ons += status & 0xF0 == 0x90
            offs += status & 0xF0 == 0x80
            pos += 3
        else:
            raise AssertionError(f"unexpected status byte {status:#x} at {pos}")
    assert pos == len(track)
    assert programs == [40] and tempo == 500_000
    assert ons == offs == len(notes)


def test_random_melody_is_seeded_and_in_range() -> None:
    a = random_melody(random.Random(7), 48, 72)
    assert a == random_melody(random.Random(7), 48, 72)
    assert a != random_melody(random.Random(8), 48, 72)
    assert all(48 <= n.pitch <= 72 for n in a)
    end = max(n.start_s + n.duration_s for n in a)
    assert 3.5 <= end <= 6.0
    with pytest.raises(ValueError):
        midi_bytes([Note(200, 0.0, 1.0)], program=0)


def test_fluidsynth_renders_non_silent_audio(tmp_path: Path) -> None:
    soundfont = SystemPaths().soundfont
    if shutil.which("fluidsynth") is None:
        pytest.skip("missing fluidsynth program (apt-get install fluidsynth)")
    if not soundfont.is_file():
        pytest.skip(f"missing {soundfont} (apt-get install fluid-soundfont-gm)")
    mid, wav = tmp_path / "in.mid", tmp_path / "out.wav"
    mid.write_bytes(midi_bytes([Note(60, 0.0, 0.5), Note(64, 0.5, 0.5)], program=0, tail_s=0.3))
    subprocess.run(
        ["fluidsynth", "-ni", "-q", "-r", "44100", "-F", str(wav), str(soundfont), str(mid)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    x, sr = sf.read(wav, always_2d=True)
    assert sr == 44100 and x.shape[0] > 0.8 * sr
    assert float(np.sqrt(np.mean(x**2))) > 1e-3


# --------------------------------------------------------------------------------------------------
# Windows and split
# --------------------------------------------------------------------------------------------------


def test_window_bounds() -> None:
    sr = 1000
    assert window_bounds(5 * sr, sr) == [(0, 5000)]
    three = window_bounds(25 * sr, sr)
    assert len(three) == 3 and all(b - a <= 10 * sr for a, b in three)
    spread = window_bounds(61 * sr, sr)
    assert len(spread) == 3 and spread[0][0] == 0 and spread[-1][1] == 61 * sr
    assert all(b - a <= 10 * sr for a, b in spread)


def _split_fixture() -> list[dict[str, object]]:
    """Rows, several windows per source; world_music has only single-source labels."""
    rows: list[dict[str, object]] = []
    layout = {
        ("instrument", "violin"): 6,
        ("instrument", "gong"): 1,
        ("speech", "english"): 2,
        ("speech", "german"): 3,
        ("environmental", "dog"): 2,
        ("world_music", "taiko"): 1,
        ("world_music", "opera"): 1,
    }
    for (category, label), n_sources in layout.items():
        for s in range(n_sources):
            for w in range(1 + s % 3):
                rows.append({"source_id": f"{label}-{s}", "category": category, "label": label, "w": w})
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_split_is_per_source_and_covers_categories(seed: int) -> None:
    rows = _split_fixture()
    splits = split_rows(rows, seed=seed)
    assert splits == split_rows(rows, seed=seed)  # deterministic
    per_source: dict[str, set[str]] = defaultdict(set)
    per_label: dict[str, set[str]] = defaultdict(set)
    for row, split in zip(rows, splits):
        per_source[str(row["source_id"])].add(split)
        per_label[str(row["label"])].add(split)
    assert all(len(s) == 1 for s in per_source.values()), "a source has windows on both sides"
    test_categories = {row["category"] for row, split in zip(rows, splits) if split == "test"}
    assert test_categories == {"instrument", "speech", "environmental"}  # the multi-source categories
    assert per_label["gong"] == per_label["taiko"] == per_label["opera"] == {"train"}
    assert all("train" in s for s in per_label.values()), "a label lost all its train sources"
    n_test = sum(s == {"test"} for s in per_source.values())
    assert 2 <= n_test <= 6  # about 20% of 16 sources, at least one per multi-source category


def test_assign_splits_validates_fraction() -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        assign_splits({"a": ("speech", "x")}, test_fraction=1.0)
    assert set(assign_splits({"a": ("speech", "x"), "b": ("speech", "x")}, test_fraction=0.0).values()) == {
        "train"
    }


# --------------------------------------------------------------------------------------------------
# Builder (on synthetic package files)
# --------------------------------------------------------------------------------------------------


def _missing_paths(tmp_path: Path) -> SystemPaths:
    nowhere = tmp_path / "nowhere"
    return SystemPaths(
        gcompris_rcc_dir=nowhere / "rcc",
        opensfx_cat=nowhere / "opensfx.cat",
        lmms_samples_dir=nowhere / "lmms",
        soundfont=nowhere / "gm.sf2",
        asterisk_dir=nowhere / "asterisk",
        asterisk_transcripts=nowhere / "core-sounds-en.txt.gz",
        alsa_dir=nowhere / "alsa",
        doc_dir=nowhere / "doc",
        fluidsynth="no-such-fluidsynth-binary",
        espeak="no-such-espeak-binary",
    )


def test_build_corpus_without_packages_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(MissingAudioPackagesError, match="apt-get install .*gcompris-qt-data"):
        build_corpus(tmp_path / "out", paths=_missing_paths(tmp_path))


def test_build_corpus_on_synthetic_packages(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    base = _missing_paths(tmp_path)
    rcc_dir = tmp_path / "rcc"
    rcc_dir.mkdir()
    animals = {
        "dog.ogg": (_ogg_bytes(_tone(1.5, 44100, 500.0, seed=1), 44100), False),
        "cow.ogg": (_ogg_bytes(_tone(12.5, 22050, 150.0, seed=2), 22050), True),  # 2 windows
        "cow.svg": (b"<svg/>", False),
    }
    tree = {"gcompris": {"src": {"activities": {"explore_farm_animals": {"resource": {"animals": animals}}}}}}
    (rcc_dir / "explore_farm_animals.rcc").write_bytes(_rcc_bytes(3, tree))
    cat = tmp_path / "opensfx.cat"
    cat.write_bytes(
        _cat_bytes(
            [
                (
                    '"Cow". Original "moo.wav" by "x". License: Creative Commons Zero 1.0.',
                    _wav_bytes(_tone(2.0, 44100, 120.0, 3), 44100),
                ),
                (
                    '"Unused/Nothing". Trivial empty sound file. License: Creative Commons Zero 1.0.',
                    _wav_bytes(np.zeros(0, np.float32), 44100),
                ),
                (
                    '"Horse". By y. License: Creative Commons Attribution 3.0 Unported.',
                    _wav_bytes(_tone(0.2, 44100, 300.0, 4), 44100),
                ),
                (  # a RIFF header and then garbage: no decoder reads it, so it is skipped and logged
                    '"Sheep". By z. License: Creative Commons Zero 1.0.',
                    b"RIFF" + struct.pack("<I", 200) + b"WAVEjunk" + bytes(range(200)),
                ),
            ]
        )
    )
    paths = SystemPaths(**{**base.__dict__, "gcompris_rcc_dir": rcc_dir, "opensfx_cat": cat})
    out = tmp_path / "corpus"
    with caplog.at_level(logging.INFO, logger=builder.logger.name):
        manifest = build_corpus(out, paths=paths, sources=("gcompris", "opensfx", "lmms"))
    decode_warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "does not decode" in r.message]
    assert len(decode_warnings) == 1 and "opensfx.cat#03 Sheep" in decode_warnings[0].message
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_path = {row["path"]: row for row in rows}
    assert sorted(by_path) == [
        "audio/environmental/cow/gcompris_explore_farm_animals-cow_w0.wav",
        "audio/environmental/cow/gcompris_explore_farm_animals-cow_w1.wav",
        "audio/environmental/cow/opensfx-00_cow.wav",
        "audio/environmental/dog/gcompris_explore_farm_animals-dog.wav",
    ]
    for row in rows:
        x, sr = sf.read(out / row["path"])
        assert sr == 44100 and x.ndim == 1 and 0.3 <= x.size / sr <= 10.0
        assert abs(float(row["duration_s"]) - x.size / sr) < 1e-3
        assert row["split"] in ("train", "test") and row["sample_rate"] == "44100"
    assert (
        by_path["audio/environmental/dog/gcompris_explore_farm_animals-dog.wav"]["caption"] == "a dog barking"
    )
    assert by_path["audio/environmental/cow/opensfx-00_cow.wav"]["license"].startswith("CC0-1.0")
    cow_windows = [r["split"] for r in rows if r["source_id"] == "gcompris_explore_farm_animals-cow"]
    assert len(set(cow_windows)) == 1
    summary = (out / "corpus_summary.json").read_text()
    assert "lmms-common" in summary  # the missing package is named
    assert "shorter than 0.3 s" in summary  # the 0.2 s horse
    skipped = {s["source"]: s["reason"] for s in json.loads(summary)["skipped"]}
    sheep = skipped["openttd-opensfx:opensfx.cat#03 Sheep"]
    assert sheep.startswith("does not decode: ") and "\n" not in sheep and len(sheep) <= 320
    assert json.loads(summary)["skipped_reasons"]["does not decode"] == 1
    first = manifest.read_bytes()
    (out / "audio" / "environmental" / "stale.wav").write_bytes(b"")
    build_corpus(out, paths=paths, sources=("gcompris", "opensfx", "lmms"))
    assert manifest.read_bytes() == first
    assert not (out / "audio" / "environmental" / "stale.wav").exists()


def test_read_mono_downmixes_and_keeps_the_file_rate(tmp_path: Path) -> None:
    left, right = _tone(0.5, 22050, 300.0, 1), _tone(0.5, 22050, 500.0, 2)
    stereo = np.stack([left, right], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 22050, subtype="FLOAT")
    for source in (path, str(path), path.read_bytes()):
        x, sr = read_mono(source)
        assert sr == 22050 and x.shape == (left.size,) and x.dtype == np.float32
        np.testing.assert_allclose(x, (left + right) / 2, atol=1e-7)
    y = builder.to_target_rate(x, sr)
    assert y.dtype == np.float32 and y.shape == (round(left.size * 44100 / 22050),)
    assert builder.to_target_rate(y, 44100) is y


def test_read_mono_falls_back_to_torchcodec_and_reports_failures(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="soundfile") as info:
        read_mono(b"this is not audio at all" * 10)
    assert info.value.category == "unreadable"
    with pytest.raises(AudioInputError, match="no such file"):
        read_mono(tmp_path / "missing.wav")
    if shutil.which("ffmpeg") is None:
        pytest.skip("missing ffmpeg program (apt-get install ffmpeg): cannot make the AC-3 test file")
    pytest.importorskip("torchcodec", reason="torchcodec (pip install 'soundlm[audio]') is the fallback decoder")
    ac3 = subprocess.run(  # AC-3 is a codec that libsndfile cannot read but FFmpeg (torchcodec) can
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=0.5",
            "-f",
            "ac3",
            "pipe:1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    with pytest.raises(sf.LibsndfileError):
        sf.info(io.BytesIO(ac3))
    x, sr = read_mono(ac3)
    assert sr == 44100 and x.ndim == 1 and x.dtype == np.float32 and 0.4 < x.size / sr < 0.7
    assert float(np.sqrt(np.mean(x**2))) > 0.01


# --------------------------------------------------------------------------------------------------
# Tables (sources.json)
# --------------------------------------------------------------------------------------------------


def test_sources_json_tables_load_with_the_fields_the_code_uses() -> None:
    raw = json.loads(builder.SOURCES_JSON.read_text(encoding="utf-8"))
    assert builder.SOURCES_JSON.parent == SCRIPT.parent
    assert set(raw) == {"_comment", *builder.TABLE_FIELDS}, "a table is missing, or one that no code reads"
    for name, fields in builder.TABLE_FIELDS.items():
        table = raw[name]
        assert set(table) == {"_comment", "entries"} and table["_comment"].strip(), name
        entries = table["entries"]
        assert isinstance(entries, dict if name in builder.KEYED_TABLES else list) and entries, name
        for entry in entries.values() if isinstance(entries, dict) else entries:
            assert set(entry) == set(fields), (name, entry)  # every field the code reads, and no other

    tables = builder.load_tables()
    assert tables["farm_animals"] == builder._FARM_ANIMALS and tables["lmms"] == builder._LMMS
    categories = set(builder.CATEGORIES)
    for name in ("farm_animals", "gcompris_instruments", "world_music", "opensfx"):
        for key, (label, caption) in tables[name].items():
            assert key and re.fullmatch(r"[a-z0-9_]+", label) and caption, (name, key)
    for pattern, category, label, caption, group in tables["memory_sound"]:
        re.compile(pattern)
        assert category in categories and re.fullmatch(r"[a-z0-9_]+", label) and caption and group
    for rcc, pattern, lic in tables["gcompris_fallback_licenses"]:
        re.compile(pattern)
        assert rcc in ("explore_farm_animals", "instruments", "explore_world_music", "memory-sound") and lic
    for pattern, spdx in tables["cc_license_names"]:
        assert re.compile(pattern) and spdx.startswith("CC")
    lmms_folders = {"instruments", "drums", "beats", "latin", "misc", "effects", "stringsnpads"}
    for folder, pattern, category, label, caption in tables["lmms"]:
        re.compile(pattern)
        assert folder in lmms_folders and category in categories and re.fullmatch(r"[a-z0-9_]+", label) and caption
    for label, (program, low, high, noun) in tables["fluidsynth_instruments"].items():
        assert re.fullmatch(r"[a-z0-9_]+", label) and 0 <= program <= 127 and noun
        assert 0 <= low and high <= 127 and high - low >= 12  # random_melody needs an octave
        random_melody(random.Random(0), low, high)
    for voice, gender, lang, language, text in tables["espeak_sentences"]:
        assert voice.startswith(f"{lang}+") and gender in ("female", "male") and language and text
    for stem, (category, label, caption) in tables["alsa_sounds"].items():
        assert stem == stem.lower() and category in categories and label and caption


def test_load_tables_names_a_bad_entry(tmp_path: Path) -> None:
    raw = json.loads(builder.SOURCES_JSON.read_text(encoding="utf-8"))
    del raw["lmms"]["entries"][2]["caption"]
    bad = tmp_path / "sources.json"
    bad.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ValueError, match=r"lmms\[2\] lacks field\(s\) \['caption'\]"):
        builder.load_tables(bad)
    raw = json.loads(builder.SOURCES_JSON.read_text(encoding="utf-8"))
    raw["fluidsynth_instruments"]["entries"]["piano"]["program"] = "0"
    bad.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ValueError, match=r"fluidsynth_instruments\['piano'\]\.program must be an integer"):
        builder.load_tables(bad)
    raw = json.loads(builder.SOURCES_JSON.read_text(encoding="utf-8"))
    del raw["espeak_sentences"]
    bad.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ValueError, match="'espeak_sentences' is missing"):
        builder.load_tables(bad)
