"""Build a small labelled corpus of real audio, offline, from Debian packages.

The sources are recordings shipped by Debian packages (GCompris, OpenTTD OpenSFX, LMMS, Asterisk,
alsa-utils) plus audio rendered locally with FluidSynth (General MIDI soundfont) and espeak-ng.
Every clip is resampled to 44.1 kHz mono, cut into windows of at most 10 s (at most 3 windows per
recording), and listed in ``manifest.csv`` with a category, a label, a one-line caption, its
source and licence, and a train/test split that is made per *source recording*, never per window.

This is demo tooling, not part of the ``soundlm`` package. Which sounds are taken, with what label and
caption, is data: the tables in ``sources.json`` beside this script (loaded once, at import). Audio is
read with ``soundlm.processing.audio_io`` (soundfile, with torchcodec/FFmpeg as the fallback decoder).

Run it as a script from the repository root::

    python examples/real_audio_corpus/build_real_audio_corpus.py --out work/corpus

or load it by path (the folder is not a package)::

    import importlib.util, sys
    spec = importlib.util.spec_from_file_location(
        "build_real_audio_corpus", "examples/real_audio_corpus/build_real_audio_corpus.py"
    )
    builder = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = builder  # its dataclasses look their module up
    spec.loader.exec_module(builder)
    manifest_path = builder.build_corpus("work/corpus", seed=0)

Limits of the result: many labels have only 1 to 3 source recordings; the Asterisk speech is 8 kHz
telephone-band audio (nothing above 4 kHz); the espeak-ng speech is synthetic; the FluidSynth clips
are sampled instruments playing random melodies. It shows that code runs on real sound at small
scale; it is not a benchmark.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import logging
import math
import random
import re
import shutil
import struct
import subprocess
import tempfile
import time
import unicodedata
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from soundlm.processing.audio_io import AudioInputError, load_audio, resample, to_channels

logger = logging.getLogger(__name__)

TARGET_SR = 44100
"""Sample rate of every output clip (Hz)."""
MAX_WINDOW_S = 10.0
"""Longest output clip (s); longer recordings are cut into windows."""
MIN_CLIP_S = 0.3
"""Shortest output clip (s); shorter recordings are dropped."""
MAX_WINDOWS_PER_SOURCE = 3
"""At most this many windows are kept from one recording."""
SILENCE_RMS = 1e-4
"""A clip whose RMS (full scale = 1.0) is below this is treated as silent and dropped."""
CATEGORIES = ("speech", "instrument", "world_music", "environmental")
MANIFEST_COLUMNS = (
    "path",
    "category",
    "label",
    "caption",
    "source",
    "source_id",
    "license",
    "duration_s",
    "sample_rate",
    "split",
)
ALL_SOURCES = ("gcompris", "opensfx", "lmms", "fluidsynth", "espeak", "asterisk", "alsa")
APT_PACKAGES = (
    "gcompris-qt-data",
    "openttd-opensfx",
    "lmms-common",
    "fluidsynth",
    "fluid-soundfont-gm",
    "espeak-ng",
    "asterisk-core-sounds-en-wav",
    "alsa-utils",
    "ffmpeg",
)
_SUBPROCESS_TIMEOUT_S = 120


class MissingAudioPackagesError(RuntimeError):
    """Raised when none of the Debian packages that the corpus is built from is installed."""


class _PackageMissing(Exception):
    """A source's package (or one of its files) is not installed; the source is skipped."""

    def __init__(self, package: str, what: str) -> None:
        super().__init__(f"{package} is not installed (missing {what})")
        self.package = package


@dataclass(frozen=True)
class SystemPaths:
    """Where the Debian packages put their files (defaults: Debian 12 paths)."""

    gcompris_rcc_dir: Path = Path("/usr/share/gcompris-qt/rcc")
    opensfx_cat: Path = Path("/usr/share/games/openttd/baseset/opensfx/opensfx.cat")
    lmms_samples_dir: Path = Path("/usr/share/lmms/samples")
    soundfont: Path = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    asterisk_dir: Path = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
    asterisk_transcripts: Path = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
    alsa_dir: Path = Path("/usr/share/sounds/alsa")
    doc_dir: Path = Path("/usr/share/doc")
    fluidsynth: str = "fluidsynth"
    espeak: str = "espeak-ng"


# --------------------------------------------------------------------------------------------------
# Tables (sources.json)
# --------------------------------------------------------------------------------------------------

SOURCES_JSON = Path(__file__).resolve().with_name("sources.json")
"""The hand-written tables (which sounds, labels, captions, regexes, sentences), beside this script."""

# Table in sources.json -> the fields every entry must have, in the order of the tuples the code uses.
TABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "farm_animals": ("label", "caption"),
    "gcompris_instruments": ("label", "caption"),
    "world_music": ("label", "caption"),
    "memory_sound": ("pattern", "category", "label", "caption", "group"),
    "gcompris_fallback_licenses": ("rcc", "pattern", "license"),
    "opensfx": ("label", "caption"),
    "cc_license_names": ("pattern", "spdx"),
    "lmms": ("folder", "pattern", "category", "label", "caption"),
    "fluidsynth_instruments": ("program", "low", "high", "noun"),
    "espeak_sentences": ("voice", "gender", "lang", "language", "text"),
    "alsa_sounds": ("category", "label", "caption"),
}
KEYED_TABLES = frozenset(
    {"farm_animals", "gcompris_instruments", "world_music", "opensfx", "fluidsynth_instruments", "alsa_sounds"}
)
"""Tables whose entries are an object keyed by file stem, title or label; the others are lists."""
_INT_FIELDS = frozenset({"program", "low", "high"})


def load_tables(path: str | Path = SOURCES_JSON) -> dict[str, Any]:
    """Read the tables of :data:`TABLE_FIELDS` from ``path`` and check them.

    Returns ``{table: entries}``: for the :data:`KEYED_TABLES` a ``{key: tuple}`` dict, for the others
    a tuple of tuples; each tuple holds the entry's fields in :data:`TABLE_FIELDS` order. Raises
    ``ValueError`` naming the table and entry when one is missing, has the wrong shape, lacks a field,
    or holds a value of the wrong type (integers for ``program``/``low``/``high``, strings elsewhere).
    """
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    tables: dict[str, Any] = {}
    for name, fields in TABLE_FIELDS.items():
        table = data.get(name)
        if not isinstance(table, dict) or "entries" not in table:
            raise ValueError(f"{path}: table {name!r} is missing or has no 'entries'")
        entries = table["entries"]
        keyed = name in KEYED_TABLES
        if not isinstance(entries, dict if keyed else list):
            raise ValueError(f"{path}: {name}.entries must be a JSON {'object' if keyed else 'array'}")
        pairs = entries.items() if keyed else enumerate(entries)
        rows = {key: _table_row(path, name, key, entry, fields) for key, entry in pairs}
        tables[name] = rows if keyed else tuple(rows.values())
    return tables


