"""Front-end latents of an audio dataset, computed once and cached by content.

The tokenizer's front end is frozen, so its latents never change during training: the tokenizer trains on this
cache, never on audio. The rows come from `load_audio_dataset`, the package's one way in (audio folder, CSV or
JSONL manifest, Hub dataset), each a window of audio keyed by the sha256 of its content and window (`key`).

The store is content-addressed: `<cache_dir>/latents-<front-end hash>/part-*.safetensors`, one tensor per row
key, where the front-end hash covers the front end's type, config and weights. So a renamed, moved, touched or
re-listed file reuses its latents, a new file is the only thing encoded on the next run, a changed file gets a
new key, and another front end gets another folder. Part files are written whole and then renamed into place,
so an interrupted run never leaves a part that looks complete.

Rows that cannot be used (unreadable, empty or NaN audio, a bad window...) are skipped with a logged reason and
counted by category (`audio_io.AUDIO_ERROR_CATEGORIES`); they never stop the run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .audio_datasets import load_audio_dataset, read_row_audio, rejection
from .audio_io import AudioInputError
from .pretokenized import weights_sha256

logger = logging.getLogger(__name__)

__all__ = ["LatentCache", "build_latent_cache", "frontend_signature"]


@dataclass
class LatentCache:
    """Latents of many clips, concatenated.

    Args:
        latents (`torch.FloatTensor` of shape `(total_frames, latent_dim)`): all clips' frames, end to end.
        offsets (`torch.LongTensor` of shape `(num_clips + 1,)`): clip i is ``latents[offsets[i]:offsets[i+1]]``.
        rows (`list[dict]`): the `load_audio_dataset` row of each clip (without `audio_bytes`), plus
            ``num_frames``.
        skipped (`list[dict]`): ``{"source_id", "audio_path", "category", "reason"}`` of each row not used.
    """

    latents: torch.Tensor
    offsets: torch.Tensor
    rows: list[dict]
    skipped: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def clip(self, index: int) -> torch.Tensor:
        """Latents (frames, latent_dim) of clip ``index``."""
        return self.latents[self.offsets[index] : self.offsets[index + 1]]

    def select(self, **where: str) -> list[int]:
        """Indices of the clips whose row matches every ``column=value`` given, e.g. ``split="train"``."""
        return [i for i, row in enumerate(self.rows) if all(row.get(k) == v for k, v in where.items())]

    def statistics(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std (latent_dim,) over all frames of the given clips."""
        frames = torch.cat([self.clip(i) for i in indices]).double()
        return frames.mean(0).float(), frames.std(0).clamp(min=1e-5).float()


def frontend_signature(model: Any) -> dict:
    """What identifies a tokenizer's front end: its type, its config and the sha256 of its weights (empty for the
    weight-free mel front end). Two tokenizers with the same signature produce the same latents."""
    config = model.config
    return {
        "frontend_type": config.frontend_type,
        "frontend_config": config.frontend_config,
        "frontend_weights_sha256": weights_sha256(model.frontend),
    }


def _store_dir(cache_dir: Path, signature: dict) -> Path:
    digest = hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / f"latents-{digest}"


def _read_store(store: Path, keys: set[str]) -> dict[str, torch.Tensor]:
    """The cached latents of ``keys`` found in the store's part files."""
    found: dict[str, torch.Tensor] = {}
    for part in sorted(store.glob("part-*.safetensors")):
        with safe_open(str(part), framework="pt") as handle:
            for key in keys.intersection(handle.keys()) - found.keys():
                found[key] = handle.get_tensor(key)
    return found


def _write_part(store: Path, latents: dict[str, torch.Tensor]) -> None:
    store.mkdir(parents=True, exist_ok=True)
    name = f"part-{uuid.uuid4().hex[:12]}.safetensors"
    temporary = store / f".{name}.tmp"
    save_file({key: value.contiguous() for key, value in latents.items()}, str(temporary))
    os.replace(temporary, store / name)  # atomic: a part is either whole or absent


def _encode_row(row: dict, model: Any) -> torch.Tensor:
    """Latents (frames, latent_dim) of one row, or `AudioInputError` with a category."""
    audio, _ = read_row_audio(row, model.sample_rate, model.channels)
    latents = model.audio_to_latents(torch.from_numpy(np.ascontiguousarray(audio))[None])[0]
    if not bool(torch.isfinite(latents).all()):
        raise AudioInputError("non_finite", f"the front end returned non-finite latents for {row['source_id']}")
    return latents.float()


def build_latent_cache(
    source: str | os.PathLike | datasets.Dataset,
    model: Any,
    cache_dir: str | os.PathLike,
    window_seconds: float | None = 10.0,
    **dataset_kwargs: Any,
) -> LatentCache:
    """
    Front-end latents of every window of ``source``, encoding only the windows the cache does not hold yet.

    Args:
        source: anything `load_audio_dataset` reads (folder, `.csv` / `.jsonl` manifest, `datasets.Dataset`, Hub id).
        model: the tokenizer whose front end makes the latents (`MSNTokenizerModel`: its `audio_to_latents`,
            `sample_rate`, `channels`, `frame_rate`, `config` and `frontend`).
        cache_dir: the cache folder (one content-addressed store per front end inside).
        window_seconds: clips longer than this are cut into windows of this length (None: whole clips); a last
            window shorter than one token frame is dropped.
        dataset_kwargs: more arguments of `load_audio_dataset` (`hop_seconds`, `split`, `column_map`, ...).

    Returns:
        `LatentCache` of the usable rows, in the dataset's order.
    """
    dataset_kwargs.setdefault("min_window_seconds", 1.0 / model.frame_rate)
    dataset, rejected = load_audio_dataset(source, window_seconds=window_seconds, return_rejected=True,
                                           **dataset_kwargs)
    store = _store_dir(Path(cache_dir), frontend_signature(model))
    keys = dataset["key"]
    cached = _read_store(store, set(keys))
    new: dict[str, torch.Tensor] = {}
    skipped = list(rejected)
    for index, key in enumerate(keys):
        if key in cached or key in new:
            continue
        row = dataset[index]
        try:
            new[key] = _encode_row(row, model)
        except AudioInputError as error:
            logger.warning("skipping %s: %s", row["audio_path"] or row["source_id"], error)
            skipped.append(rejection(row["source_id"], row["audio_path"], error))
    if new:
        _write_part(store, new)
    latents_by_key = {**cached, **new}
    clips, rows = [], []
    for row in dataset.remove_columns([c for c in ("audio_bytes",) if c in dataset.column_names]):
        if row["key"] in latents_by_key:
            clips.append(latents_by_key[row["key"]])
            rows.append({**row, "num_frames": int(clips[-1].shape[0])})
    if not clips:
        raise ValueError(f"no usable clip in {str(source)!r} ({len(skipped)} skipped)")
    offsets = torch.tensor([0] + [clip.shape[0] for clip in clips]).cumsum(0)
    logger.info(
        "latents of %d clips (%d frames) in %s: %d encoded now, %d from the cache; skipped %d %s",
        len(rows), int(offsets[-1]), store, len(new), sum(row["key"] in cached for row in rows), len(skipped),
        dict(Counter(item["category"] for item in skipped)),
    )
    return LatentCache(torch.cat(clips), offsets, rows, skipped)
