"""Train the demo tokenizer under several flow-matching settings and judge each on held-out clips, one row each.

    python training/flow_matching_experiments.py --out runs/fm_experiments \
        --experiment "baseline" --experiment "data prediction: model.flow_prediction=data" \
        --experiment "MSE baseline: model.decoder_objective=mse" [--steps 1500] [--base training/configs/demo_fm.yaml]

Each `--experiment` is `NAME[: key=value key=value ...]`, the keys being overrides of the base YAML
(`model.flow_prediction=data`, `train.lr=5e-4`, ...) or decode settings (`decode.num_steps=32`,
`decode.scheduler=heun`, `decode.temperature=0.5`, `decode.guidance_scale=2`, `decode.start_time=0.5`,
`decode.guidance_interval=0.1,0.9`).
Runs that differ only in decode settings share one training.
Every run trains in this process, one after the other (on a 2-core machine two torch jobs at once are many times
slower than one after the other), then decodes the held-out split (`split == "test"`) and measures what a listener
hears:

- `latent_error`: the paper's Table I error (`soundlm.evaluation.reconstruction`);
- `level_db`: median over clips of the decoded audio's level minus the front end's own resynthesis of the true
  latents (`soundlm.evaluation.signal.level_difference_db`; 0 is right, the front end being the upper bound);
- `clipped_pct`: share of decoded samples at full scale, in percent; `clipped_at_level_pct` the same with each clip
  first scaled to the front end's level (`soundlm.evaluation.signal.clipped_fraction_at_level`): what the decoder
  would clip at the right loudness;
- `std_ratio`: spread of the decoded normalised latents over the data's (1 is right);
- `flatness`: median spectral flatness of the decoded clips (`soundlm.evaluation.signal.spectral_flatness`; the
  tokenizer report gives the originals' and the front end's): harmonics decoded as broadband noise raise it;
  `flatness_by_category` the median per category;
- `fad`: FAD of the decoded audio to the original clips with YAMNet embeddings (patch hop 0.05 s), as the tokenizer
  report computes it (`--fad_hop_seconds 0` skips it);
- `loss`: the last logged training reconstruction loss (velocity or x1 MSE, in normalised latent units).

Rows go to `<out>/results.jsonl` (one JSON object each, with the full config, seed, steps and solver, and
`per_clip`: each held-out clip's audio file and start (s), category, level dB, clipped and clipped-at-level shares
and flatness) and a markdown table to stdout. Runs already in `results.jsonl` are skipped, so the script can be resumed.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from soundlm.evaluation.embeddings import embed_clips, yamnet_embedder
from soundlm.evaluation.frechet import fad
from soundlm.evaluation.signal import (
    clipped_fraction,
    clipped_fraction_at_level,
    level_difference_db,
    spectral_flatness,
)
from soundlm.evaluation.tokenizer_report import flatness_summary
from soundlm.modeling.msn_tokenizer import MSNTokenizerModel
from soundlm.processing.audio_datasets import read_row_audio
from soundlm.processing.latent_cache import LatentCache, build_latent_cache
from soundlm.training.common.config import apply_overrides, parse_value
from soundlm.training.train_tokenizer import merged_config, train

DECODE_DEFAULTS = {"num_steps": 10, "scheduler": "euler", "temperature": 1.0, "guidance_scale": 1.0, "start_time": 0.0,
                   "guidance_interval": [0.0, 1.0]}
COLUMNS = ("name", "steps", "loss", "latent_error", "level_db", "clipped_pct", "clipped_at_level_pct", "std_ratio",
           "flatness", "fad", "decode", "train_s")


def parse_experiment(spec: str) -> tuple[str, list[str], dict[str, Any]]:
    """`NAME[: key=value ...]` -> (name, training overrides as --key=value, decode settings)."""
    name, _, rest = spec.partition(":")
    overrides, decode = [], dict(DECODE_DEFAULTS)
    for item in rest.split():
        key, separator, value = item.partition("=")
        if not separator or "." not in key:
            raise ValueError(f"--experiment {spec!r}: {item!r} must be section.key=value")
        if key.startswith("decode."):
            setting = key.split(".", 1)[1]
            if setting not in DECODE_DEFAULTS:
                known = sorted(DECODE_DEFAULTS)
                raise ValueError(f"--experiment {spec!r}: decode settings are {known}, got {setting!r}")
            decode[setting] = ([float(v) for v in value.split(",")] if setting == "guidance_interval"
                               else parse_value(value))
        else:
            overrides.append(f"--{key}={value}")
    if not name.strip():
        raise ValueError(f"--experiment {spec!r} needs a name before the colon")
    return name.strip(), overrides, decode


class FADJudge:
    """FAD of decoded clips to the held-out originals; the originals are embedded once per process."""

    def __init__(self, patch_hop_seconds: float):
        self.embedder = yamnet_embedder(patch_hop_seconds=patch_hop_seconds)
        self.references: dict[tuple, np.ndarray] = {}

    def __call__(self, clips: list[np.ndarray], cache: LatentCache, indices: list[int], sampling_rate: int,
                 channels: int) -> float:
        key = (id(cache), tuple(indices))
        if key not in self.references:
            originals = [read_row_audio(cache.rows[i], sampling_rate, channels)[0] for i in indices]
            self.references[key] = embed_clips(self.embedder, [(clip, sampling_rate) for clip in originals])
        decoded = embed_clips(self.embedder, [(clip, sampling_rate) for clip in clips])
        return fad(decoded, self.references[key], model=self.embedder.name).fad


@torch.no_grad()
def judge(model: MSNTokenizerModel, cache: LatentCache, indices: list[int], decode: dict, seed: int,
          fad_judge: FADJudge | None = None) -> dict:
    """The listener's measures over the held-out clips (module docstring)."""
    model.eval()
    errors, spreads, clips, per_clip = [], [], [], []
    for index in indices:
        latents = cache.clip(index)[None]
        decoded = model.decode_latents(
            model.encode_latents(latents), num_steps=int(decode["num_steps"]), scheduler=decode["scheduler"],
            temperature=float(decode["temperature"]), generator=torch.Generator().manual_seed(seed + index),
            guidance_scale=float(decode["guidance_scale"]), start_time=float(decode["start_time"]),
            guidance_interval=tuple(decode["guidance_interval"]),
        )
        errors.append(float(((decoded - latents) / model.latent_std).pow(2).mean()))
        reference, audio = model.latents_to_audio(latents)[0], model.latents_to_audio(decoded)[0]
        spreads.append(float(model.normalize_latents(decoded).std() / model.normalize_latents(latents).std()))
        length = read_row_audio(cache.rows[index], model.sample_rate, model.channels)[0].shape[-1]
        clips.append(audio[:, :length].numpy())
        row = cache.rows[index]
        per_clip.append({"clip": str(row.get("audio_path") or row.get("source_id")), "start": row.get("start"),
                         "category": row.get("category") or "all",
                         "level_db": level_difference_db(audio, reference), "clipped": clipped_fraction(audio),
                         "clipped_at_level": clipped_fraction_at_level(audio, reference),
                         "flatness": spectral_flatness(clips[-1])})
    return {
        "latent_error": float(np.mean(errors)),
        "level_db": float(np.median([clip["level_db"] for clip in per_clip])),
        "clipped_pct": 100.0 * float(np.mean([clip["clipped"] for clip in per_clip])),
        "clipped_at_level_pct": 100.0 * float(np.mean([clip["clipped_at_level"] for clip in per_clip])),
        "std_ratio": float(np.mean(spreads)),
        **flatness_summary([clip["flatness"] for clip in per_clip], [clip["category"] for clip in per_clip]),
        "fad": fad_judge(clips, cache, indices, model.sample_rate, model.channels) if fad_judge else None,
        "per_clip": per_clip,
    }


