"""Pre-tokenised audio on disk: the record of the tokenizer that made the codes, and loading with a check.

A pre-tokenised folder (written by `training/pretokenize.py`) holds

    tokenizer.json    the tokenizer record (`tokenizer_record`): checkpoint, weights hash, codebook size,
                      frame rate, sample rate, hop length
    data/             the Arrow dataset (`datasets.load_from_disk`): the rows of `load_audio_dataset` (without
                      `audio_bytes`) plus `codes` (list of int32, one per frame) and `num_frames`
    rejected.jsonl    one `{"key", "source_id", "audio_path", "reason"}` line per row that could not be used
    summary.json      counts of the last run
    parts/            the per-process work files that make a run incremental and resumable

Codes only mean something to the tokenizer that made them: `load_pretokenized` refuses a folder whose
codebook size or frame rate differs from the configured tokenizer's, naming both.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import datasets
import torch

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
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
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
        path: the output folder of `training/pretokenize.py`.
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