def _table_row(path: Path, table: str, key: object, entry: object, fields: Sequence[str]) -> tuple[Any, ...]:
    where = f"{path}: {table}[{key!r}]"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a JSON object with fields {list(fields)}")
    missing = [f for f in fields if f not in entry]
    if missing:
        raise ValueError(f"{where} lacks field(s) {missing}")
    for f in fields:
        want, what = (int, "an integer") if f in _INT_FIELDS else (str, "a string")
        if not isinstance(entry[f], want) or isinstance(entry[f], bool):
            raise ValueError(f"{where}.{f} must be {what}, got {entry[f]!r}")
    return tuple(entry[f] for f in fields)


_TABLES = load_tables()
_FARM_ANIMALS: dict[str, tuple[str, str]] = _TABLES["farm_animals"]  # stem -> (label, caption)
_GCOMPRIS_INSTRUMENTS: dict[str, tuple[str, str]] = _TABLES["gcompris_instruments"]  # stem -> (label, caption)
_WORLD_MUSIC: dict[str, tuple[str, str]] = _TABLES["world_music"]  # stem -> (label, caption)
# (regex on the stem, category, label, caption, split group)
_MEMORY_SOUND: tuple[tuple[str, str, str, str, str], ...] = _TABLES["memory_sound"]
# (rcc name, regex on the stem, licence)
_GCOMPRIS_FALLBACK_LICENSES: tuple[tuple[str, str, str], ...] = _TABLES["gcompris_fallback_licenses"]
_OPENSFX: dict[str, tuple[str, str]] = _TABLES["opensfx"]  # title name -> (label, caption)
_CC_NAMES: tuple[tuple[str, str], ...] = _TABLES["cc_license_names"]  # (regex on the licence, SPDX id)
# (folder, regex on the stem, category, label, caption)
_LMMS: tuple[tuple[str, str, str, str, str], ...] = _TABLES["lmms"]
# label -> (General MIDI program (0-based), lowest pitch, highest pitch, caption noun)
FLUID_INSTRUMENTS: dict[str, tuple[int, int, int, str]] = _TABLES["fluidsynth_instruments"]
# (voice, gender, language code, language name, sentence)
ESPEAK_SENTENCES: tuple[tuple[str, str, str, str, str], ...] = _TABLES["espeak_sentences"]
_ALSA_SOUNDS: dict[str, tuple[str, str, str]] = _TABLES["alsa_sounds"]  # lower-case stem -> (cat., label, caption)


# --------------------------------------------------------------------------------------------------
# Container parsers
# --------------------------------------------------------------------------------------------------

_RCC_FLAG_COMPRESSED = 0x01
_RCC_FLAG_DIRECTORY = 0x02
_RCC_FLAG_COMPRESSED_ZSTD = 0x04


def read_qt_rcc(path: str | Path) -> dict[str, bytes]:
    """Read every file out of a binary Qt resource file (``.rcc``, "qres" format versions 1 to 3).

    Returns ``{"dir/sub/name.ext": bytes}`` with full paths from the resource root (no leading
    slash). zlib-compressed entries (flag 1) are decompressed; zstd entries (flag 4, Qt 6 only)
    raise ``ValueError``.
    """
    blob = Path(path).read_bytes()
    if len(blob) < 20 or blob[:4] != b"qres":
        raise ValueError(f"{path}: not a Qt resource file (no 'qres' magic)")
    version, tree_off, data_off, names_off = struct.unpack_from(">4I", blob, 4)
    if version < 1 or version > 3:
        raise ValueError(f"{path}: unsupported rcc format version {version} (expected 1 to 3)")
    node_size = 14 if version == 1 else 22
    for name, off in (("tree", tree_off), ("data", data_off), ("names", names_off)):
        if off >= len(blob):
            raise ValueError(f"{path}: {name} offset {off} is past the end of the file ({len(blob)} bytes)")

    def read_name(offset: int) -> str:
        pos = names_off + offset
        (n_chars,) = struct.unpack_from(">H", blob, pos)
        start = pos + 2 + 4  # 2-byte length, 4-byte hash
        return blob[start : start + 2 * n_chars].decode("utf-16-be")

    def read_data(offset: int, flags: int, where: str) -> bytes:
        pos = data_off + offset
        (length,) = struct.unpack_from(">I", blob, pos)
        payload = blob[pos + 4 : pos + 4 + length]
        if len(payload) != length:
            raise ValueError(f"{path}: data of {where!r} runs past the end of the file")
        if flags & _RCC_FLAG_COMPRESSED_ZSTD:
            raise ValueError(f"{path}: {where!r} is zstd-compressed, which this reader does not support")
        if flags & _RCC_FLAG_COMPRESSED:
            (expected,) = struct.unpack_from(">I", payload, 0)
            payload = zlib.decompress(payload[4:])
            if len(payload) != expected:
                raise ValueError(
                    f"{path}: {where!r} inflated to {len(payload)} bytes, header says {expected}"
                )
        return payload

    out: dict[str, bytes] = {}
    n_nodes = (names_off - tree_off) // node_size if names_off > tree_off else None

    def walk(index: int, prefix: str, depth: int) -> None:
        if depth > 64:
            raise ValueError(f"{path}: resource tree is deeper than 64 levels (corrupt file?)")
        if n_nodes is not None and index >= n_nodes:
            raise ValueError(f"{path}: tree node {index} out of range")
        pos = tree_off + index * node_size
        if pos + node_size > len(blob):
            raise ValueError(f"{path}: tree node {index} runs past the end of the file")
        name_offset, flags = struct.unpack_from(">IH", blob, pos)
        name = "" if index == 0 else read_name(name_offset)
        full = f"{prefix}{name}"
        if flags & _RCC_FLAG_DIRECTORY:
            child_count, first_child = struct.unpack_from(">II", blob, pos + 6)
            child_prefix = f"{full}/" if full else ""
            for child in range(first_child, first_child + child_count):
                walk(child, child_prefix, depth + 1)
        else:
            _country, _language, data_offset = struct.unpack_from(">HHI", blob, pos + 6)
            out[full] = read_data(data_offset, flags, full)

    walk(0, "", 0)
    return out


