"""One loader from what users have (audio folders, CSV/JSONL manifests, Hub datasets) to a `datasets.Dataset`.

Whatever the input, `load_audio_dataset` returns rows of the same schema, one row per window of audio:

| column | type | meaning |
|---|---|---|
| `key` | string | sha256 of the audio content and the window: the same audio window gets the same key in every run |
| `source_id` | string | where the row came from: `"<manifest file>:<line>"`, `"<folder>/<file>"` or `"hub:<index>"` |
| `audio_path` | string or null | absolute path of the audio file (null when the audio is held as bytes) |
| `audio_bytes` | binary or null | the encoded audio file, for Hub / in-memory audio without a local file |
| `content_hash` | string | sha256 of the audio file's bytes |
| `sampling_rate` | int32 | the file's own sampling rate (Hz); no resampling happens here |
| `start`, `end` | float64 | the window inside the file, in seconds; `end - start == duration` |
| `duration` | float64 | seconds of real audio in the row (at most `window_seconds`) |
| `window_index`, `num_windows` | int32 | index of this window among those cut from its clip; their count |
| `windowing` | string | `"whole"` (the clip fits one window, or no window is set) or `"cut"` (one of several) |
| `padded` | bool | the row is shorter than `window_seconds` and is padded (with a mask) to it when batched |
| `caption`, `label`, `instruction`, `response`, `dataset`, `split` | string or null | text; null when absent |

Other columns of the input are kept as strings (non-string JSON values as JSON); one whose name is taken by
the schema (say, the input's own `source_id`) is kept as `input_<name>`. A list of labels is joined
with `", "`.

Windowing: a clip longer than `window_seconds` is cut into windows starting every `hop_seconds` (default: the
window, i.e. no overlap) until a window reaches the clip's end; the last one may be shorter and is then
marked `padded` (it is dropped if shorter than `min_window_seconds`, and the drop is logged). A clip not
longer than the window is one `"whole"` row, `padded` when shorter. Padding itself happens when a batch is
formed (`MSNFeatureExtractor` returns the mask): rows store only the real audio span.

Rows whose audio cannot be used at load time (missing or unreadable file, a file of 0 samples, a manifest
window of zero length or past the file's end, a malformed manifest line) are not returned; they are logged
with the reason and, with `return_rejected=True`, returned as `{"source_id", "audio_path", "category",
"reason"}` records (`category` from `audio_io.AUDIO_ERROR_CATEGORIES`). Problems that only decoding reveals
(NaN samples) are caught where the audio is decoded: `read_row_audio` raises `AudioInputError`, and the batch
jobs (pre-tokenisation, the latent cache) record the row with the error's category.

Memory: the rows are written to Arrow files in `datasets`' temporary cache folder every `ROWS_PER_ARROW_FILE` rows
and come back memory-mapped (the files go when the process ends), and a file's header and hash are read once per
call however many windows point into it, so a manifest of 100k+ windows costs disk, not memory
(`benchmarks/bench_streaming.py`). `save_to_disk` keeps a loaded dataset beyond the process.

Audio is read with `audio_io.load_audio`: soundfile (WAV, FLAC, OGG, MP3), torchcodec for other formats when it
is installed. Hub `Audio` columns are read without decoding (`Audio(decode=False)` gives the file bytes or
path), so torchcodec is not needed for the formats soundfile reads.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import logging
import math
import numbers
import os
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import soundfile as sf
from datasets.arrow_writer import ArrowWriter
from datasets.fingerprint import get_temporary_cache_files_directory

from .audio_io import AudioInputError, load_audio, resample, to_channels, validate_audio

logger = logging.getLogger(__name__)

__all__ = ["AUDIO_DATASET_COLUMNS", "file_window_rows", "load_audio_dataset", "manifest_rows", "read_row_audio",
           "scratch_map_arguments", "window_spans"]

TEXT_COLUMNS = ("caption", "label", "instruction", "response", "dataset", "split")
PATH_COLUMNS = ("path", "file_name", "audio", "audio_path")  # the first one present names the audio file
ROWS_PER_ARROW_FILE = 10_000  # rows held in Python before they go to disk (`_RowTable`)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".opus")

AUDIO_DATASET_COLUMNS = {
    "key": datasets.Value("string"),
    "source_id": datasets.Value("string"),
    "audio_path": datasets.Value("string"),
    "audio_bytes": datasets.Value("binary"),
    "content_hash": datasets.Value("string"),
    "sampling_rate": datasets.Value("int32"),
    "start": datasets.Value("float64"),
    "end": datasets.Value("float64"),
    "duration": datasets.Value("float64"),
    "window_index": datasets.Value("int32"),
    "num_windows": datasets.Value("int32"),
    "windowing": datasets.Value("string"),
    "padded": datasets.Value("bool"),
    **{name: datasets.Value("string") for name in TEXT_COLUMNS},
}


# --------------------------------------------------------------------------------------------------------
# public API


def load_audio_dataset(
    source: str | os.PathLike | datasets.Dataset,
    *,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    min_window_seconds: float = 0.0,
    split: str | None = None,
    audio_column: str = "audio",
    column_map: Mapping[str, str] | None = None,
    return_rejected: bool = False,
) -> datasets.Dataset | tuple[datasets.Dataset, list[dict]]:
    """
    Loads audio rows from any supported source into a `datasets.Dataset` with the schema of this module.

    Args:
        source: one of
            - a folder with `metadata.csv` or `metadata.jsonl` (a `file_name` or `path` column, paths relative to
              the folder), or without one (every audio file below it; its sub-folder name is the `label`);
            - a `.csv` or `.jsonl` manifest with a `path` (or `file_name` / `audio`) column, optional `start` /
              `end` in seconds and text columns; paths are relative to the manifest's folder;
            - a `datasets.Dataset` with an `Audio` column (or a dict column with `bytes` / `path`);
            - a Hub dataset id (loaded with `datasets.load_dataset(source, split=split)`).
        window_seconds (`float`, *optional*): window length in seconds; `None` keeps clips whole.
        hop_seconds (`float`, *optional*): distance between window starts; defaults to `window_seconds`.
        min_window_seconds (`float`, defaults to 0): a last window shorter than this is dropped.
        split (`str`, *optional*): split of a Hub dataset (default `"train"`).
        audio_column (`str`, defaults to `"audio"`): the audio column of a `datasets` source.
        column_map (`dict`, *optional*): schema name -> the source's column name, e.g. `{"caption": "sentence"}`.
        return_rejected (`bool`, defaults to `False`): also return the rows that could not be used.

    Returns:
        `datasets.Dataset`, or `(dataset, rejected)` with `rejected` a list of
        `{"source_id", "audio_path", "reason"}` when `return_rejected=True`.

    Example:

    ```python
    >>> ds = load_audio_dataset("clips/manifest.csv", window_seconds=10.0)  # doctest: +SKIP
    >>> ds[0]["windowing"], ds[0]["padded"], ds[0]["caption"]  # doctest: +SKIP
    ('whole', True, 'a dog barks twice')

    ```
    """
    window_seconds = _optional_seconds(window_seconds, "window_seconds", positive=True)
    hop_seconds = _optional_seconds(hop_seconds, "hop_seconds", positive=True)
    min_window_seconds = _optional_seconds(min_window_seconds, "min_window_seconds", positive=False) or 0.0
    if hop_seconds is not None and window_seconds is None:
        raise ValueError(f"hop_seconds={hop_seconds} needs window_seconds to be set")
    hop_seconds = hop_seconds if hop_seconds is not None else window_seconds
    if column_map is not None and not isinstance(column_map, Mapping):
        raise TypeError(f"column_map must be a dict of schema name -> column name, got {type(column_map).__name__}")
    column_map = dict(column_map or {})

    rejected: list[dict] = []
    records = _read_source(source, split=split, audio_column=audio_column, column_map=column_map, rejected=rejected)
    probe = _Prober()
    table = _RowTable(ROWS_PER_ARROW_FILE)
    dropped_tails = 0
    for record in records:
        try:
            clip = probe(record)
        except AudioInputError as error:
            logger.warning("skipping %s: %s", record["source_id"], error)
            rejected.append(rejection(record["source_id"], record["audio_path"], error))
            continue
        spans = window_spans(clip["first"], clip["last"], clip["sampling_rate"], window_seconds, hop_seconds)
        shortest = min_window_seconds * clip["sampling_rate"]
        kept = [span for i, span in enumerate(spans) if i == 0 or span[1] - span[0] >= shortest]
        dropped_tails += len(spans) - len(kept)
        for index, (first, last) in enumerate(kept):
            table.add(_row(record, clip, first, last, index, len(kept), window_seconds))

    if rejected:
        reasons = Counter(item["category"] for item in rejected)
        logger.warning("load_audio_dataset: %d row(s) rejected: %s", len(rejected), dict(reasons))
    if dropped_tails:
        logger.info("load_audio_dataset: dropped %d last window(s) shorter than %s s", dropped_tails,
                    min_window_seconds)
    dataset = table.finish()
    return (dataset, rejected) if return_rejected else dataset


def rejection(source_id: str | None, audio_path: str | None, error: AudioInputError, **extra: Any) -> dict:
    """The report record of a row that could not be used: `{"source_id", "audio_path", "category", "reason"}`."""
    return {**extra, "source_id": source_id, "audio_path": audio_path, "category": error.category,
            "reason": str(error)}


class _RowTable:
    """Rows -> a memory-mapped `datasets.Dataset`, never more than `chunk_rows` rows in Python at a time.

    Every `chunk_rows` rows go to an Arrow file in `datasets`' temporary cache folder (deleted when the process
    ends, as the cache files of `map` on an in-memory dataset are), and the result is the concatenation of those
    files, read memory-mapped: a manifest of a million windows costs disk, not memory. A file name is new for every
    call, so no call can read another's rows (no stale cache). Extra input columns (strings) that only some chunks
    have are added to the others as nulls, so every row has every column.
    """

    def __init__(self, chunk_rows: int):
        self.chunk_rows = chunk_rows
        self.rows: list[dict] = []
        self.parts: list[datasets.Dataset] = []

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.chunk_rows:
            self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        features = _features({name for row in self.rows for name in row})
        path = Path(get_temporary_cache_files_directory()) / f"audio-rows-{uuid.uuid4().hex}.arrow"
        with ArrowWriter(features=features, path=str(path)) as writer:
            writer.write_batch({name: [row.get(name) for row in self.rows] for name in features})
            writer.finalize()
        self.parts.append(datasets.Dataset.from_file(str(path)))
        self.rows = []

    def finish(self) -> datasets.Dataset:
        self._flush()
        features = _features({name for part in self.parts for name in part.column_names})
        if not self.parts:
            return _empty_dataset(features)
        aligned = []
        for part in self.parts:
            for name in features:
                if name not in part.column_names:
                    part = part.add_column(name, [None] * len(part), feature=datasets.Value("string"))
            aligned.append(part.select_columns(list(features)))
        return aligned[0] if len(aligned) == 1 else datasets.concatenate_datasets(aligned)


def scratch_map_arguments(name: str) -> dict[str, Any]:
    """`Dataset.map` arguments for a one-off pass whose output streams to disk: a fresh fingerprint (no hashing of
    the function, whose closure may hold large arrays), a cache file in `datasets`' temporary folder (never beside
    a user's own dataset, gone when the process ends), and never a result read back from a cache, so that the
    function runs, and whatever it counts on the side is this call's."""
    fingerprint = uuid.uuid4().hex
    return {"new_fingerprint": fingerprint, "load_from_cache_file": False,
            "cache_file_name": str(Path(get_temporary_cache_files_directory()) / f"{name}-{fingerprint}.arrow")}


