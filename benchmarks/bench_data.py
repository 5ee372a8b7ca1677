"""LM-MSN data preparation: pre-tokenised audio vs encoding audio on the fly, and pre-tokenisation throughput.

For each tokenizer (random weights, seed 0, eval mode):

- ``demo``: the architecture of ``training/configs/demo_fm.yaml`` (mel front end at 22.05 kHz, 4 + 4 blocks of
  192, codebook 1024) over every row of the manifest, cut into 10-s windows;
- ``paper``: ``MSNTokenizerConfig()`` (Oobleck VAE, 12 + 12 blocks of 768, codebook 8196) over the
  ``--paper-rows`` longest windows only, since its VAE runs at about 0.4x real time on this CPU;

it measures, in one run on the same rows:

1. pre-tokenisation: ``soundlm.processing.pretokenized.pretokenize`` (read, resample, batch of 8, encode, write
   Arrow parts, assemble) into a fresh folder; throughput in audio-hours per hour (= audio-seconds per second);
2. one epoch of LM-MSN stage-1 data preparation from the pre-tokenised folder: load it, then for each row build
   the stage-1 example (``lm_msn_pretraining_example`` with ``row_rng``) and its Arrow dict; best of 3;
3. the same epoch with the audio encoded on the fly: for each batch of 8 rows, read and resample the audio,
   zero-pad to the window, ``encode``, cut each row's codes to its frames, then build the same examples. The
   two epochs must produce identical examples (checked).

The ratio (3) / (2) is the speed-up of pre-tokenising; the target is >= 20x.

    python benchmarks/bench_data.py [--manifest work/corpus/manifest.csv] [--paper-rows 4] [--out ...]

Needs the real-audio corpus (``python examples/real_audio_corpus/build_real_audio_corpus.py --out work/corpus``,
which the demo runs). Markdown goes to stdout, JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET = 20.0
BATCH = 8


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _stage1_examples(rows, codes_of) -> list[dict]:
    from soundlm.processing.tasks import lm_msn_pretraining_example, row_rng

    out = []
    for row in rows:
        codes = codes_of(row)
        if row["caption"]:
            example = lm_msn_pretraining_example(codes, row["caption"], row_rng(0, row["key"]))
            out.append(example.to_dict())
    return out


def _pretokenised_epoch(folder: Path, model) -> tuple[float, list[dict]]:
    from soundlm.processing.pretokenized import load_pretokenized

    best, examples = float("inf"), []
    for _ in range(3):
        began = time.perf_counter()
        data = load_pretokenized(folder, tokenizer=model).select_columns(["key", "caption", "codes"])
        examples = _stage1_examples(data, lambda row: row["codes"])
        best = min(best, time.perf_counter() - began)
    return best, examples


def _on_the_fly_epoch(rows, model, window_samples: int) -> tuple[float, list[dict]]:
    """Reads and encodes each batch of 8 rows as a training loop would, with pretokenize's padding rule (zero-pad
    to a whole second; rows of equal padded length share an encode call) so that the codes are the same."""
    from soundlm.processing.audio_datasets import read_row_audio
    from soundlm.processing.pretokenized import encode_padded, padded_length

    began = time.perf_counter()
    codes_by_key: dict[str, list[int]] = {}
    ordered = list(rows)
    quantum = model.sample_rate  # pretokenize's default pad_to_seconds=1.0
    for first in range(0, len(ordered), BATCH):
        groups: dict[int, list[tuple[str, torch.Tensor]]] = {}
        for row in ordered[first : first + BATCH]:
            audio, _ = read_row_audio(row, model.sample_rate, model.channels)
            audio = torch.from_numpy(np.ascontiguousarray(audio[:, :window_samples]))
            groups.setdefault(padded_length(audio.shape[-1], quantum), []).append((row["key"], audio))
        for length, items in groups.items():
            with torch.inference_mode():
                codes = encode_padded(model, [audio for _, audio in items], length)
            codes_by_key.update(zip((key for key, _ in items), codes, strict=True))
    examples = _stage1_examples(ordered, lambda row: codes_by_key[row["key"]])
    return time.perf_counter() - began, examples


def _measure(name: str, model, rows, window_seconds: float) -> dict:
    from soundlm.processing.pretokenized import pretokenize

    audio_seconds = float(sum(rows["duration"]))
    _log(f"[{name}] {len(rows)} rows, {audio_seconds:.0f} s of audio")
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        with torch.inference_mode():
            summary = pretokenize(rows, model, Path(tmp) / "pt", batch_size=BATCH, progress=False)
        pretokenize_seconds = time.perf_counter() - began
        _log(f"[{name}] pre-tokenised in {pretokenize_seconds:.1f} s: {summary}")
        stored_seconds, stored = _pretokenised_epoch(Path(tmp) / "pt", model)
        _log(f"[{name}] pre-tokenised epoch {stored_seconds:.3f} s")
    window_samples = round(window_seconds * model.sample_rate)
    live_seconds, live = _on_the_fly_epoch(rows, model, window_samples)
    _log(f"[{name}] on-the-fly epoch {live_seconds:.1f} s")
    identical = sorted(json.dumps(e) for e in stored) == sorted(json.dumps(e) for e in live)
    return {
        "tokenizer": name,
        "rows": len(rows),
        "audio_seconds": audio_seconds,
        "examples": len(stored),
        "pretokenize_seconds": pretokenize_seconds,
        "pretokenize_audio_hours_per_hour": audio_seconds / pretokenize_seconds,
        "pretokenized_epoch_seconds": stored_seconds,
        "on_the_fly_epoch_seconds": live_seconds,
        "speedup": live_seconds / stored_seconds,
        "identical_examples": identical,
        "rejected": summary.rejected,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", default=str(REPO / "work" / "corpus" / "manifest.csv"))
    parser.add_argument("--paper-rows", type=int, default=4, help="windows encoded with the paper-size tokenizer")
    parser.add_argument("--window-seconds", type=float, default=10.0)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "data_cpu.json"))
    args = parser.parse_args(argv)
    if not Path(args.manifest).is_file():
        raise SystemExit(
            f"no manifest at {args.manifest}: run python examples/real_audio_corpus/build_real_audio_corpus.py first"
        )

    from soundlm import MSNTokenizerConfig, MSNTokenizerModel
    from soundlm.processing.audio_datasets import load_audio_dataset

    began = time.perf_counter()
    rows = load_audio_dataset(args.manifest, window_seconds=args.window_seconds)
    load_seconds = time.perf_counter() - began
    _log(f"loaded {len(rows)} rows in {load_seconds:.1f} s")

    results = []
    with open(REPO / "training" / "configs" / "demo_fm.yaml") as handle:
        demo_model = yaml.safe_load(handle)["model"]
    torch.manual_seed(0)
    demo = MSNTokenizerModel(MSNTokenizerConfig(**demo_model)).eval()
    results.append(_measure("demo (mel, 4+4 x 192)", demo, rows, args.window_seconds))

    torch.manual_seed(0)
    paper = MSNTokenizerModel(MSNTokenizerConfig()).eval()
    longest = np.argsort(-np.asarray(rows["duration"]), kind="stable")[: args.paper_rows].tolist()
    results.append(_measure("paper (Oobleck, 12+12 x 768)", paper, rows.select(sorted(longest)),
                            args.window_seconds))

    date = datetime.date.today().isoformat()
    threads = torch.get_num_threads()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} ({threads} threads)"
    lines = [
        f"LM-MSN stage-1 data preparation, pre-tokenised vs on the fly ({date}, {machine}; "
        f"`python benchmarks/bench_data.py`; loading + hashing {len(rows)} rows took {load_seconds:.1f} s)",
        "",
        "| tokenizer | rows | audio (s) | pre-tokenise (s) | audio-hours / hour | epoch, pre-tokenised (s) "
        "| epoch, on the fly (s) | speed-up | target | same examples |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['tokenizer']} | {r['rows']} | {r['audio_seconds']:.0f} | {r['pretokenize_seconds']:.1f} "
            f"| {r['pretokenize_audio_hours_per_hour']:.2f} | {r['pretokenized_epoch_seconds']:.3f} "
            f"| {r['on_the_fly_epoch_seconds']:.1f} | {r['speedup']:.0f}x | >= {TARGET:.0f}x "
            f"{'met' if r['speedup'] >= TARGET else 'NOT met'} | {'yes' if r['identical_examples'] else 'NO'} |"
        )
    print("\n".join(lines))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({"date": date, "machine": machine, "load_seconds": load_seconds, "results": results}, handle,
                  indent=1)


if __name__ == "__main__":
    main()
