"""Train the LM-MSN sound tokenizer on cached front-end latents.

    accelerate launch training/train_tokenizer.py --config training/configs/demo_fm.yaml [--train.max_steps=500 ...]

One code path from one CPU process to many GPUs (accelerate: DDP, FSDP, DeepSpeed through its configs).
`data.source` is anything `load_audio_dataset` reads (audio folder, CSV/JSONL manifest, Hub dataset id).
The frozen front end runs once per window of audio (see `soundlm/processing/latent_cache.py`); AdamW with warm-up and
cosine decay; TensorBoard logs and a progress bar; checkpoints (`accelerate` state: weights, optimiser,
scheduler, RNG) every `train.save_every` steps that resume bit-exactly with `--train.resume_from_checkpoint
latest`, because every random draw of step s (batch, windows, noise, times, dead-code restarts) is seeded
from (seed, s, process index) rather than from a stream that a restart would have to replay.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from soundlm import MSNFeatureExtractor, MSNTokenizerConfig, MSNTokenizerModel
from soundlm.processing.latent_cache import LatentCache, build_latent_cache
from soundlm.training.common.checkpoints import written_then_renamed
from soundlm.training.common.config import apply_overrides, load_config

logger = logging.getLogger("train_tokenizer")

DEFAULTS = {
    "data": {
        "source": None,  # audio folder, .csv/.jsonl manifest or Hub dataset id (load_audio_dataset)
        "cache_dir": "work/cache",
        "train_split": "train",
        "window_seconds": 3.0,  # training windows, cropped at random from the cached clips
        "cache_window_seconds": 10.0,  # longer clips are cut into windows of this length before caching
    },
    "model": {},
    "train": {
        "output_dir": "runs/tokenizer",
        "seed": 0,
        "batch_size": 16,
        "max_steps": 1000,
        "lr": 5e-4,
        "weight_decay": 0.01,
        "adam_beta2": 0.99,
        "warmup_steps": 50,
        "grad_clip": 1.0,
        "save_every": 250,
        "log_every": 10,
        "resume_from_checkpoint": None,
    },
}


def merged_config(config: dict) -> dict:
    merged = {section: dict(values) for section, values in DEFAULTS.items()}
    for section, values in config.items():
        if section not in merged:
            raise ValueError(f"unknown config section {section!r}; expected one of {sorted(merged)}")
        merged[section].update(values or {})
    return merged


def sample_batch(
    cache: LatentCache, indices: list[int], batch_size: int, window_frames: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of ``window_frames`` frames from random clips -> latents (batch, window, dim), mask."""
    picks = torch.randint(0, len(indices), (batch_size,), generator=generator).tolist()
    latents = torch.zeros(batch_size, window_frames, cache.latents.shape[-1])
    mask = torch.zeros(batch_size, window_frames, dtype=torch.bool)
    for row, pick in enumerate(picks):
        clip = cache.clip(indices[pick])
        start = int(torch.randint(0, max(1, clip.shape[0] - window_frames + 1), (1,), generator=generator))
        window = clip[start : start + window_frames]
        latents[row, : window.shape[0]] = window
        mask[row, : window.shape[0]] = True
    return latents, mask