def _features(names: set[str]) -> datasets.Features:
    """The schema's columns, then the extra input columns (strings) in sorted order."""
    extra = sorted(names - AUDIO_DATASET_COLUMNS.keys())
    return datasets.Features({**AUDIO_DATASET_COLUMNS, **{name: datasets.Value("string") for name in extra}})


def _empty_dataset(features: datasets.Features) -> datasets.Dataset:
    """An empty dataset with the given features (datasets cannot infer them from an empty list)."""
    return datasets.Dataset.from_dict({name: [] for name in features}, features=features)


def window_spans(
    first: int, last: int, sampling_rate: int, window_seconds: float | None, hop_seconds: float | None
) -> list[tuple[int, int]]:
    """
    Cuts the clip `[first, last)` (sample indices at `sampling_rate`) into windows.

    Returns:
        `list[tuple[int, int]]`: `(start, end)` sample indices of each window. Windows start every
        `round(hop_seconds * sampling_rate)` samples, are `round(window_seconds * sampling_rate)` long and end at
        `last` at the latest; the first window that reaches `last` is the last one, so with a hop shorter than
        the window no window is contained in the one before it.
    """
    if window_seconds is None or last - first <= round(window_seconds * sampling_rate):
        return [(first, last)]
    window = round(window_seconds * sampling_rate)
    hop = max(1, round((hop_seconds or window_seconds) * sampling_rate))
    spans = []
    start = first
    while True:
        spans.append((start, min(start + window, last)))
        if start + window >= last:
            return spans
        start += hop


