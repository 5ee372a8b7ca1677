"""Pre-tokenised audio on disk: writing it once (`pretokenize`), and loading it with a check (`load_pretokenized`).

A pre-tokenised folder (written by `pretokenize`, which `training/pretokenize.py` runs) holds

    tokenizer.json    the tokenizer record (`tokenizer_record`): checkpoint, weights hash, codebook size,
                      frame rate, sample rate, hop length
    data/             the Arrow dataset (`datasets.load_from_disk`): the rows of `load_audio_dataset` (without
                      `audio_bytes`) plus `codes` (list of int32, one per frame) and `num_frames`
    rejected.jsonl    one `{"key", "source_id", "audio_path", "category", "reason"}` line per row that could not
                      be used (`category` from `audio_io.AUDIO_ERROR_CATEGORIES`)
    summary.json      counts of the last run
    parts/            the per-process work files that make a run incremental and resumable

Codes only mean something to the tokenizer that made them: `load_pretokenized` refuses a folder whose
codebook size or frame rate differs from the configured tokenizer's, naming both.

How `pretokenize` works:

- Sharding: the rows still to encode are sorted by key and process i of n takes every n-th one; each process
  writes its own part files, and the main process assembles `data/` once all have finished.
- Incremental and resumable: rows are keyed by a hash of their audio content and window (`key`). Codes found
  in `parts/` are reused, so a re-run after new files were added encodes only the new ones, and a run that was
  interrupted goes on where its last part file ended (at most `part_rows` rows per process are redone).
  A folder made by a different tokenizer (weights hash) is refused unless `overwrite=True`.
- Bad rows never stop a run: unreadable, empty, NaN/infinite audio or a bad window are skipped, written to
  `rejected.jsonl` with their category and reason, and counted in the summary; every other row gets its codes
  (`rows = kept + rejected` is checked at the end).
- Batching: each window is zero-padded at its end to a multiple of `pad_to_seconds` (default 1 s) and batched
  with windows of the same padded length; its codes are cut back to its own frames (`tokenizer.num_frames`).
  A row's codes therefore depend on the row and that setting only, never on which rows shared its batch (the
  encoder is causal and the front ends see zeros past a clip's end either way).
- Memory does not grow with the rows: audio is read one batch at a time, codes go to part files as they fill,
  the bookkeeping over keys runs on Arrow arrays (not Python lists), and `data/` is assembled batch by batch, each
  row's codes looked up by key in the memory-mapped part files (`benchmarks/bench_streaming.py` measures it).

The tokenizer is anything with the codec contract: `encode(input_values).audio_codes` (batch, 1, frames),
`num_frames`, `sample_rate`, `channels`, `hop_length`, `codebook_size`, `frame_rate` and a `config`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from tqdm.auto import tqdm

from .audio_datasets import read_row_audio, scratch_map_arguments
from .audio_io import AudioInputError

logger = logging.getLogger(__name__)

TOKENIZER_RECORD = "tokenizer.json"
DATA_DIR = "data"
REJECTED_FILE = "rejected.jsonl"
SUMMARY_FILE = "summary.json"
PARTS_DIR = "parts"


def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        # flattened first: a 0-dim tensor (a batch-norm step counter) cannot be viewed as bytes
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def tokenizer_record(model: Any, checkpoint: str | None = None) -> dict:
    """What identifies the tokenizer that produced a set of codes (written to `tokenizer.json`)."""
    return {
        "checkpoint": checkpoint,
        "model_type": model.config.model_type,
        "weights_sha256": weights_sha256(model),
        "codebook_size": int(model.codebook_size),
        "frame_rate": float(model.frame_rate),
        "sample_rate": int(model.sample_rate),
        "hop_length": int(model.hop_length),
        "audio_channels": int(model.channels),
    }


def read_tokenizer_record(path: str | Path) -> dict:
    """The tokenizer record of a pre-tokenised folder."""
    record_path = Path(path) / TOKENIZER_RECORD
    if not record_path.is_file():
        raise ValueError(f"{str(path)!r} is not a pre-tokenised folder: it has no {TOKENIZER_RECORD}")
    with record_path.open() as handle:
        return json.load(handle)


def check_tokenizer_record(record: dict, *, codebook_size: int, frame_rate: float, where: str = "codes") -> None:
    """Raises `ValueError` naming both settings when the codes were made with another codebook size or frame rate."""
    same_codebook = int(record["codebook_size"]) == int(codebook_size)
    same_rate = math.isclose(float(record["frame_rate"]), float(frame_rate), rel_tol=1e-6)
    if not (same_codebook and same_rate):
        raise ValueError(
            f"{where} were made by a tokenizer with codebook_size={record['codebook_size']} and frame_rate="
            f"{float(record['frame_rate']):.4f} Hz (checkpoint {record.get('checkpoint')!r}), but the configured "
            f"tokenizer has codebook_size={int(codebook_size)} and frame_rate={float(frame_rate):.4f} Hz: "
            "pre-tokenise the data again with the configured tokenizer"
        )


def load_pretokenized(
    path: str | Path,
    *,
    tokenizer: Any | None = None,
    codebook_size: int | None = None,
    frame_rate: float | None = None,
) -> datasets.Dataset:
    """
    Loads a pre-tokenised dataset, refusing codes of an incompatible tokenizer.

    Args:
        path: the output folder of `pretokenize` (or `training/pretokenize.py`).
        tokenizer: an `MSNTokenizerModel` or `MSNTokenizerConfig` the codes must fit (its `codebook_size` and
            `frame_rate`); or give `codebook_size` and `frame_rate` directly. With neither, nothing is checked.

    Returns:
        `datasets.Dataset` with the columns of `load_audio_dataset` (but `audio_bytes`) plus `codes`
        (list of int32, one per frame at `frame_rate`) and `num_frames`.
    """
    record = read_tokenizer_record(path)
    if tokenizer is not None:
        codebook_size = tokenizer.codebook_size if codebook_size is None else codebook_size
        frame_rate = tokenizer.frame_rate if frame_rate is None else frame_rate
    if (codebook_size is None) != (frame_rate is None):
        raise ValueError(
            f"give both codebook_size and frame_rate (or a tokenizer), got codebook_size={codebook_size!r}, "
            f"frame_rate={frame_rate!r}"
        )
    if codebook_size is not None:
        where = f"codes in {str(path)!r}"
        check_tokenizer_record(record, codebook_size=codebook_size, frame_rate=frame_rate, where=where)
    data_dir = Path(path) / DATA_DIR
    if not data_dir.is_dir():
        raise ValueError(f"{str(path)!r} has no {DATA_DIR}/ folder: the pre-tokenisation run did not finish")
    return datasets.load_from_disk(str(data_dir))


# ----------------------------------------------------------------------------------------------------------
# writing: pretokenize
# ----------------------------------------------------------------------------------------------------------


_PART_SCHEMA = pa.schema([("key", pa.string()), ("codes", pa.list_(pa.int32()))])


@dataclass
class PretokenizeSummary:
    """Counts of one run. `rows == kept + rejected` always holds."""

    rows: int
    kept: int
    encoded: int
    reused: int
    rejected: int
    reasons: dict = field(default_factory=dict)
    encoded_audio_seconds: float = 0.0
    seconds: float = 0.0
    output_dir: str = ""

    def __str__(self) -> str:
        speed = self.encoded_audio_seconds / max(self.seconds, 1e-9)
        reasons = f" {self.reasons}" if self.reasons else ""
        return (
            f"pre-tokenised {self.rows} rows into {self.output_dir}: {self.kept} kept ({self.encoded} encoded now, "
            f"{self.reused} reused), {self.rejected} rejected{reasons}; "
            f"{self.encoded_audio_seconds / 3600:.3f} audio-hours encoded in {self.seconds:.1f} s "
            f"({speed:.1f} audio-hours per hour)"
        )


class _Processes:
    """Rank, world size and barrier from accelerate, or a single process without it."""

    def __init__(self, accelerator=None):
        self.accelerator = accelerator
        self.rank = accelerator.process_index if accelerator else 0
        self.world = accelerator.num_processes if accelerator else 1
        self.is_main = self.rank == 0

    def barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()


def pretokenize(
    dataset: datasets.Dataset,
    tokenizer,
    output_dir: str | os.PathLike,
    *,
    batch_size: int = 8,
    rejected: Sequence[dict] = (),
    accelerator=None,
    checkpoint: str | None = None,
    overwrite: bool = False,
    part_rows: int = 256,
    pad_to_seconds: float = 1.0,
    progress: bool = True,
) -> PretokenizeSummary | None:
    """
    Encodes every row of `dataset` (the schema of `load_audio_dataset`) that `output_dir` has no codes for.

    Args:
        dataset: rows of `load_audio_dataset`.
        tokenizer: an `MSNTokenizerModel` (anything with `encode`, `sample_rate`, `channels`, `hop_length`,
            `codebook_size`, `frame_rate` and a `config`).
        output_dir: the pre-tokenised folder (its layout is in this module's docstring).
        batch_size: windows per `encode` call.
        rejected: rows already rejected while loading (`load_audio_dataset(..., return_rejected=True)`), written
            to `rejected.jsonl` and counted.
        accelerator: an `accelerate.Accelerator` to shard the work over its processes (None: one process).
        checkpoint: name or path of the tokenizer, stored in `tokenizer.json`.
        overwrite: replace a folder that was made by another tokenizer instead of refusing it.
        part_rows: codes are flushed to a part file every `part_rows` rows (the work an interruption can lose).
        pad_to_seconds: windows are zero-padded to a multiple of this many seconds for batching (0: no padding,
            only windows of exactly equal length share a batch).

    Returns:
        The run's `PretokenizeSummary` on the main process, `None` on the others.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(part_rows, bool) or not isinstance(part_rows, int) or part_rows < 1:
        raise ValueError(f"part_rows must be a positive integer, got {part_rows!r}")
    if not isinstance(pad_to_seconds, (int, float)) or isinstance(pad_to_seconds, bool) or pad_to_seconds < 0:
        raise ValueError(f"pad_to_seconds must be a number of seconds >= 0, got {pad_to_seconds!r}")
    if "key" not in dataset.column_names:
        raise ValueError(f"dataset must have the columns of load_audio_dataset; got {dataset.column_names}")
    began = time.perf_counter()
    procs = _Processes(accelerator)
    output_dir = Path(output_dir)
    parts_dir = output_dir / PARTS_DIR
    record = tokenizer_record(tokenizer, checkpoint)
    if procs.is_main:
        _claim_output(output_dir, record, overwrite)
    procs.barrier()

    # keys as Arrow arrays, not Python lists: a manifest of 100k+ windows costs a few MiB here
    done = _read_parts(parts_dir).column("key").combine_chunks()
    keys = dataset.select_columns(["key"]).with_format("arrow")[:].column("key").combine_chunks()
    todo = pc.unique(keys.filter(pc.invert(pc.is_in(keys, value_set=done))))
    todo = todo.take(pc.sort_indices(todo))
    mine = todo.take(pa.array(range(procs.rank, len(todo), procs.world), type=pa.int64()))
    # the first row of each of this process's keys: a window listed twice is encoded once
    indices = np.sort(pc.index_in(mine, value_set=keys).to_numpy(zero_copy_only=False))
    del keys, todo, mine
    pa.default_memory_pool().release_unused()  # the hash tables above are gone: give their pages back
    quantum = max(1, round(pad_to_seconds * tokenizer.sample_rate))
    _encode_rows(dataset.select(indices), tokenizer, parts_dir, batch_size, part_rows, quantum, procs, progress)
    procs.barrier()
    if not procs.is_main:
        return None
    summary = _assemble(dataset, output_dir, list(rejected), done_before=done)
    summary.seconds = time.perf_counter() - began
    with open(output_dir / SUMMARY_FILE, "w") as handle:
        json.dump(asdict(summary), handle, indent=1)
    return summary


def _claim_output(output_dir: Path, record: dict, overwrite: bool) -> None:
    record_path = output_dir / TOKENIZER_RECORD
    if record_path.exists():
        with record_path.open() as handle:
            previous = json.load(handle)
        if previous.get("weights_sha256") != record["weights_sha256"]:
            if not overwrite:
                raise ValueError(
                    f"{str(output_dir)!r} holds codes of another tokenizer (checkpoint {previous.get('checkpoint')!r}, "
                    f"weights sha256 {previous.get('weights_sha256', '?')[:12]}, codebook_size "
                    f"{previous.get('codebook_size')}, frame_rate {previous.get('frame_rate')}) than the one given "
                    f"(checkpoint {record['checkpoint']!r}, weights sha256 {record['weights_sha256'][:12]}, "
                    f"codebook_size {record['codebook_size']}, frame_rate {record['frame_rate']}): use another "
                    "output folder or overwrite=True"
                )
            logger.warning("overwriting %s (made by another tokenizer)", output_dir)
            # Only the codes go: parts/ also holds the row index that main() wrote for this very run.
            for part in (output_dir / PARTS_DIR).glob("part-*.arrow"):
                part.unlink()
            shutil.rmtree(output_dir / DATA_DIR, ignore_errors=True)
    (output_dir / PARTS_DIR).mkdir(parents=True, exist_ok=True)
    for stale in (output_dir / PARTS_DIR).glob("rejected-*.jsonl"):  # rejected rows are retried every run
        stale.unlink()
    with record_path.open("w") as handle:
        json.dump(record, handle, indent=1)


def _read_parts(parts_dir: Path) -> pa.Table:
    """`key` and `codes` of every part file as one memory-mapped table (the codes stay on disk until read)."""
    tables = [pa.ipc.open_file(pa.memory_map(str(path))).read_all() for path in sorted(parts_dir.glob("part-*.arrow"))]
    return pa.concat_tables(tables) if tables else _PART_SCHEMA.empty_table()


def _write_part(parts_dir: Path, rank: int, keys: list[str], codes: list[list[int]]) -> None:
    table = pa.table({"key": keys, "codes": codes}, schema=_PART_SCHEMA)
    name = f"part-{rank:03d}-{time.time_ns()}-{uuid.uuid4().hex[:8]}.arrow"
    temporary = parts_dir / f".{name}.tmp"
    with pa.OSFile(str(temporary), "wb") as sink, pa.ipc.new_file(sink, _PART_SCHEMA) as writer:
        writer.write_table(table)
    os.replace(temporary, parts_dir / name)  # atomic: a part is either whole or absent


def padded_length(num_samples: int, quantum: int) -> int:
    """`num_samples` rounded up to a whole number of `quantum` samples: the length a window is batched at."""
    return -(-num_samples // quantum) * quantum


def encode_padded(tokenizer, audios: Sequence[torch.Tensor], length: int) -> list[list[int]]:
    """Codes of each window (channels, samples <= length), zero-padded at its end to `length` and encoded in one
    batch, cut back to the window's own frames (`tokenizer.num_frames(samples)`, the model's one rule)."""
    batch = torch.zeros(len(audios), tokenizer.channels, length)
    for index, audio in enumerate(audios):
        batch[index, :, : audio.shape[-1]] = audio
    codes = tokenizer.encode(batch).audio_codes[:, 0].tolist()
    return [row[: tokenizer.num_frames(audio.shape[-1])] for row, audio in zip(codes, audios, strict=True)]


def _prepare(row: dict, tokenizer) -> torch.Tensor:
    """Decoded, resampled, channel-mapped audio (channels, samples) of one row, or `AudioInputError`."""
    audio, _ = read_row_audio(row, tokenizer.sample_rate, tokenizer.channels)
    return torch.from_numpy(np.ascontiguousarray(audio))


def _encode_rows(
    rows: datasets.Dataset, tokenizer, parts_dir: Path, batch_size: int, part_rows: int, quantum: int,
    procs: _Processes, progress: bool,
) -> None:
    """Encodes this process's rows in batches of equal padded length; codes go to part files, failures to
    this process's `rejected-<rank>.jsonl`."""
    buckets: dict[int, list[tuple[str, torch.Tensor]]] = defaultdict(list)
    pending: dict[str, list[int]] = {}

    def flush_bucket(length: int) -> None:
        items = buckets.pop(length)
        codes = encode_padded(tokenizer, [audio for _, audio in items], length)
        pending.update(zip((key for key, _ in items), codes, strict=True))
        if len(pending) >= part_rows:
            flush_part()

    def flush_part() -> None:
        if pending:
            _write_part(parts_dir, procs.rank, list(pending), list(pending.values()))
            pending.clear()

    with open(parts_dir / f"rejected-{procs.rank:03d}.jsonl", "w") as rejects:
        for row in tqdm(rows, desc=f"encode [{procs.rank}]", disable=not progress, position=procs.rank):
            try:
                audio = _prepare(row, tokenizer)
            except AudioInputError as error:
                logger.warning("skipping %s: %s", row["audio_path"] or row["source_id"], error)
                rejects.write(json.dumps({"key": row["key"], "category": error.category, "reason": str(error)}) + "\n")
                rejects.flush()
                continue
            length = padded_length(audio.shape[-1], quantum)
            buckets[length].append((row["key"], audio))
            if len(buckets[length]) >= batch_size:
                flush_bucket(length)
        for length in sorted(buckets):
            flush_bucket(length)
        flush_part()


def _assemble(
    dataset: datasets.Dataset, output_dir: Path, load_rejected: list[dict], done_before: pa.Array
) -> PretokenizeSummary:
    """Main process: joins the rows with the codes of all part files into `data/`, writes `rejected.jsonl`.

    The join runs batch by batch in Arrow (`map` over the rows, codes looked up by key in the memory-mapped parts),
    so memory does not grow with the number of rows: the result is written to `map`'s cache file, then saved."""
    parts_dir = output_dir / PARTS_DIR
    parts = _read_parts(parts_dir)
    part_keys, part_codes = parts.column("key").combine_chunks(), parts.column("codes")
    rejection_by_key = {}
    for path in sorted(parts_dir.glob("rejected-*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                rejection_by_key[item["key"]] = item
    row_rejects: list[dict] = []
    counts = {"kept": 0, "reused": 0}
    new_rows: list[pa.Table] = []

    def attach_codes(batch: pa.Table) -> pa.Table:
        positions = pc.index_in(batch.column("key"), value_set=part_keys)
        found = pc.is_valid(positions)
        for index in np.flatnonzero(~found.to_numpy(zero_copy_only=False)):
            row = batch.slice(int(index), 1).to_pylist()[0]
            if row["key"] not in rejection_by_key:
                raise RuntimeError(f"row with key {row['key']} got neither codes nor a rejection: this is a bug")
            item = rejection_by_key[row["key"]]
            row_rejects.append({"key": row["key"], "source_id": row["source_id"], "audio_path": row["audio_path"],
                                "category": item["category"], "reason": item["reason"]})
        kept = batch.filter(found)
        codes = part_codes.take(positions.filter(found))
        reused = pc.is_in(kept.column("key"), value_set=done_before)
        counts["kept"] += len(kept)
        counts["reused"] += int(pc.sum(reused).as_py() or 0)
        new_rows.append(kept.select(["key", "duration"]).filter(pc.invert(reused)))
        return kept.append_column("codes", codes).append_column(
            "num_frames", pc.list_value_length(codes).cast(pa.int32()))

    source = dataset.remove_columns([c for c in ("audio_bytes",) if c in dataset.column_names])
    features = datasets.Features({**source.features, "codes": datasets.List(datasets.Value("int32")),
                                  "num_frames": datasets.Value("int32")})
    table = source.with_format("arrow").map(
        attach_codes, batched=True, batch_size=10_000, remove_columns=source.column_names, features=features,
        desc="join codes", **scratch_map_arguments("pretokenize-join"),
    ).with_format(None)
    temporary = output_dir / f".{DATA_DIR}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    table.save_to_disk(str(temporary))
    shutil.rmtree(output_dir / DATA_DIR, ignore_errors=True)
    os.replace(temporary, output_dir / DATA_DIR)

    all_rejected = [{"key": None, **item} for item in load_rejected] + row_rejects
    with open(output_dir / REJECTED_FILE, "w") as handle:
        for item in all_rejected:
            handle.write(json.dumps(item) + "\n")
    # a window listed twice was encoded once: count the new keys once, as their audio seconds
    new = pa.concat_tables(new_rows) if new_rows else pa.table({"key": pa.array([], pa.string()),
                                                                "duration": pa.array([], pa.float64())})
    new = new.group_by("key").aggregate([("duration", "max")])
    summary = PretokenizeSummary(
        rows=len(dataset) + len(load_rejected),
        kept=counts["kept"],
        encoded=new.num_rows,
        reused=counts["reused"],
        rejected=len(all_rejected),
        reasons=dict(Counter(item["category"] for item in all_rejected)),
        encoded_audio_seconds=float(pc.sum(new.column("duration_max")).as_py() or 0.0),
        output_dir=str(output_dir),
    )
    if summary.rows != summary.kept + summary.rejected:
        raise RuntimeError(f"lost rows: {summary.rows} != {summary.kept} kept + {summary.rejected} rejected")
    return summary
