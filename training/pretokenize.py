"""Run the sound tokenizer once over a dataset and store the codes as an Arrow dataset.

    accelerate launch training/pretokenize.py --tokenizer runs/demo/tokenizer_fm/final \
        --data work/corpus/manifest.csv --output work/pretokenized/corpus [--batch_size 8]

`--data` is anything `load_audio_dataset` reads (audio folder, CSV/JSONL manifest, Hub dataset id). Clips are
cut into windows of the tokenizer's `clip_seconds` (override with `--window_seconds` / `--hop_seconds`).

- Sharding: the rows still to encode are sorted by key and process i of n takes every n-th one; each process
  writes its own part files, and the main process assembles `data/` once all have finished.
- Incremental and resumable: rows are keyed by a hash of their audio content and window (`key`). Codes found
  in `parts/` are reused, so a re-run after new files were added encodes only the new ones, and a run that was
  interrupted goes on where its last part file ended (at most `--part_rows` rows per process are redone).
  A folder made by a different tokenizer (weights hash) is refused unless `--overwrite` is given.
- Bad rows never stop a run: unreadable, empty, NaN/infinite, zero-length after trimming (or shorter than one
  token frame) are skipped, written to `rejected.jsonl` with the reason, and counted in the summary; every
  other row gets its codes (`rows = kept + rejected` is checked at the end).
- Batching: each window is zero-padded at its end to a multiple of `--pad_to_seconds` (default 1 s) and batched
  with windows of the same padded length; its codes are cut back to its real frames. A row's codes therefore
  depend on the row and that setting only, never on which rows shared its batch (the encoder is causal, so the
  padding can only touch the last frame or two through the front end's receptive field).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from soundlm.processing.audio_datasets import load_audio_dataset, read_row_audio
from soundlm.training.common.pretokenized import (
    DATA_DIR,
    PARTS_DIR,
    REJECTED_FILE,
    SUMMARY_FILE,
    TOKENIZER_RECORD,
    tokenizer_record,
)

logger = logging.getLogger("pretokenize")

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
        output_dir: the pre-tokenised folder (see `training/common/pretokenized.py`).
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

    done = _read_parts(parts_dir)
    keys = dataset["key"]
    todo_keys = sorted({key for key in keys if key not in done})
    mine = set(todo_keys[procs.rank :: procs.world])
    indices = [index for index, key in enumerate(keys) if key in mine]
    quantum = max(1, round(pad_to_seconds * tokenizer.sample_rate))
    _encode_rows(dataset.select(indices), tokenizer, parts_dir, batch_size, part_rows, quantum, procs, progress)
    procs.barrier()
    if not procs.is_main:
        return None
    summary = _assemble(dataset, output_dir, list(rejected), done_before=set(done))
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


def _read_parts(parts_dir: Path) -> dict[str, list[int]]:
    codes: dict[str, list[int]] = {}
    for path in sorted(parts_dir.glob("part-*.arrow")):
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        codes.update(zip(table.column("key").to_pylist(), table.column("codes").to_pylist(), strict=True))
    return codes


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
    batch, cut back to the window's own frames (`samples // hop_length`)."""
    batch = torch.zeros(len(audios), tokenizer.channels, length)
    for index, audio in enumerate(audios):
        batch[index, :, : audio.shape[-1]] = audio
    codes = tokenizer.encode(batch).tolist()
    return [row[: audio.shape[-1] // tokenizer.hop_length] for row, audio in zip(codes, audios, strict=True)]


def _prepare(row: dict, tokenizer) -> torch.Tensor:
    """Decoded, resampled, channel-mapped audio (channels, samples) of one row, or ValueError with a reason."""
    audio, _ = read_row_audio(row, tokenizer.sample_rate, tokenizer.channels)
    if audio.shape[-1] < tokenizer.hop_length:
        raise ValueError(
            f"zero-length after trimming: {audio.shape[-1]} samples give no token frame (hop "
            f"{tokenizer.hop_length} samples)"
        )
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

    seen: set[str] = set()
    with open(parts_dir / f"rejected-{procs.rank:03d}.jsonl", "w") as rejects:
        for row in tqdm(rows, desc=f"encode [{procs.rank}]", disable=not progress, position=procs.rank):
            if row["key"] in seen:  # the same audio window listed twice is encoded once
                continue
            seen.add(row["key"])
            try:
                audio = _prepare(row, tokenizer)
            except ValueError as error:
                logger.warning("skipping %s: %s", row["audio_path"] or row["source_id"], error)
                rejects.write(json.dumps({"key": row["key"], "reason": str(error)}) + "\n")
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
    dataset: datasets.Dataset, output_dir: Path, load_rejected: list[dict], done_before: set[str]
) -> PretokenizeSummary:
    """Main process: joins the rows with the codes of all part files into `data/`, writes `rejected.jsonl`."""
    parts_dir = output_dir / PARTS_DIR
    codes_by_key = _read_parts(parts_dir)
    reason_by_key = {}
    for path in sorted(parts_dir.glob("rejected-*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                reason_by_key[item["key"]] = item["reason"]

    keys, durations = dataset["key"], dataset["duration"]
    keep, row_rejects = [], []
    for index, key in enumerate(keys):
        if key in codes_by_key:
            keep.append(index)
        elif key in reason_by_key:
            row = dataset[index]
            row_rejects.append({"key": key, "source_id": row["source_id"], "audio_path": row["audio_path"],
                                "reason": reason_by_key[key]})
        else:
            raise RuntimeError(f"row {index} (key {key}) got neither codes nor a rejection: this is a bug")

    table = dataset.remove_columns([c for c in ("audio_bytes",) if c in dataset.column_names]).select(keep)
    kept_codes = [codes_by_key[keys[i]] for i in keep]
    table = table.add_column("codes", kept_codes, feature=datasets.List(datasets.Value("int32")))
    table = table.add_column("num_frames", [len(c) for c in kept_codes], feature=datasets.Value("int32"))
    temporary = output_dir / f".{DATA_DIR}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    table.save_to_disk(str(temporary))
    shutil.rmtree(output_dir / DATA_DIR, ignore_errors=True)
    os.replace(temporary, output_dir / DATA_DIR)

    all_rejected = [{"key": None, **item} for item in load_rejected] + row_rejects
    with open(output_dir / REJECTED_FILE, "w") as handle:
        for item in all_rejected:
            handle.write(json.dumps(item) + "\n")
    new = {keys[i]: durations[i] for i in keep if keys[i] not in done_before}
    summary = PretokenizeSummary(
        rows=len(keys) + len(load_rejected),
        kept=len(keep),
        encoded=len(new),
        reused=sum(1 for i in keep if keys[i] in done_before),
        rejected=len(all_rejected),
        reasons=dict(Counter(item["reason"].split(":")[0] for item in all_rejected)),
        encoded_audio_seconds=float(sum(new.values())),
        output_dir=str(output_dir),
    )
    if summary.rows != summary.kept + summary.rejected:
        raise RuntimeError(f"lost rows: {summary.rows} != {summary.kept} kept + {summary.rejected} rejected")
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, help="folder of a saved MSNTokenizerModel")
    parser.add_argument("--data", required=True, help="audio folder, .csv/.jsonl manifest or Hub dataset id")
    parser.add_argument("--output", required=True, help="the pre-tokenised folder to create or update")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--window_seconds", type=float, default=None, help="default: the tokenizer's clip_seconds")
    parser.add_argument("--hop_seconds", type=float, default=None, help="default: the window (no overlap)")
    parser.add_argument("--min_window_seconds", type=float, default=None,
                        help="drop a last window shorter than this (default: one token frame)")
    parser.add_argument("--split", default=None, help="split of a Hub dataset")
    parser.add_argument("--audio_column", default="audio")
    parser.add_argument("--part_rows", type=int, default=256)
    parser.add_argument("--pad_to_seconds", type=float, default=1.0, help="batching granularity (see docstring)")
    parser.add_argument("--overwrite", action="store_true", help="replace codes made by another tokenizer")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> PretokenizeSummary | None:
    from accelerate import Accelerator

    from soundlm import MSNTokenizerModel

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    accelerator = Accelerator()
    tokenizer = MSNTokenizerModel.from_pretrained(args.tokenizer).eval()
    window = args.window_seconds if args.window_seconds is not None else tokenizer.config.clip_seconds
    shortest = args.min_window_seconds if args.min_window_seconds is not None else 1.0 / tokenizer.frame_rate
    output = Path(args.output)
    index_dir = output / PARTS_DIR / "index"
    if accelerator.is_main_process:  # one process reads and hashes the files; the others load its index
        dataset, rejected = load_audio_dataset(
            args.data, window_seconds=window, hop_seconds=args.hop_seconds, min_window_seconds=shortest,
            split=args.split, audio_column=args.audio_column, return_rejected=True,
        )
        output.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(index_dir, ignore_errors=True)
        dataset.save_to_disk(str(index_dir))
        with open(output / PARTS_DIR / "index-rejected.json", "w") as handle:
            json.dump(rejected, handle)
    accelerator.wait_for_everyone()
    dataset = datasets.load_from_disk(str(index_dir))
    with open(output / PARTS_DIR / "index-rejected.json") as handle:
        rejected = json.load(handle)
    summary = pretokenize(
        dataset, tokenizer, output, batch_size=args.batch_size, rejected=rejected, accelerator=accelerator,
        checkpoint=args.tokenizer, overwrite=args.overwrite, part_rows=args.part_rows,
        pad_to_seconds=args.pad_to_seconds,
    )
    if summary is not None:
        print(summary)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


if __name__ == "__main__":
    main()
