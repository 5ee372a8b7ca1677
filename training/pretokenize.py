"""Run the sound tokenizer once over a dataset and store the codes as an Arrow dataset.

    accelerate launch training/pretokenize.py --tokenizer runs/demo/tokenizer_fm/final \
        --data work/corpus/manifest.csv --output work/pretokenized/corpus [--batch_size 8]

`--data` is anything `load_audio_dataset` reads (audio folder, CSV/JSONL manifest, Hub dataset id). Clips are
cut into windows of the tokenizer's `clip_seconds` (override with `--window_seconds` / `--hop_seconds`).
The work (sharding over processes, incremental and resumable runs, bad rows reported and counted, batching
by padded length) is `soundlm.processing.pretokenized.pretokenize`; its docstring says how.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import datasets

from soundlm.processing.audio_datasets import load_audio_dataset
from soundlm.processing.pretokenized import PARTS_DIR, PretokenizeSummary, pretokenize


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, help="folder of a saved sound tokenizer (AutoModel)")
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
    from transformers import AutoModel

    import soundlm  # noqa: F401  (registers the tokenizer classes with AutoModel)

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    accelerator = Accelerator()
    tokenizer = AutoModel.from_pretrained(args.tokenizer).eval()
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