def step_generator(seed: int, step: int, process_index: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step * 7_919 + process_index)


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest `checkpoints/step_N` folder; folders only get that name once complete (`written_then_renamed`)."""
    folder = output_dir / "checkpoints"
    checkpoints = [p for p in folder.glob("step_*") if p.is_dir() and p.name[5:].isdigit()] if folder.is_dir() else []
    return max(checkpoints, key=lambda p: int(p.name[5:])) if checkpoints else None


def _check_source(data: dict) -> None:
    if not data["source"]:
        raise ValueError(
            "data.source must name the training audio: a folder, a .csv/.jsonl manifest or a Hub dataset id "
            "(see soundlm.processing.audio_datasets.load_audio_dataset)"
        )


def build_cache(config: dict, model: MSNTokenizerModel | None = None) -> LatentCache:
    """The front-end latents of ``config``'s data, encoded into ``data.cache_dir`` where not cached yet (by
    ``model``'s front end; default: a model built from the config). Trainings that share a front end share the
    cache: build it once before starting them side by side, so that they do not both encode the corpus."""
    config = merged_config(config)
    _check_source(config["data"])
    if model is None:
        model = MSNTokenizerModel(MSNTokenizerConfig(**config["model"]))
    data = config["data"]
    return build_latent_cache(data["source"], model, data["cache_dir"], window_seconds=data["cache_window_seconds"])


def train(config: dict) -> Path:
    """Run training as ``config`` says; returns the folder of the final model (``<output_dir>/final``)."""
    config = merged_config(config)
    data, train_cfg = config["data"], config["train"]
    _check_source(data)
    output_dir = Path(train_cfg["output_dir"])
    accelerator = Accelerator(
        log_with="tensorboard",
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    seed = int(train_cfg["seed"])
    torch.manual_seed(seed)
    model_config = MSNTokenizerConfig(**config["model"])
    model = MSNTokenizerModel(model_config)

    with accelerator.main_process_first():
        cache = build_cache(config, model)
    has_splits = any(row.get("split") for row in cache.rows)
    train_indices = cache.select(split=data["train_split"]) if has_splits else list(range(len(cache)))
    if not train_indices:
        raise ValueError(f"no clip of split {data['train_split']!r} in {data['source']}")
    mean, std = cache.statistics(train_indices)
    model.set_latent_statistics(mean, std)
    window_frames = max(1, int(round(float(data["window_seconds"]) * model.frame_rate)))

    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=float(train_cfg["lr"]),
        weight_decay=float(train_cfg["weight_decay"]), betas=(0.9, float(train_cfg["adam_beta2"])),
    )
    max_steps = int(train_cfg["max_steps"])
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(train_cfg["warmup_steps"]), max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    # not prepared: accelerate would step a prepared scheduler once per process per step, but here every
    # process runs all max_steps steps (batch_size is per process), so the schedule counts steps as they are
    accelerator.register_for_checkpointing(scheduler)

    start_step = 0
    resume = train_cfg["resume_from_checkpoint"]
    if resume:
        checkpoint = latest_checkpoint(output_dir) if resume == "latest" else Path(resume)
        if checkpoint is None or not checkpoint.exists():
            raise ValueError(f"train.resume_from_checkpoint={resume!r}: no checkpoint found under {output_dir}")
        accelerator.load_state(str(checkpoint))
        start_step = json.loads((checkpoint / "trainer_state.json").read_text())["step"]
        accelerator.print(f"resumed from {checkpoint} at step {start_step}")

    if accelerator.is_main_process:
        accelerator.init_trackers("train_tokenizer", config=_flat(config))
    progress = tqdm(range(start_step, max_steps), initial=start_step, total=max_steps,
                    disable=not accelerator.is_local_main_process, desc=f"train {model_config.decoder_objective}")
    model.train()
    for step in progress:
        generator = step_generator(seed, step, accelerator.process_index)
        torch.manual_seed(seed + 1_000 * step + accelerator.process_index)  # dropout and dead-code restarts
        latents, mask = sample_batch(cache, train_indices, int(train_cfg["batch_size"]), window_frames, generator)
        output = model(latents=latents.to(accelerator.device), frame_mask=mask.to(accelerator.device),
                       generator=generator)
        accelerator.backward(output.loss)
        if train_cfg["grad_clip"]:
            accelerator.clip_grad_norm_(model.parameters(), float(train_cfg["grad_clip"]))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        if done % int(train_cfg["log_every"]) == 0 or done == max_steps:
            logs = {
                "loss": output.loss.item(),
                "reconstruction_loss": output.reconstruction_loss.item(),
                "commitment_loss": output.commitment_loss.item(),
                "codebook_perplexity": output.codebook_perplexity.item(),
                "codebook_usage": output.codebook_usage.item(),
                "restarted_codes": output.num_restarted_codes,
                "lr": scheduler.get_last_lr()[0],
            }
            accelerator.log(logs, step=done)
            progress.set_postfix(loss=f"{logs['reconstruction_loss']:.4f}", ppl=f"{logs['codebook_perplexity']:.0f}")
        if done % int(train_cfg["save_every"]) == 0 or done == max_steps:
            checkpoint = output_dir / "checkpoints" / f"step_{done}"
            # every process writes its RNG state into the same folder: all wait before the main one renames it
            with written_then_renamed(checkpoint, write=accelerator.is_main_process) as folder:
                accelerator.wait_for_everyone()
                accelerator.save_state(str(folder))
                if accelerator.is_main_process:
                    (folder / "trainer_state.json").write_text(json.dumps({"step": done}))
                accelerator.wait_for_everyone()
    accelerator.wait_for_everyone()
    if accelerator.num_processes > 1:
        # the EMA codebook is a buffer, kept in sync by the quantiser itself: check that it was
        codebooks = accelerator.gather(accelerator.unwrap_model(model).quantizer.codebook[None])
        if not all(torch.equal(codebooks[0], other) for other in codebooks[1:]):
            raise RuntimeError("the VQ codebooks of the processes differ after training")
        accelerator.print(f"codebook identical on all {accelerator.num_processes} processes")
    final = output_dir / "final"
    with written_then_renamed(final, write=accelerator.is_main_process) as folder:
        if accelerator.is_main_process:
            unwrapped = accelerator.unwrap_model(model)
            unwrapped.save_pretrained(folder)
            MSNFeatureExtractor.from_tokenizer_config(unwrapped.config).save_pretrained(folder)
            (folder / "training_config.json").write_text(json.dumps(config, indent=2))
    # leave together: end_training tears down the process group, and a worker that does so while the other
    # is still writing the final model can hang the teardown
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return final


def _flat(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file with data / model / train sections")
    parser.add_argument("--cache_only", action="store_true",
                        help="only encode the front-end latents into data.cache_dir (no training), then exit")
    args, overrides = parser.parse_known_args(argv)
    logging.basicConfig(level=os.environ.get("LOGLEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    config = merged_config(load_config(args.config))
    config = apply_overrides(config, overrides, open_sections=("model",))
    if args.cache_only:
        cache = build_cache(config)
        print(f"latent cache of {len(cache)} clips ready in {config['data']['cache_dir']}")
        return Path(config["data"]["cache_dir"])
    final = train(config)
    print(f"saved {final}")
    return final


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