def file_window_rows(path: str | os.PathLike, window_seconds: float | None) -> list[dict[str, Any]]:
    """
    One audio file cut into `window_seconds` windows (no overlap) as rows that `read_row_audio` reads one at a time,
    so a long file (an hour) is never decoded whole: only its length is read (from the header with soundfile;
    formats only torchcodec decodes are read once to count their samples).

    Returns:
        `list[dict]`: `{"audio_path", "start", "end"}` per window, in seconds, in order.

    Raises:
        AudioInputError: the file is missing or unreadable (`"unreadable"`), or has no samples (`"empty"`).
    """
    name = os.fspath(path)
    if window_seconds is not None and not window_seconds > 0:
        raise ValueError(f"window_seconds must be positive or None, got {window_seconds!r}")
    try:
        info = sf.info(name)
        rate, total = int(info.samplerate), int(info.frames)
    except (sf.SoundFileError, RuntimeError, OSError, TypeError, ValueError):
        audio, rate = load_audio(name)  # raises "unreadable" naming the file when nothing decodes it
        total = audio.shape[-1]
    if total <= 0:
        raise AudioInputError("empty", f"audio file {name!r} has no samples")
    return [{"audio_path": name, "start": first / rate, "end": last / rate}
            for first, last in window_spans(0, total, rate, window_seconds, None)]