def last_logged_loss(run_dir: Path) -> float | None:
    """The last `reconstruction_loss` of the run's TensorBoard log."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted(run_dir.glob("logs/**/events.out.tfevents.*"))
    if not events:
        return None
    accumulator = EventAccumulator(str(events[-1]))
    accumulator.Reload()
    if "reconstruction_loss" not in accumulator.Tags().get("scalars", []):
        return None
    return float(accumulator.Scalars("reconstruction_loss")[-1].value)


def describe_decoding(row: dict) -> str:
    """The decoding of a results row, e.g. `euler 10 T=1.0 w=3.5 guided on [0.1, 0.9)`."""
    if row.get("config", {}).get("decoder_objective") == "mse":
        return "one pass"  # the regression decoder has no sampler
    decode = row["decode"]
    text = f"{decode['scheduler']} {decode['num_steps']} T={decode['temperature']}"
    if decode.get("guidance_scale", 1.0) != 1.0:
        text += f" w={decode['guidance_scale']}"
    if decode.get("start_time", 0.0):
        text += f" t0={decode['start_time']}"
    if list(decode.get("guidance_interval", [0.0, 1.0])) != [0.0, 1.0]:
        text += " guided on [{:g}, {:g})".format(*decode["guidance_interval"])
    return text


def format_rows(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [row["name"], str(row["steps"]), f"{row['loss']:.3f}" if row["loss"] is not None else "-",
                 f"{row['latent_error']:.3f}", f"{row['level_db']:+.1f}", f"{row['clipped_pct']:.2f}",
                 f"{row['clipped_at_level_pct']:.2f}" if row.get("clipped_at_level_pct") is not None else "-",
                 f"{row['std_ratio']:.2f}", f"{row['flatness']:.2g}" if row.get("flatness") is not None else "-",
                 f"{row['fad']:.1f}" if row.get("fad") is not None else "-", describe_decoding(row),
                 f"{row['train_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="training/configs/demo_fm.yaml")
    parser.add_argument("--experiment", action="append", required=True, help="NAME[: section.key=value ...]")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/fm_experiments")
    parser.add_argument("--fad_hop_seconds", type=float, default=0.05,
                        help="YAMNet patch hop of the FAD column (0 skips the FAD)")
    args = parser.parse_args(argv)
    fad_judge = FADJudge(args.fad_hop_seconds) if args.fad_hop_seconds else None
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    done = [json.loads(line) for line in results_path.read_text().splitlines()] if results_path.exists() else []
    base = merged_config(yaml.safe_load(Path(args.base).read_text()))
    rows = list(done)
    for spec in args.experiment:
        name, overrides, decode = parse_experiment(spec)
        if any(row["name"] == name and row["steps"] == args.steps for row in done):
            continue
        config = apply_overrides(copy.deepcopy(base), overrides, open_sections=("model",))
        training_key = json.dumps([sorted(overrides), args.steps], sort_keys=True)
        run_dir = out / f"run-{hashlib.sha256(training_key.encode()).hexdigest()[:12]}"
        config["train"].update(output_dir=str(run_dir), max_steps=args.steps, seed=args.seed,
                               save_every=10**9, resume_from_checkpoint=None)
        began = time.perf_counter()
        final = run_dir / "final"
        if not (final / "config.json").exists():
            train(config)
        train_seconds = time.perf_counter() - began
        model = MSNTokenizerModel.from_pretrained(final).eval()
        cache = build_latent_cache(config["data"]["source"], model, config["data"]["cache_dir"],
                                   window_seconds=config["data"]["cache_window_seconds"])
        row = {"name": name, "steps": args.steps, "seed": args.seed, "loss": last_logged_loss(run_dir),
               "decode": decode, "train_s": train_seconds, "overrides": overrides, "config": config["model"],
               **judge(model, cache, cache.select(split="test"), decode, args.seed, fad_judge)}
        rows.append(row)
        with results_path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(format_rows([row]).splitlines()[-1], flush=True)
    print(format_rows(rows))
    return rows


if __name__ == "__main__":
    main()
