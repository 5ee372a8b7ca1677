"""Reconstruction error of sound tokenizers on held-out clips, in the layout of the paper's Table I.

Metric (`latent MSE`): for each held-out clip, the clip's front-end latents z (frames x latent_dim) are
tokenised and decoded back to latents z_hat; the error is mean((z - z_hat)^2 / std^2) over frames and
channels, where std is the per-channel standard deviation of the training latents (the statistics saved
in the tokenizer, identical for tokenizers trained on the same split). 1.0 is the error of predicting the
training mean everywhere; 0 is perfect. Clips are averaged within a category, and "all" averages clips.
With the mel front end z is a stacked log-mel spectrogram, so this is a normalised log-spectral distance.

    python -m soundlm.evaluation.reconstruction --model "VQ + FM=runs/demo/tokenizer_fm/final" \
        --model "VQ + MSE=runs/demo/tokenizer_mse/final" --data work/corpus/manifest.csv --split test

`--data` is anything `load_audio_dataset` reads; its latents come from the same content-keyed cache as training.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..modeling.msn_tokenizer import MSNTokenizerModel, code_statistics
from ..processing.latent_cache import LatentCache, build_latent_cache, frontend_signature

logger = logging.getLogger(__name__)


@torch.no_grad()
def clip_errors(
    model: MSNTokenizerModel,
    cache: LatentCache,
    indices: list[int],
    num_steps: int = 10,
    scheduler: str = "euler",
    seed: int = 0,
    temperature: float = 1.0,
) -> tuple[list[float], dict[str, float]]:
    """Latent MSE of each clip in ``indices`` and codebook statistics over all of their tokens."""
    model.eval()
    errors, all_codes = [], []
    for index in indices:
        latents = cache.clip(index)[None]
        codes = model.encode_latents(latents)
        decoded = model.decode_latents(
            codes, num_steps=num_steps, scheduler=scheduler, temperature=temperature,
            generator=torch.Generator().manual_seed(seed + index),
        )
        error = ((decoded - latents) / model.latent_std).pow(2).mean()
        errors.append(float(error))
        all_codes.append(codes.flatten())
    codes = torch.cat(all_codes)
    perplexity, used = code_statistics(codes, model.codebook_size)
    return errors, {"codes_used": int(used), "perplexity": float(perplexity), "tokens": int(codes.numel())}


def reconstruction_table(
    models: dict[str, MSNTokenizerModel],
    cache: LatentCache,
    indices: list[int],
    num_steps: int = 10,
    scheduler: str = "euler",
    seed: int = 0,
    temperature: float = 1.0,
) -> dict:
    """{"rows": {category: {model name: mean error, "clips": n, "seconds": s}}, "codebook": {...}}."""
    categories = [cache.rows[i].get("category", "all") for i in indices]
    rows: dict[str, dict] = defaultdict(dict)
    codebook = {}
    for name, model in models.items():
        errors, codebook[name] = clip_errors(model, cache, indices, num_steps, scheduler, seed, temperature)
        by_category = defaultdict(list)
        for category, error in zip(categories, errors):
            by_category[category].append(error)
        for category, values in by_category.items():
            rows[category][name] = float(np.mean(values))
        rows["all"][name] = float(np.mean(errors))
    frame_rate = next(iter(models.values())).frame_rate
    for category in rows:
        members = [i for i, c in zip(indices, categories) if category in ("all", c)]
        rows[category]["clips"] = len(members)
        rows[category]["seconds"] = sum(cache.clip(i).shape[0] for i in members) / frame_rate
    ordered = {c: rows[c] for c in sorted(rows, key=lambda c: (c == "all", c))}
    return {"rows": ordered, "codebook": codebook, "num_steps": num_steps, "scheduler": scheduler,
            "temperature": temperature}


def format_table(result: dict) -> str:
    names = list(result["codebook"])
    header = "| category | clips | seconds | " + " | ".join(names) + " |"
    lines = [header, "|" + "---|" * (3 + len(names))]
    for category, row in result["rows"].items():
        values = " | ".join(f"{row[name]:.3f}" for name in names)
        lines.append(f"| {category} | {row['clips']} | {row['seconds']:.0f} | {values} |")
    lines.append("")
    lines.append("| tokenizer | codes used on held-out clips | code perplexity | tokens |")
    lines.append("|---|---|---|---|")
    for name, stats in result["codebook"].items():
        lines.append(f"| {name} | {stats['codes_used']} | {stats['perplexity']:.0f} | {stats['tokens']} |")
    return "\n".join(lines)


@torch.no_grad()
def write_examples(models: dict[str, MSNTokenizerModel], cache: LatentCache, indices: list[int], out_dir: Path,
                   num_steps: int = 10) -> list[Path]:
    """One decoded clip per category and model (plus the front end's own resynthesis) as WAV, to listen to."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written, seen = [], set()
    model = next(iter(models.values()))
    for index in indices:
        category = cache.rows[index].get("category", "clip")
        if category in seen:
            continue
        seen.add(category)
        latents = cache.clip(index)[None]
        stem = f"{category}_{Path(cache.rows[index]['audio_path'] or cache.rows[index]['key']).stem}"
        audio = model.latents_to_audio(latents)
        written.append(out_dir / f"{stem}__frontend.wav")
        sf.write(written[-1], audio[0].T.numpy(), model.sample_rate)
        for name, tokenizer in models.items():
            codes = tokenizer.encode_latents(latents)
            generator = torch.Generator().manual_seed(0)
            audio = tokenizer.decode(codes, num_steps=num_steps, generator=generator).audio_values
            tag = name.replace(" ", "").replace("+", "_")
            written.append(out_dir / f"{stem}__{tag}.wav")
            sf.write(written[-1], audio[0].T.numpy(), tokenizer.sample_rate)
    return written


def add_tokenizer_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every tokenizer evaluation takes: the tokenizers, the data and split, the latent cache, and
    how flow matching decodes."""
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH of a saved tokenizer (repeat)")
    parser.add_argument("--data", required=True, help="audio folder, .csv/.jsonl manifest or Hub dataset id")
    parser.add_argument("--split", default="test")
    parser.add_argument("--cache_dir", default="work/cache")
    parser.add_argument("--num_steps", type=int, default=10)
    parser.add_argument("--scheduler", default="euler", choices=["euler", "heun"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0, help="scale of the initial ODE noise (FM)")


def load_named_tokenizers(items: list[str]) -> dict[str, MSNTokenizerModel]:
    """`["VQ + FM=runs/.../final", ...]` -> `{name: tokenizer in eval mode}`, in the given order."""
    models = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--model must be NAME=PATH, got {item!r}")
        name, path = item.split("=", 1)
        models[name] = MSNTokenizerModel.from_pretrained(path).eval()
    return models


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_tokenizer_arguments(parser)
    parser.add_argument("--out", help="write the result as JSON here")
    parser.add_argument("--write_audio", help="folder for one decoded example per category and model")
    args = parser.parse_args(argv)
    models = load_named_tokenizers(args.model)
    first = next(iter(models.values()))
    signature = frontend_signature(first)
    for name, model in models.items():
        if frontend_signature(model) != signature:
            raise ValueError(f"tokenizer {name!r} has another front end than {next(iter(models))!r}: not comparable")
    cache = build_latent_cache(args.data, first, args.cache_dir, window_seconds=first.config.clip_seconds)
    indices = cache.select(split=args.split)
    if not indices:
        raise ValueError(f"no clip of split {args.split!r} in {args.data}")
    result = reconstruction_table(models, cache, indices, args.num_steps, args.scheduler, args.seed, args.temperature)
    print(f"Reconstruction error (latent MSE, lower is better) on {len(indices)} held-out clips; flow matching: "
          f"{args.scheduler} ODE, {args.num_steps} steps, noise temperature {args.temperature}:\n")
    print(format_table(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    if args.write_audio:
        written = write_examples(models, cache, indices, Path(args.write_audio), args.num_steps)
        print(f"\nwrote {len(written)} example WAVs to {args.write_audio}")
    return result


if __name__ == "__main__":
    main()