def read_row_audio(
    row: Mapping[str, Any], sampling_rate: int | None = None, channels: int | None = None
) -> tuple[np.ndarray, int]:
    """
    Decodes the audio of one row of `load_audio_dataset`, optionally resampled and channel-mapped for a model.

    Args:
        row: one row of `load_audio_dataset` (or a dict with its `audio_path` / `audio_bytes`, `start`, `end`).
        sampling_rate (`int`, *optional*): resample to this rate (Hz) with soxr; default: the file's own rate.
        channels (`int`, *optional*): map to this many channels (`to_channels` with `downmix=True`: a file with
            more than 2 channels is averaged rather than refused, because batch jobs must not stop on one file).

    Returns:
        `tuple[np.ndarray, int]`: float32 waveform of shape `(channels, samples)` covering `[start, end)` of the
        file, and its sampling rate (Hz).

    Raises:
        AudioInputError: the file is unreadable or missing (category `"unreadable"`), or its samples are empty
            (`"empty"`), NaN or infinite (`"non_finite"`); the message names the row.
    """
    name = row.get("audio_path") or row.get("source_id") or "<row>"
    start, end = row["start"], row["end"]
    try:
        if row.get("audio_path"):
            audio, rate = load_audio(row["audio_path"], start=start, end=end)
        elif row.get("audio_bytes") is not None:
            audio, rate = load_audio(io.BytesIO(row["audio_bytes"]), start=start, end=end)
        else:
            raise AudioInputError("bad_row", f"row {name!r} has neither audio_path nor audio_bytes")
        audio = validate_audio(audio, name=str(name))
    except AudioInputError as error:
        if str(name) in str(error):
            raise
        raise error.with_context(f"row {name!r}") from None
    if sampling_rate is not None:
        audio, rate = resample(audio, rate, sampling_rate), int(sampling_rate)
    if channels is not None:
        audio = to_channels(audio, channels, downmix=True)
    return audio, rate


