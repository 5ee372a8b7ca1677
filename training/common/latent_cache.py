"""Front-end latents computed once per (manifest, front end) and cached as safetensors.

The front end is frozen, so its latents never change during training: the tokenizer trains on the
cache, never on audio. The cache key hashes the front-end config, the manifest bytes and each audio
file's size and modification time; a changed file or config gives a new cache.

Manifest: a CSV with a ``path`` column (relative to the manifest or absolute) and optional ``split``,
``category``, ``label``, ``caption`` columns (kept as row metadata). Files that cannot be used are skipped
with a logged reason and counted; they never stop the run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from soundlm.processing.audio_datasets import read_row_audio

logger = logging.getLogger(__name__)


@dataclass
class LatentCache:
    """Latents of many clips, concatenated.

    Args:
        latents (`torch.FloatTensor` of shape `(total_frames, latent_dim)`): all clips' frames, end to end.
        offsets (`torch.LongTensor` of shape `(num_clips + 1,)`): clip i is ``latents[offsets[i]:offsets[i+1]]``.
        rows (`list[dict]`): the manifest row of each clip (strings), plus ``num_frames``.
        skipped (`list[dict]`): ``{"path", "reason"}`` of each manifest row that was not used.
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


def frontend_signature(config) -> dict:
    """What identifies a tokenizer config's front end (type and arguments): the cache key's front-end part."""
    return {"frontend_type": config.frontend_type, "frontend_config": config.frontend_config}


def read_manifest(manifest: str | Path) -> list[dict]:
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ValueError(f"manifest {str(manifest)!r} does not exist")
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"manifest {str(manifest)!r} has no rows")
    if "path" not in rows[0]:
        raise ValueError(f"manifest {str(manifest)!r} needs a 'path' column, got columns {sorted(rows[0])}")
    return rows


def _cache_key(manifest: Path, rows: list[dict], frontend_signature: dict) -> str:
    digest = hashlib.sha256(json.dumps(frontend_signature, sort_keys=True).encode())
    digest.update(manifest.read_bytes())
    for row in rows:
        path = _resolve(manifest, row["path"])
        stat = path.stat() if path.exists() else None
        digest.update(f"{path}:{stat.st_size if stat else -1}:{stat.st_mtime_ns if stat else -1}".encode())
    return digest.hexdigest()[:16]


def _resolve(manifest: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else manifest.parent / candidate


def build_latent_cache(
    manifest: str | Path,
    frontend: torch.nn.Module,
    frontend_signature: dict,
    cache_dir: str | Path,
    max_clip_seconds: float | None = 10.0,
) -> LatentCache:
    """Encode every clip of ``manifest`` with the frozen ``frontend`` (or load the cache made before).

    ``frontend_signature`` identifies the front end (type and config) in the cache key. Clips longer than
    ``max_clip_seconds`` are cut to that length (the tokenizer trains on random windows of them anyway).
    """
    manifest = Path(manifest)
    rows = read_manifest(manifest)
    cache_dir = Path(cache_dir)
    cache_path = cache_dir / f"latents-{_cache_key(manifest, rows, frontend_signature)}.safetensors"
    if cache_path.exists():
        tensors = load_file(cache_path)
        with open(cache_path.with_suffix(".json")) as handle:
            meta = json.load(handle)
        logger.info("loaded cached latents of %d clips from %s", len(meta["rows"]), cache_path)
        return LatentCache(tensors["latents"], tensors["offsets"], meta["rows"], meta["skipped"])

    clips, kept, skipped = [], [], []
    for row in rows:
        path = _resolve(manifest, row["path"])
        try:
            whole_file = {"audio_path": str(path), "start": None, "end": None}
            audio, _ = read_row_audio(whole_file, frontend.sample_rate, frontend.audio_channels)
            if max_clip_seconds is not None:
                audio = audio[:, : int(round(max_clip_seconds * frontend.sample_rate))]
            if audio.shape[-1] < frontend.hop_length:
                raise ValueError(f"shorter than one latent frame ({audio.shape[-1]} < {frontend.hop_length} samples)")
            latents = frontend.encode(torch.from_numpy(np.ascontiguousarray(audio))[None])[0]
            if not torch.isfinite(latents).all():
                raise ValueError("front end returned non-finite latents")
        except (ValueError, TypeError, RuntimeError) as error:
            logger.warning("skipping %s: %s", path, error)
            skipped.append({"path": str(path), "reason": str(error)})
            continue
        clips.append(latents.float())
        kept.append({**row, "num_frames": str(latents.shape[0])})
    if not clips:
        raise ValueError(f"no usable clip in manifest {str(manifest)!r} ({len(skipped)} skipped)")
    offsets = torch.tensor([0] + [c.shape[0] for c in clips]).cumsum(0)
    cache = LatentCache(torch.cat(clips), offsets, kept, skipped)
    cache_dir.mkdir(parents=True, exist_ok=True)
    save_file({"latents": cache.latents.contiguous(), "offsets": cache.offsets}, cache_path)
    with open(cache_path.with_suffix(".json"), "w") as handle:
        json.dump({"rows": kept, "skipped": skipped, "frontend": frontend_signature}, handle)
    reasons = Counter(item["reason"].split(" (")[0] for item in skipped)
    logger.info("cached %d clips (%d frames) to %s; skipped %d: %s", len(kept), cache.latents.shape[0], cache_path,
                len(skipped), dict(reasons))
    return cache