def read_opensfx_cat(path: str | Path) -> list[tuple[str, bytes]]:
    """Read OpenTTD's ``opensfx.cat``: a list of ``(title, RIFF/WAV bytes)`` in table order.

    The file starts with little-endian ``(uint32 offset | 0x80000000, uint32 size)`` pairs (the
    table length is the first offset / 8); each entry is one length byte, a title of that many bytes
    (NUL-terminated; it names the sound, its author and licence) and a RIFF/WAV of ``size`` bytes.
    """
    blob = Path(path).read_bytes()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short for an OpenSFX sound catalogue")
    (first,) = struct.unpack_from("<I", blob, 0)
    table_len = first & 0x7FFFFFFF
    if table_len % 8 or table_len == 0 or table_len > len(blob):
        raise ValueError(f"{path}: bad sound table length {table_len} (first offset {first:#x})")
    entries: list[tuple[str, bytes]] = []
    for i in range(table_len // 8):
        raw_off, size = struct.unpack_from("<II", blob, 8 * i)
        off = raw_off & 0x7FFFFFFF
        if off >= len(blob):
            raise ValueError(f"{path}: entry {i} offset {off} is past the end of the file")
        title_len = blob[off]
        title = blob[off + 1 : off + 1 + title_len].split(b"\0", 1)[0].decode("utf-8", "replace")
        start = off + 1 + title_len
        wav = blob[start : start + size]
        if len(wav) != size:
            raise ValueError(f"{path}: entry {i} ({title!r}) runs past the end of the file")
        if wav[:4] != b"RIFF":
            raise ValueError(f"{path}: entry {i} ({title!r}) is not a RIFF/WAV")
        entries.append((title, wav))
    return entries


# --------------------------------------------------------------------------------------------------
# Tiny standard-MIDI writer
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """One MIDI note: ``pitch`` (0-127), ``start_s`` and ``duration_s`` (s), ``velocity`` (1-127)."""

    pitch: int
    start_s: float
    duration_s: float
    velocity: int = 96


def _vlq(value: int) -> bytes:
    """MIDI variable-length quantity (7 bits a byte, high bit = more bytes follow)."""
    if value < 0 or value > 0x0FFFFFFF:
        raise ValueError(f"MIDI variable-length value out of range: {value}")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_bytes(
    notes: Sequence[Note],
    program: int,
    *,
    channel: int = 0,
    tempo_bpm: float = 120.0,
    ticks_per_beat: int = 480,
    tail_s: float = 1.0,
) -> bytes:
    """Encode ``notes`` as a format-0 standard MIDI file playing General MIDI ``program`` (0-127).

    ``tail_s`` (s) of silence is kept after the last note-off so that the release and reverb are
    rendered.
    """
    if not 0 <= program <= 127:
        raise ValueError(f"program must be in 0..127, got {program}")
    if not 0 <= channel <= 15:
        raise ValueError(f"channel must be in 0..15, got {channel}")
    if tempo_bpm <= 0 or ticks_per_beat <= 0 or ticks_per_beat > 0x7FFF:
        raise ValueError(f"bad tempo ({tempo_bpm} bpm) or division ({ticks_per_beat} ticks per beat)")
    ticks_per_s = ticks_per_beat * tempo_bpm / 60.0
    events: list[tuple[int, int, bytes]] = []  # (tick, order: note-offs first, bytes)
    for note in notes:
        if not 0 <= note.pitch <= 127 or not 1 <= note.velocity <= 127:
            raise ValueError(f"bad note {note}: pitch must be 0..127 and velocity 1..127")
        if note.start_s < 0 or note.duration_s <= 0:
            raise ValueError(f"bad note {note}: start must be >= 0 s and duration > 0 s")
        on = round(note.start_s * ticks_per_s)
        off = max(on + 1, round((note.start_s + note.duration_s) * ticks_per_s))
        events.append((on, 1, bytes([0x90 | channel, note.pitch, note.velocity])))
        events.append((off, 0, bytes([0x80 | channel, note.pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    tempo_us = round(60_000_000 / tempo_bpm)
    track = bytearray()
    track += b"\x00\xff\x51\x03" + tempo_us.to_bytes(3, "big")
    track += b"\x00" + bytes([0xC0 | channel, program])
    now = 0
    for tick, _order, payload in events:
        track += _vlq(tick - now) + payload
        now = tick
    track += _vlq(round(tail_s * ticks_per_s)) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_beat)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


def random_melody(
    rng: random.Random,
    low: int,
    high: int,
    *,
    min_s: float = 4.0,
    max_s: float = 6.0,
) -> list[Note]:
    """A seeded melody in a random major or minor key between MIDI pitches ``low`` and ``high``.

    Notes (quarter, eighth, dotted quarter or half at 90-140 bpm) follow a random walk on the
    scale until the melody lasts between ``min_s`` and ``max_s`` seconds.
    """
    if high - low < 12:
        raise ValueError(f"pitch range {low}..{high} must span at least an octave")
    scale = _MAJOR if rng.random() < 0.5 else _MINOR
    tonic = rng.randrange(0, 12)
    pitches = [p for p in range(low, high + 1) if (p - tonic) % 12 in scale]
    beat_s = 60.0 / rng.uniform(90.0, 140.0)
    target_s = rng.uniform(min_s, max_s)
    idx = len(pitches) // 2
    t = 0.0
    notes: list[Note] = []
    while True:
        dur = beat_s * rng.choice((0.5, 0.5, 1.0, 1.0, 1.0, 1.5, 2.0))
        if t + dur > target_s:
            if t >= min_s or not notes:
                break
            dur = target_s - t
        idx = min(max(idx + rng.choice((-2, -1, -1, 0, 1, 1, 2, 3, -3)), 0), len(pitches) - 1)
        notes.append(Note(pitches[idx], t, dur * 0.95, rng.randint(72, 112)))
        t += dur
    return notes


# --------------------------------------------------------------------------------------------------
# Decoding and clip processing
# --------------------------------------------------------------------------------------------------


def read_mono(source: bytes | str | Path) -> tuple[np.ndarray, int]:
    """Read audio bytes or a file as mono float32 samples and the file's sample rate (Hz).

    Reads with :func:`soundlm.processing.audio_io.load_audio` (soundfile, then torchcodec/FFmpeg
    for formats libsndfile cannot read) and averages the channels. Raises
    :class:`~soundlm.processing.audio_io.AudioInputError` (a ``ValueError``) when no decoder
    can read it.
    """
    audio, sr = load_audio(io.BytesIO(source) if isinstance(source, bytes) else source)
    return to_channels(audio, 1, downmix=True)[0], sr


def _decode_error(err: Exception) -> str:
    """One line of at most 300 characters from a decoder error (torchcodec's can span lines)."""
    text = " ".join(str(err).split())
    return text if len(text) <= 300 else text[:297] + "..."


def to_target_rate(x: np.ndarray, sr: int) -> np.ndarray:
    """Resample mono ``x`` from ``sr`` Hz to :data:`TARGET_SR` (soxr HQ, via ``audio_io.resample``)."""
    return resample(np.asarray(x, dtype=np.float32), sr, TARGET_SR)


def trim_silence(x: np.ndarray, sr: int, *, rel_db: float = -50.0, pad_s: float = 0.02) -> np.ndarray:
    """Cut leading and trailing samples quieter than ``rel_db`` (dB re. the peak), keeping ``pad_s``."""
    if x.size == 0:
        return x
    peak = float(np.max(np.abs(x)))
    if peak <= 0.0:
        return x[:0]
    loud = np.flatnonzero(np.abs(x) >= peak * 10.0 ** (rel_db / 20.0))
    pad = int(pad_s * sr)
    return x[max(int(loud[0]) - pad, 0) : min(int(loud[-1]) + 1 + pad, x.size)]


def window_bounds(
    n_samples: int,
    sr: int,
    *,
    max_s: float = MAX_WINDOW_S,
    max_windows: int = MAX_WINDOWS_PER_SOURCE,
) -> list[tuple[int, int]]:
    """Split ``n_samples`` into equal windows of at most ``max_s`` seconds; keep ``max_windows``.

    A recording of length T is cut into ceil(T / max_s) equal windows (so there is no short tail);
    when there are more than ``max_windows`` of them, evenly spread ones are kept.
    """
    max_len = int(round(max_s * sr))
    if n_samples <= max_len:
        return [(0, n_samples)]
    k = math.ceil(n_samples / max_len)
    edges = [round(i * n_samples / k) for i in range(k + 1)]
    chosen = sorted({round(v) for v in np.linspace(0, k - 1, min(k, max_windows))})
    return [(edges[i], edges[i + 1]) for i in chosen]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


# --------------------------------------------------------------------------------------------------
# Items (one per original recording file) and sources
# --------------------------------------------------------------------------------------------------


@dataclass
class Item:
    """One recording to put in the corpus, before decoding.

    ``source_id`` groups recordings that derive from one original recording (for the split);
    ``item_id`` names the output file(s) and is unique. ``load`` returns (mono samples, rate in Hz).
    """

    category: str
    label: str
    caption: str
    source: str
    source_id: str
    license: str
    load: Callable[[], tuple[np.ndarray, int]]
    item_id: str = ""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r} (expected one of {CATEGORIES})")
        if not self.item_id:
            self.item_id = self.source_id


@dataclass
class _Collected:
    items: list[Item] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def skip(self, source: str, reason: str) -> None:
        _log_skip(source, reason)
        self.skipped.append({"source": source, "reason": reason})


def _log_skip(source: str, reason: str) -> None:
    """Decode failures are warnings; deliberate skips (no label, too short, caps) are info."""
    level = logging.WARNING if reason.startswith("does not decode") else logging.INFO
    logger.log(level, "skip %s: %s", source, reason)


def _slug(text: str) -> str:
    """ASCII file-name-safe id: accents dropped, other runs of non-alphanumerics -> ``_``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_") or "x"


def _loader_bytes(data: bytes) -> Callable[[], tuple[np.ndarray, int]]:
    return lambda: read_mono(data)


def _loader_path(path: Path) -> Callable[[], tuple[np.ndarray, int]]:
    return lambda: read_mono(path)


def _loader_array(x: np.ndarray, sr: int) -> Callable[[], tuple[np.ndarray, int]]:
    return lambda: (x, sr)


def debian_license(doc_dir: Path, package: str, default: str) -> str:
    """The ``License:`` of the ``Files: *`` stanza of a DEP-5 ``copyright`` file, else ``default``."""
    path = doc_dir / package / "copyright"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return default
    for stanza in re.split(r"\n\s*\n", text):
        if re.search(r"^Files:\s*\*\s*$", stanza, flags=re.M):
            match = re.search(r"^License:\s*(\S.*)$", stanza, flags=re.M)
            if match:
                return match.group(1).strip()
    return default


# ---- GCompris ------------------------------------------------------------------------------------


def _parse_gcompris_readme(text: str) -> dict[str, str]:
    """Map file names to ``"<License> (<Copyright>)"`` from a GCompris resource README."""
    out: dict[str, str] = {}
    for block in re.split(r"\n\s*\n", text):
        lic = re.search(r"^License:\s*(.+)$", block, flags=re.M)
        owner = re.search(r"^Copyright:\s*(.+)$", block, flags=re.M)
        files = re.search(r"^Files:\s*\n((?:\S+\n?)+)", block, flags=re.M)
        if not (lic and files):
            continue
        value = lic.group(1).strip() + (f" ({owner.group(1).strip()})" if owner else "")
        for name in files.group(1).split():
            out[name] = value
    return out


def _collect_gcompris(paths: SystemPaths) -> _Collected:
    rcc_dir = paths.gcompris_rcc_dir
    if not rcc_dir.is_dir():
        raise _PackageMissing("gcompris-qt-data", str(rcc_dir))
    pkg_license = debian_license(paths.doc_dir, "gcompris-qt-data", "GPL-3+")
    col = _Collected()
    for rcc_name in ("explore_farm_animals", "instruments", "explore_world_music", "memory-sound"):
        rcc_path = rcc_dir / f"{rcc_name}.rcc"
        if not rcc_path.is_file():
            col.skip(f"gcompris-qt-data:{rcc_path.name}", "file not found")
            continue
        try:
            files = read_qt_rcc(rcc_path)
        except (ValueError, struct.error, zlib.error) as err:
            col.skip(f"gcompris-qt-data:{rcc_path.name}", f"cannot parse rcc: {err}")
            continue
        readme: dict[str, str] = {}
        for name, data in files.items():
            if name.endswith("/README") or name.endswith("/Licence.txt"):
                readme.update(_parse_gcompris_readme(data.decode("utf-8", "replace")))
        for name in sorted(files):
            base = name.rsplit("/", 1)[-1]
            stem, _, ext = base.rpartition(".")
            if ext.lower() not in ("ogg", "oga", "wav", "mp3", "flac"):
                continue  # images, QML, scripts, READMEs
            source = f"gcompris-qt-data:{rcc_path.name}/{name}"
            spec = _gcompris_spec(rcc_name, stem)
            if spec is None:
                col.skip(source, "no reliable label for this sound")
                continue
            category, label, caption, group = spec
            lic = readme.get(base) or _gcompris_fallback_license(rcc_name, stem, pkg_license)
            col.items.append(
                Item(
                    category=category,
                    label=label,
                    caption=caption,
                    source=source,
                    source_id=f"gcompris_{_slug(rcc_name)}-{_slug(group)}",
                    item_id=f"gcompris_{_slug(rcc_name)}-{_slug(stem)}",
                    license=lic,
                    load=_loader_bytes(files[name]),
                )
            )
    return col


def _gcompris_spec(rcc_name: str, stem: str) -> tuple[str, str, str, str] | None:
    """(category, label, caption, group) for a sound inside one of the GCompris resource files."""
    if rcc_name == "explore_farm_animals" and stem in _FARM_ANIMALS:
        return ("environmental", *_FARM_ANIMALS[stem], stem)
    if rcc_name == "instruments" and stem in _GCOMPRIS_INSTRUMENTS:
        return ("instrument", *_GCOMPRIS_INSTRUMENTS[stem], stem)
    if rcc_name == "explore_world_music" and stem in _WORLD_MUSIC:
        return ("world_music", *_WORLD_MUSIC[stem], stem)
    if rcc_name == "memory-sound":
        for pattern, category, label, caption, group in _MEMORY_SOUND:
            if re.search(pattern, stem):
                return category, label, caption, group
    return None


def _gcompris_fallback_license(rcc_name: str, stem: str, pkg_license: str) -> str:
    """Licence of a GCompris sound that no README in its .rcc credits (``gcompris_fallback_licenses``)."""
    for rcc, pattern, lic in _GCOMPRIS_FALLBACK_LICENSES:
        if rcc == rcc_name and re.search(pattern, stem):
            return lic
    return f"{pkg_license} (gcompris-qt-data)"


# ---- OpenTTD OpenSFX -----------------------------------------------------------------------------


def opensfx_license(title: str) -> str:
    """Licence of one OpenSFX entry from its title: SPDX-style id plus the credit line."""
    match = re.search(r"License:\s*(.+?)\.?\s*$", title)
    if not match:
        return "unknown (no licence in the OpenSFX title)"
    full = match.group(1)
    short = next((spdx for pattern, spdx in _CC_NAMES if re.search(pattern, full)), full)
    credit = title[: match.start()].strip()
    credit = re.sub(r'^"[^"]*"\.?\s*', "", credit)
    return f"{short}; {credit}" if credit else short


def _opensfx_group(index: int, name: str, title: str) -> str:
    """Split group: entries edited from the same original recording share one group."""
    original = re.search(r'Original "([^"]+)"', title)
    if original:
        return re.sub(r"\.(wav|mp3|aif|flac|ogg)$", "", original.group(1).lower())
    return f"{index:02d}_{name}"


def _collect_opensfx(paths: SystemPaths) -> _Collected:
    cat = paths.opensfx_cat
    if not cat.is_file():
        raise _PackageMissing("openttd-opensfx", str(cat))
    col = _Collected()
    for index, (title, wav) in enumerate(read_opensfx_cat(cat)):
        match = re.match(r'\s*"([^"]+)"', title)
        name = match.group(1) if match else title
        source = f"openttd-opensfx:opensfx.cat#{index:02d} {name}"
        if name not in _OPENSFX:
            col.skip(source, "not a plainly labelled real sound (game event, cartoon mix or empty)")
            continue
        label, caption = _OPENSFX[name]
        col.items.append(
            Item(
                category="environmental",
                label=label,
                caption=caption,
                source=source,
                source_id=f"opensfx-{_slug(_opensfx_group(index, name, title))}",
                item_id=f"opensfx-{index:02d}_{_slug(name)}",
                license=opensfx_license(title),
                load=_loader_bytes(wav),
            )
        )
    return col


# ---- LMMS samples --------------------------------------------------------------------------------


def _collect_lmms(paths: SystemPaths, *, seed: int, max_files: int) -> _Collected:
    root = paths.lmms_samples_dir
    if not root.is_dir():
        raise _PackageMissing("lmms-common", str(root))
    lic = debian_license(paths.doc_dir, "lmms-common", "GPL-2+")
    col = _Collected()
    by_folder: dict[str, list[Item]] = defaultdict(list)
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root)
        folder, stem = rel.parts[0], file.stem
        spec = next((s for s in _LMMS if s[0] == folder and re.search(s[1], stem)), None)
        if spec is None:
            continue  # synth pads, waveforms, unclear names: not part of the candidate set
        source = f"lmms-common:samples/{rel.as_posix()}"
        try:
            x, sr = read_mono(file)
        except AudioInputError as err:
            col.skip(source, f"does not decode: {_decode_error(err)}")
            continue
        dur = trim_silence(x, sr).size / sr
        if dur < MIN_CLIP_S:
            col.skip(source, f"shorter than {MIN_CLIP_S} s ({dur:.2f} s)")
            continue
        _, _, category, label, caption = spec
        by_folder[folder].append(
            Item(
                category=category,
                label=label,
                caption=caption,
                source=source,
                source_id=f"lmms-{_slug(folder)}_{_slug(stem)}",
                license=f"{lic} (lmms-common)",
                load=_loader_array(x, sr),
            )
        )
    # Round-robin over folders (and over labels inside a folder) so that the subset is spread.
    rng = random.Random(f"lmms-{seed}")
    queues: list[list[Item]] = []
    for folder in sorted(by_folder):
        per_label: dict[str, list[Item]] = defaultdict(list)
        for item in by_folder[folder]:
            per_label[item.label].append(item)
        for items in per_label.values():
            rng.shuffle(items)
        order: list[Item] = []
        while any(per_label.values()):
            for lab in sorted(per_label):
                if per_label[lab]:
                    order.append(per_label[lab].pop())
        queues.append(order)
    while len(col.items) < max_files and any(queues):
        for queue in queues:
            if queue and len(col.items) < max_files:
                col.items.append(queue.pop(0))
    for queue in queues:
        for item in queue:
            col.skip(item.source, f"over the max_lmms={max_files} cap")
    return col


# ---- FluidSynth renders --------------------------------------------------------------------------


def _collect_fluidsynth(
    paths: SystemPaths, *, seed: int, renders: int, tmp: Path, workers: int
) -> _Collected:
    if shutil.which(paths.fluidsynth) is None:
        raise _PackageMissing("fluidsynth", f"the {paths.fluidsynth!r} program")
    if not paths.soundfont.is_file():
        raise _PackageMissing("fluid-soundfont-gm", str(paths.soundfont))
    # fluid-soundfont-gm's copyright file is free-form; its README releases Fluid under MIT.
    lic = f"{debian_license(paths.doc_dir, 'fluid-soundfont-gm', 'MIT')} (FluidR3_GM soundfont by Frank Wen)"
    col = _Collected()
    jobs = []
    for label, (program, low, high, noun) in FLUID_INSTRUMENTS.items():
        for r in range(renders):
            rng = random.Random(f"fluid-{seed}-{label}-{r}")
            midi = midi_bytes(random_melody(rng, low, high), program)
            stem = f"fluidsynth-{label}_s{seed}r{r}"
            jobs.append((label, noun, stem, midi))

    def render(job: tuple[str, str, str, bytes]) -> tuple[str, str, str, Path | str]:
        label, noun, stem, midi = job
        mid, wav = tmp / f"{stem}.mid", tmp / f"{stem}.wav"
        mid.write_bytes(midi)
        cmd = [paths.fluidsynth, "-ni", "-q", "-g", "0.6", "-r", str(TARGET_SR), "-F", str(wav)]
        cmd += [str(paths.soundfont), str(mid)]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=_SUBPROCESS_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return label, noun, stem, "fluidsynth timed out"
        if proc.returncode != 0 or not wav.is_file():
            return label, noun, stem, f"fluidsynth failed: {proc.stderr.decode(errors='replace')[-160:]}"
        return label, noun, stem, wav

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for label, noun, stem, out in pool.map(render, jobs):
            source = f"fluidsynth+fluid-soundfont-gm:FluidR3_GM.sf2 GM program {FLUID_INSTRUMENTS[label][0]}"
            if isinstance(out, str):
                col.skip(f"{source} ({stem})", out)
                continue
            col.items.append(
                Item(
                    category="instrument",
                    label=label,
                    caption=f"{noun} playing a short melody",
                    source=f"{source}, {stem}.mid",
                    source_id=stem,
                    license=lic,
                    load=_loader_path(out),
                )
            )
    return col


# ---- espeak-ng -----------------------------------------------------------------------------------


def _collect_espeak(paths: SystemPaths, *, tmp: Path, workers: int) -> _Collected:
    if shutil.which(paths.espeak) is None:
        raise _PackageMissing("espeak-ng", f"the {paths.espeak!r} program")
    # espeak-ng's copyright file is free-form: GPL-3+ for the program and its voice data.
    lic = f"{debian_license(paths.doc_dir, 'espeak-ng', 'GPL-3+')} (espeak-ng synthetic speech)"
    col = _Collected()

    def render(i_row: tuple[int, tuple[str, str, str, str, str]]) -> tuple[int, Path | str]:
        i, (voice, _gender, lang, _name, text) = i_row
        wav = tmp / f"espeak_{i:02d}_{lang}.wav"
        try:
            proc = subprocess.run(
                [paths.espeak, "-v", voice, "-w", str(wav), text],
                capture_output=True,
                timeout=_SUBPROCESS_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return i, "espeak-ng timed out"
        if proc.returncode != 0 or not wav.is_file():
            return i, f"espeak-ng failed: {proc.stderr.decode(errors='replace')[-160:]}"
        return i, wav

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, out in pool.map(render, enumerate(ESPEAK_SENTENCES)):
            voice, gender, lang, name, text = ESPEAK_SENTENCES[i]
            source = f"espeak-ng:-v {voice} {text!r}"
            if isinstance(out, str):
                col.skip(source, out)
                continue
            col.items.append(
                Item(
                    category="speech",
                    label=f"synthetic_{name.lower()}_speech",
                    caption=f'a synthetic {gender} voice saying "{text}" in {name}',
                    source=source,
                    source_id=f"espeak-{lang}_{gender}_{_slug(text)[:40]}",
                    license=lic,
                    load=_loader_path(out),
                )
            )
    return col


# ---- Asterisk prompts ----------------------------------------------------------------------------


def _asterisk_transcripts(path: Path) -> dict[str, str]:
    """``{"prompt-name": "What it says."}`` from Asterisk's ``core-sounds-en.txt(.gz)``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
                raw = fh.read()
        else:
            raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in raw.splitlines():
        if line.startswith(";") or ":" not in line:
            continue
        name, _, text = line.partition(":")
        out[name.strip()] = text.strip()
    return out


def _collect_asterisk(paths: SystemPaths, *, seed: int, max_phrases: int) -> _Collected:
    root = paths.asterisk_dir
    if not root.is_dir():
        raise _PackageMissing("asterisk-core-sounds-en-wav", str(root))
    lic = debian_license(paths.doc_dir, "asterisk-core-sounds-en-wav", "CC-BY-SA-3.0")
    lic = f"{lic} (recorded by Allison Smith)"
    transcripts = _asterisk_transcripts(paths.asterisk_transcripts)
    col = _Collected()
    if not transcripts:
        logger.warning(
            "Asterisk transcripts %s not found (package asterisk-core-sounds-en): "
            "captions use the file names",
            paths.asterisk_transcripts,
        )
    candidates: list[tuple[Path, str]] = []
    for wav in sorted(root.glob("*.wav")):
        text = transcripts.get(wav.stem)
        if text is None:
            if transcripts:
                continue
            text = wav.stem.replace("-", " ")
        text = re.sub(r"\s+", " ", text).strip().rstrip(".")
        if text.startswith("[") or not 2 <= len(text.split()) <= 14:
            continue  # tones, and single words / long menus
        candidates.append((wav, text))
    rng = random.Random(f"asterisk-{seed}")
    chosen = sorted(rng.sample(candidates, min(max_phrases, len(candidates))))
    for wav, text in chosen:
        col.items.append(
            Item(
                category="speech",
                label="english_speech",
                caption=f'a woman saying "{text}"',
                source=f"asterisk-core-sounds-en-wav:en_US_f_Allison/{wav.name} (8 kHz telephone band)",
                source_id=f"asterisk-{_slug(wav.stem)}",
                license=lic,
                load=_loader_path(wav),
            )
        )
    return col


# ---- ALSA test sounds ----------------------------------------------------------------------------


def _collect_alsa(paths: SystemPaths) -> _Collected:
    root = paths.alsa_dir
    wavs = sorted(root.glob("*.wav")) if root.is_dir() else []
    if not wavs:
        raise _PackageMissing("alsa-utils", f"{root}/*.wav")
    lic = f"{debian_license(paths.doc_dir, 'alsa-utils', 'GPL-2')} (alsa-utils)"
    col = _Collected()
    for wav in wavs:
        if wav.stem.lower() in _ALSA_SOUNDS:
            category, label, caption = _ALSA_SOUNDS[wav.stem.lower()]
        else:
            words = wav.stem.replace("_", " ").lower()
            category, label, caption = "speech", "english_speech", f'a person saying "{words}"'
        col.items.append(
            Item(
                category=category,
                label=label,
                caption=caption,
                source=f"alsa-utils:sounds/alsa/{wav.name}",
                source_id=f"alsa-{_slug(wav.stem)}",
                license=lic,
                load=_loader_path(wav),
            )
        )
    return col


# --------------------------------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------------------------------


def assign_splits(
    sources: Mapping[str, tuple[str, str]],
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> dict[str, str]:
    """Assign each source recording to ``"train"`` or ``"test"``.

    ``sources`` maps ``source_id -> (category, label)``. Deterministic for a given ``seed``. A label
    with a single source goes to train and every label keeps at least one train source; about
    ``test_fraction`` of the sources go to test (rounded per label by largest remainder), and every
    category that has a label with two or more sources gets at least one test source.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    rng = random.Random(f"split-{seed}")
    by_label: dict[tuple[str, str], list[str]] = defaultdict(list)
    for sid in sorted(sources):
        by_label[sources[sid]].append(sid)
    order: dict[tuple[str, str], list[str]] = {}
    for key in sorted(by_label):
        ids = sorted(by_label[key])
        rng.shuffle(ids)
        order[key] = ids
    tiebreak = {key: rng.random() for key in order}
    n_test = {key: 0 for key in order}
    eligible = [key for key in order if len(order[key]) >= 2]

    def cap(key: tuple[str, str]) -> int:
        n = len(order[key])
        return min(n - 1, max(1, math.ceil(test_fraction * n)))

    for key in eligible:
        n_test[key] = min(int(test_fraction * len(order[key])), cap(key))
    if test_fraction > 0:
        # Every category with a multi-source label gets a test source (the label with most sources).
        for category in sorted({key[0] for key in eligible}):
            keys = [k for k in eligible if k[0] == category]
            if not any(n_test[k] for k in keys):
                best = max(keys, key=lambda k: (len(order[k]), tiebreak[k]))
                n_test[best] = 1
        target = round(test_fraction * len(sources))
        by_remainder = sorted(
            eligible,
            key=lambda k: (
                -(test_fraction * len(order[k]) - int(test_fraction * len(order[k]))),
                tiebreak[k],
            ),
        )
        for key in by_remainder:
            if sum(n_test.values()) >= target:
                break
            if n_test[key] < cap(key):
                n_test[key] += 1
    split: dict[str, str] = {}
    for key, ids in order.items():
        for i, sid in enumerate(ids):
            split[sid] = "test" if i < n_test[key] else "train"
    return split


def split_rows(
    rows: Sequence[Mapping[str, object]], *, seed: int = 0, test_fraction: float = 0.2
) -> list[str]:
    """Split for each manifest row (needs ``source_id``, ``category``, ``label``), per source.

    A source whose windows carry several labels is filed under its most frequent (category, label).
    """
    counts: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for row in rows:
        counts[str(row["source_id"])][(str(row["category"]), str(row["label"]))] += 1
    sources = {sid: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for sid, c in counts.items()}
    split = assign_splits(sources, seed=seed, test_fraction=test_fraction)
    return [split[str(row["source_id"])] for row in rows]


# --------------------------------------------------------------------------------------------------
# Builder
# --------------------------------------------------------------------------------------------------


def _process(item: Item, audio_dir: Path, out_dir: Path) -> tuple[list[dict[str, object]], str | None, str]:
    """Decode, resample, trim and window one item; write its WAVs. Returns (rows, skip reason, hash)."""
    try:
        x, sr = item.load()
    except (AudioInputError, OSError) as err:
        return [], f"does not decode: {_decode_error(err)}", ""
    if x.size == 0 or not np.all(np.isfinite(x)):
        return [], "empty or non-finite audio", ""
    y = trim_silence(to_target_rate(x, sr), TARGET_SR)
    if y.size < MIN_CLIP_S * TARGET_SR:
        return [], f"shorter than {MIN_CLIP_S} s after trimming silence ({y.size / TARGET_SR:.2f} s)", ""
    if _rms(y) < SILENCE_RMS:
        return [], f"silent (RMS {_rms(y):.1e})", ""
    peak = float(np.max(np.abs(y)))
    if peak > 0.999:
        y = y * (0.999 / peak)
    digest = hashlib.sha1(np.round(y[: TARGET_SR * 5] * 32767).astype("<i2").tobytes()).hexdigest()
    bounds = window_bounds(y.size, TARGET_SR)
    rows: list[dict[str, object]] = []
    target_dir = audio_dir / item.category / item.label
    target_dir.mkdir(parents=True, exist_ok=True)
    for k, (a, b) in enumerate(bounds):
        clip = y[a:b]
        if clip.size < MIN_CLIP_S * TARGET_SR or _rms(clip) < SILENCE_RMS:
            continue
        name = f"{item.item_id}.wav" if len(bounds) == 1 else f"{item.item_id}_w{k}.wav"
        path = target_dir / name
        sf.write(path, clip, TARGET_SR, subtype="PCM_16")
        rows.append(
            {
                "path": path.relative_to(out_dir).as_posix(),
                "category": item.category,
                "label": item.label,
                "caption": item.caption,
                "source": item.source,
                "source_id": item.source_id,
                "license": item.license,
                "duration_s": round(clip.size / TARGET_SR, 3),
                "sample_rate": TARGET_SR,
                "split": "",
            }
        )
    if not rows:
        return [], "no window left after dropping silent ones", digest
    return rows, None, digest


def build_corpus(
    out_dir: str | Path,
    *,
    seed: int = 0,
    max_lmms: int = 40,
    max_asterisk: int = 30,
    fluidsynth_renders: int = 2,
    test_fraction: float = 0.2,
    sources: Iterable[str] = ALL_SOURCES,
    paths: SystemPaths | None = None,
    workers: int = 2,
) -> Path:
    """Build the corpus under ``out_dir`` and return the path of its ``manifest.csv``.

    Writes ``audio/<category>/<label>/<item>.wav`` (44.1 kHz mono PCM-16, 0.3 to 10 s), the
    manifest and ``corpus_summary.json``. ``sources`` picks among :data:`ALL_SOURCES`; a source whose
    package is missing is skipped with a warning. Re-running gives the same files and removes WAVs
    left from earlier runs. Raises :class:`MissingAudioPackagesError` when nothing could be built.
    """
    start = time.monotonic()
    paths = paths or SystemPaths()
    wanted = tuple(dict.fromkeys(sources))
    unknown = sorted(set(wanted) - set(ALL_SOURCES))
    if unknown:
        raise ValueError(f"unknown sources {unknown}; choose among {list(ALL_SOURCES)}")
    for name, value in (
        ("max_lmms", max_lmms),
        ("max_asterisk", max_asterisk),
        ("fluidsynth_renders", fluidsynth_renders),
    ):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    out_dir = Path(out_dir)
    audio_dir = out_dir / "audio"
    out_dir.mkdir(parents=True, exist_ok=True)

    items: list[Item] = []
    skipped: list[dict[str, str]] = []
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="soundlm_corpus_") as tmp_name:
        tmp = Path(tmp_name)
        collectors: dict[str, Callable[[], _Collected]] = {
            "gcompris": lambda: _collect_gcompris(paths),
            "opensfx": lambda: _collect_opensfx(paths),
            "lmms": lambda: _collect_lmms(paths, seed=seed, max_files=max_lmms),
            "fluidsynth": lambda: _collect_fluidsynth(
                paths, seed=seed, renders=fluidsynth_renders, tmp=tmp, workers=workers
            ),
            "espeak": lambda: _collect_espeak(paths, tmp=tmp, workers=workers),
            "asterisk": lambda: _collect_asterisk(paths, seed=seed, max_phrases=max_asterisk),
            "alsa": lambda: _collect_alsa(paths),
        }
        for name in wanted:
            try:
                col = collectors[name]()
            except _PackageMissing as err:
                logger.warning("source %s skipped: package %s", name, err)
                missing.append(err.package)
                continue
            logger.info("source %s: %d recordings, %d skipped", name, len(col.items), len(col.skipped))
            items.extend(col.items)
            skipped.extend(col.skipped)

        ids = Counter(item.item_id for item in items)
        clashes = sorted(k for k, n in ids.items() if n > 1)
        if clashes:
            raise ValueError(f"duplicate item ids (bug in a collector): {clashes[:5]}")

        written: set[Path] = set()
        rows: list[dict[str, object]] = []
        seen: dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda it: _process(it, audio_dir, out_dir), items))
        for item, (item_rows, reason, digest) in zip(items, results):
            if reason is None and digest in seen:
                reason = f"duplicate of {seen[digest]}"
                for row in item_rows:
                    (out_dir / str(row["path"])).unlink(missing_ok=True)
                item_rows = []
            if reason is not None:
                _log_skip(item.source, reason)
                skipped.append({"source": item.source, "reason": reason})
                continue
            seen[digest] = item.item_id
            rows.extend(item_rows)
            written.update(out_dir / str(row["path"]) for row in item_rows)

    if not rows:
        hint = "sudo apt-get install " + " ".join(APT_PACKAGES)
        detail = f" (missing: {', '.join(sorted(set(missing)))})" if missing else ""
        raise MissingAudioPackagesError(
            f"no audio could be collected from sources {list(wanted)}{detail}. Install the packages "
            f"the corpus is built from with:\n  {hint}"
        )

    # Remove WAVs (and then empty folders) left by earlier runs, so re-running is idempotent.
    if audio_dir.is_dir():
        for stale in audio_dir.rglob("*.wav"):
            if stale not in written:
                stale.unlink()
        for folder in sorted((p for p in audio_dir.rglob("*") if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()

    rows.sort(key=lambda r: str(r["path"]))
    for row, split in zip(rows, split_rows(rows, seed=seed, test_fraction=test_fraction)):
        row["split"] = split
    manifest = out_dir / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(MANIFEST_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)

    summary = _summary(rows, skipped, missing, wanted, seed=seed, seconds=time.monotonic() - start)
    (out_dir / "corpus_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    logger.info("wrote %s (%d clips) in %.1f s", manifest, len(rows), summary["build_seconds"])
    return manifest


def _summary(
    rows: Sequence[Mapping[str, object]],
    skipped: Sequence[Mapping[str, str]],
    missing: Sequence[str],
    wanted: Sequence[str],
    *,
    seed: int,
    seconds: float,
) -> dict[str, object]:
    per: dict[str, dict[str, dict[str, float]]] = {
        cat: {s: {"clips": 0, "sources": 0, "seconds": 0.0} for s in ("train", "test")} for cat in CATEGORIES
    }
    seen_sources: set[tuple[str, str, str]] = set()
    for row in rows:
        cat, split, sid = str(row["category"]), str(row["split"]), str(row["source_id"])
        cell = per[cat][split]
        cell["clips"] += 1
        cell["seconds"] = round(cell["seconds"] + float(row["duration_s"]), 3)
        if (cat, split, sid) not in seen_sources:
            seen_sources.add((cat, split, sid))
            cell["sources"] += 1
    by_package = Counter(str(row["source"]).split(":", 1)[0] for row in rows)
    labels = Counter(f"{row['category']}/{row['label']}" for row in rows)
    reasons = Counter(re.sub(r"\(.*", "", str(s["reason"])).split(":")[0].strip() for s in skipped)
    return {
        "seed": seed,
        "sample_rate": TARGET_SR,
        "n_clips": len(rows),
        "n_sources": len({str(r["source_id"]) for r in rows}),
        "n_labels": len(labels),
        "total_seconds": round(sum(float(r["duration_s"]) for r in rows), 3),
        "per_category_split": per,
        "clips_per_package": dict(sorted(by_package.items())),
        "clips_per_label": dict(sorted(labels.items())),
        "sources_requested": list(wanted),
        "missing_packages": sorted(set(missing)),
        "n_skipped": len(skipped),
        "skipped_reasons": dict(reasons.most_common()),
        "skipped": list(skipped),
        "build_seconds": round(seconds, 1),
    }


def format_summary(summary: Mapping[str, object]) -> str:
    """A short text table of clips / sources / minutes per category and split."""
    per: Mapping[str, Mapping[str, Mapping[str, float]]] = summary["per_category_split"]  # type: ignore[assignment]
    lines = [f"{'category':<14}{'train clips':>12}{'test clips':>11}{'sources':>9}{'minutes':>9}"]
    for cat in CATEGORIES:
        tr, te = per[cat]["train"], per[cat]["test"]
        lines.append(
            f"{cat:<14}{tr['clips']:>12}{te['clips']:>11}{tr['sources'] + te['sources']:>9}"
            f"{(tr['seconds'] + te['seconds']) / 60:>9.1f}"
        )
    lines.append(
        f"total: {summary['n_clips']} clips, {summary['n_sources']} sources, {summary['n_labels']} labels, "
        f"{float(summary['total_seconds']) / 60:.1f} min; {summary['n_skipped']} files skipped; "
        f"built in {summary['build_seconds']} s"
    )
    if summary.get("missing_packages"):
        lines.append(f"missing packages: {', '.join(map(str, summary['missing_packages']))}")  # type: ignore[call-overload]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: build the corpus and print a summary table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("work/corpus"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed for subsets, melodies and the split")
    parser.add_argument("--max-lmms", type=int, default=40, help="most LMMS sample files to take")
    parser.add_argument("--max-asterisk", type=int, default=30, help="most Asterisk phrases to take")
    parser.add_argument("--fluidsynth-renders", type=int, default=2, help="renders per GM instrument")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="share of sources in test")
    parser.add_argument("--sources", nargs="+", default=list(ALL_SOURCES), choices=ALL_SOURCES)
    parser.add_argument("--workers", type=int, default=2, help="threads for rendering and decoding")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every skipped file")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        manifest = build_corpus(
            args.out,
            seed=args.seed,
            max_lmms=args.max_lmms,
            max_asterisk=args.max_asterisk,
            fluidsynth_renders=args.fluidsynth_renders,
            test_fraction=args.test_fraction,
            sources=args.sources,
            workers=args.workers,
        )
    except MissingAudioPackagesError as err:
        print(f"error: {err}")
        return 1
    summary = json.loads((manifest.parent / "corpus_summary.json").read_text())
    print(format_summary(summary))
    print(f"manifest: {manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