# --------------------------------------------------------------------------------------------------------
# reading the sources


def _read_source(
    source: Any, *, split: str | None, audio_column: str, column_map: dict[str, str], rejected: list[dict]
) -> Iterable[dict]:
    """The source's records, one at a time (checked for its kind here, row by row as they are read); rows that
    cannot be used are appended to ``rejected``."""
    if isinstance(source, (datasets.Dataset, datasets.DatasetDict)):
        return _read_hf_dataset(source, split, audio_column, column_map, rejected)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "source must be a folder, a .csv/.jsonl manifest, a datasets.Dataset or a Hub dataset id, got "
            f"{type(source).__name__}"
        )
    path = Path(source)
    if path.is_dir():
        return _read_folder(path, column_map, rejected)
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return _read_manifest_rows(path, _csv_lines(path), column_map, rejected)
        if path.suffix.lower() in (".jsonl", ".json"):
            return _read_manifest_rows(path, _jsonl_lines(path), column_map, rejected)
        raise ValueError(f"manifest {str(path)!r} must end in .csv or .jsonl, got {path.suffix!r}")
    if isinstance(source, str) and "/" in source and not source.startswith((".", "/")) and not path.suffix:
        loaded = datasets.load_dataset(source, split=split or "train")
        return _read_hf_dataset(loaded, None, audio_column, column_map, rejected)
    raise ValueError(f"source {str(source)!r} is not an existing folder or manifest file, nor a Hub dataset id")


def _csv_lines(path: Path) -> Iterable[tuple[int, dict | None, str]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, row, ""


def _jsonl_lines(path: Path) -> Iterable[tuple[int, dict | None, str]]:
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                yield number, None, f"invalid JSON: {error}"
                continue
            if not isinstance(row, dict):
                yield number, None, f"invalid JSON: expected an object, got {type(row).__name__}"
                continue
            yield number, row, ""


def manifest_rows(manifest: str | os.PathLike, path_column: str | None = None) -> list[tuple[str, dict]]:
    """`(resolved audio path, row)` for every row of a `.csv` / `.jsonl` manifest, without reading any audio (what
    scores predictions against a manifest's captions and labels). The path column is ``path_column`` or, as
    `load_audio_dataset` reads it, the first of `PATH_COLUMNS` present; relative paths are relative to the manifest's
    folder. A row that is not an object, or has no path, raises `ValueError` naming the file and line."""
    path = Path(manifest)
    if path.suffix not in (".csv", ".jsonl"):
        raise ValueError(f"manifest {str(path)!r} must end in .csv or .jsonl, got {path.suffix!r}")
    out = []
    for number, row, problem in (_csv_lines(path) if path.suffix == ".csv" else _jsonl_lines(path)):
        if row is None:
            raise ValueError(f"{path}:{number}: {problem}")
        column = path_column or next((c for c in PATH_COLUMNS if c in row), None)
        if column is None or not isinstance(row.get(column), str) or not row[column].strip():
            raise ValueError(f"{path}:{number}: no audio path (column {column or list(PATH_COLUMNS)!r}; columns "
                             f"{sorted(row)})")
        out.append((str((path.parent / row[column]).resolve()), row))
    return out


def _read_manifest_rows(
    manifest: Path, lines: Iterable[tuple[int, dict | None, str]], column_map: dict[str, str], rejected: list[dict],
    base: Path | None = None,
) -> Iterable[dict]:
    base = base or manifest.parent
    path_column = None
    for number, row, problem in lines:
        source_id = f"{manifest.name}:{number}"
        if row is None:
            rejected.append(rejection(source_id, None, AudioInputError("bad_row", problem)))
            continue
        if path_column is None:
            path_column = column_map.get("path") or next((c for c in PATH_COLUMNS if c in row), None)
            if path_column is None:
                raise ValueError(
                    f"manifest {str(manifest)!r} needs an audio path column (one of {list(PATH_COLUMNS)}, or "
                    f"column_map={{'path': ...}}), got columns {sorted(row)}"
                )
        value = row.get(path_column)
        if not isinstance(value, str) or not value.strip():
            rejected.append(rejection(source_id, None, AudioInputError("bad_row", f"empty {path_column!r}")))
            continue
        audio_path = Path(value)
        audio_path = audio_path if audio_path.is_absolute() else base / audio_path
        try:
            start, end = _row_window(row, column_map)
        except AudioInputError as error:
            rejected.append(rejection(source_id, str(audio_path), error))
            continue
        consumed = {path_column, column_map.get("start", "start"), column_map.get("end", "end")}
        yield _record(source_id, str(audio_path.resolve()), None, start, end, row, column_map, consumed)


def _read_folder(folder: Path, column_map: dict[str, str], rejected: list[dict]) -> Iterable[dict]:
    for name, reader in (("metadata.csv", _csv_lines), ("metadata.jsonl", _jsonl_lines)):
        if (folder / name).is_file():
            return _read_manifest_rows(folder / name, reader(folder / name), column_map, rejected, base=folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise ValueError(f"folder {str(folder)!r} has no metadata.csv / metadata.jsonl and no audio files")
    return (_folder_record(folder, path, column_map) for path in files)


def _folder_record(folder: Path, path: Path, column_map: dict[str, str]) -> dict:
    relative = path.relative_to(folder)
    row = {"label": relative.parent.as_posix()} if relative.parent != Path(".") else {}
    return _record(f"{folder.name}/{relative.as_posix()}", str(path.resolve()), None, None, None, row, column_map,
                   set())


def _read_hf_dataset(
    dataset: datasets.Dataset | datasets.DatasetDict, split: str | None, audio_column: str, column_map: dict[str, str],
    rejected: list[dict],
) -> Iterable[dict]:
    if isinstance(dataset, datasets.DatasetDict):
        if split is None:
            raise ValueError(f"source is a DatasetDict with splits {list(dataset)}: pass split=...")
        dataset = dataset[split]
    if audio_column not in dataset.column_names:
        raise ValueError(f"dataset has no audio column {audio_column!r}; columns are {dataset.column_names}")
    if isinstance(dataset.features[audio_column], datasets.Audio):
        # File bytes or path, never decoded arrays: soundfile reads them without torchcodec.
        dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    return _hf_records(dataset, audio_column, column_map, rejected)


def _hf_records(
    dataset: datasets.Dataset, audio_column: str, column_map: dict[str, str], rejected: list[dict]
) -> Iterable[dict]:
    for index, row in enumerate(dataset):
        source_id = f"hub:{index}"
        audio = row[audio_column]
        path, data = None, None
        if isinstance(audio, Mapping):
            data = audio.get("bytes")
            if data is None and audio.get("path") and os.path.isfile(audio["path"]):
                path = str(Path(audio["path"]).resolve())
        elif isinstance(audio, str) and os.path.isfile(audio):
            path = str(Path(audio).resolve())
        if path is None and data is None:
            problem = AudioInputError("unreadable", f"no audio bytes or readable file in column {audio_column!r}")
            rejected.append(rejection(source_id, None, problem))
            continue
        try:
            start, end = _row_window(row, column_map)
        except AudioInputError as error:
            rejected.append(rejection(source_id, path, error))
            continue
        consumed = {audio_column, column_map.get("start", "start"), column_map.get("end", "end")}
        yield _record(source_id, path, data, start, end, row, column_map, consumed)


def _record(
    source_id: str, path: str | None, data: bytes | None, start: float | None, end: float | None, row: Mapping,
    column_map: dict[str, str], consumed: set[str],
) -> dict:
    text, extra = {}, {}
    mapped = {column_map.get(name, name): name for name in TEXT_COLUMNS}
    for column, value in row.items():
        if column in consumed:
            continue
        if column in mapped:
            text[mapped[column]] = _as_text(value)
        else:
            # An input column named like a schema column (e.g. its own "source_id") is kept under another name.
            name = f"input_{column}" if column in AUDIO_DATASET_COLUMNS else str(column)
            extra[name] = _as_text(value, join=False)
    return {"source_id": source_id, "audio_path": path, "audio_bytes": data, "start": start, "end": end,
            "text": text, "extra": extra}


def _as_text(value: Any, join: bool = True) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if join and isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or None
    return json.dumps(value) if not isinstance(value, (int, float, bool)) else str(value)


def _row_window(row: Mapping, column_map: dict[str, str]) -> tuple[float | None, float | None]:
    values = []
    for name in ("start", "end"):
        value = row.get(column_map.get(name, name))
        if value is None or (isinstance(value, str) and not value.strip()):
            values.append(None)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise AudioInputError("bad_window", f"bad {name}: {value!r} is not a number of seconds") from None
        if not math.isfinite(number) or number < 0:
            raise AudioInputError("bad_window", f"bad {name}: {value!r} is not a finite number of seconds >= 0")
        values.append(number)
    start, end = values
    if start is not None and end is not None and end <= start:
        raise AudioInputError("bad_window", f"zero-length window: end={end} s is not after start={start} s")
    return start, end


# --------------------------------------------------------------------------------------------------------
# probing and hashing


class _Prober:
    """Sampling rate, the clip's sample span [first, last) and the content hash of a record, without decoding the
    audio. A file's header and hash are read once per `load_audio_dataset` call, however many manifest rows
    (windows of one long recording) point into it: the last `max_files` files are remembered by path, size and
    modification time."""

    def __init__(self, max_files: int = 4096):
        self._file_info = functools.lru_cache(maxsize=max_files)(self._read_file_info)

    @staticmethod
    def _read_file_info(path: str, size: int, mtime_ns: int) -> tuple[int, int, str]:
        frames, rate = _audio_info(path, path)
        return frames, rate, _hash_file(path)

    def __call__(self, record: dict) -> dict:
        if record["audio_path"] is not None:
            path = record["audio_path"]
            if not os.path.isfile(path):
                raise AudioInputError("unreadable", f"no such file {path!r}")
            stat = os.stat(path)
            frames, rate, content_hash = self._file_info(path, stat.st_size, stat.st_mtime_ns)
        else:
            data = record["audio_bytes"]
            frames, rate = _audio_info(data, record["source_id"])
            content_hash = hashlib.sha256(data).hexdigest()
        if frames <= 0:
            raise AudioInputError("empty", "the file has 0 samples")
        first = 0 if record["start"] is None else round(record["start"] * rate)
        last = frames if record["end"] is None else min(frames, round(record["end"] * rate))
        if last <= first:
            raise AudioInputError(
                "bad_window",
                f"zero-length after trimming: window [{record['start']}, {record['end']}] s of a "
                f"{frames / rate:.3f} s file"
            )
        return {"sampling_rate": rate, "first": first, "last": last, "content_hash": content_hash}


def _row(record: dict, clip: dict, first: int, last: int, index: int, count: int, window: float | None) -> dict:
    rate = clip["sampling_rate"]
    start, end = first / rate, last / rate
    key = hashlib.sha256(f"{clip['content_hash']}:{first}:{last}:{rate}".encode()).hexdigest()[:32]
    padded = window is not None and (last - first) < round(window * rate)
    row = {
        "key": key,
        "source_id": record["source_id"],
        "audio_path": record["audio_path"],
        "audio_bytes": record["audio_bytes"],
        "content_hash": clip["content_hash"],
        "sampling_rate": rate,
        "start": start,
        "end": end,
        "duration": (last - first) / rate,
        "window_index": index,
        "num_windows": count,
        "windowing": "cut" if count > 1 else "whole",
        "padded": padded,
        **{name: record["text"].get(name) for name in TEXT_COLUMNS},
        **record["extra"],
    }
    return row


def _hash_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _audio_info(source: str | bytes, name: str) -> tuple[int, int]:
    """(frames, sampling rate) from the header when soundfile reads it, else by decoding (`load_audio`)."""
    try:
        info = sf.info(io.BytesIO(source) if isinstance(source, bytes) else source)
        return int(info.frames), int(info.samplerate)
    except (sf.SoundFileError, RuntimeError, OSError, TypeError):
        pass
    audio, rate = load_audio(io.BytesIO(source) if isinstance(source, bytes) else source)
    return audio.shape[-1], rate


def _optional_seconds(value: Any, name: str, *, positive: bool) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        expected = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number of seconds {expected} or None, got {value!r}")
    return float(value)
