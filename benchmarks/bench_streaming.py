"""Memory of the data path as the manifest grows: load a manifest of N rows, pre-tokenise it, build the LM-MSN
stage-1 and MINT stage-1 sets; the peak resident memory of each N (a fresh process per N) shows whether the path
streams (flat) or holds every row (grows with N).

The corpus is synthetic on purpose (the question is rows, not audio): 100 WAV files of 100 s (8 kHz mono, tones
with noise), and a manifest of N rows, each a distinct 0.1-s window (`start`, `end`) with a caption. The tokenizer
is the tests' tiny mel tokenizer (random weights, 8 kHz, 62.5 frames/s).

    python benchmarks/bench_streaming.py [--rows 1000 10000 100000] [--out benchmarks/results/streaming_cpu.json]

Prints a markdown table: rows; the anonymous memory (heap, Python objects, tensors: `RssAnon`, sampled every 5 ms,
Linux) held when `pretokenize` starts encoding, i.e. what the rows' bookkeeping costs, and its growth per 10k more
rows; the peak anonymous memory over the whole run (min-max of `--repeats` fresh processes: the encoder's transient
buffers move it run to run); the peak RSS (which also counts the pages of memory-mapped Arrow files that were read:
page cache the kernel can drop, so it grows with the data on disk without being held); seconds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, threading, time
import torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
from helpers import tiny_config_kwargs
from soundlm import MSNTokenizerConfig, MSNTokenizerModel
from soundlm.processing.audio_datasets import load_audio_dataset
from soundlm.processing.pretokenized import load_pretokenized, pretokenize
from soundlm.processing.task_datasets import lm_msn_task_dataset, mint_task_dataset

def anon_kib():
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("RssAnon:"))

peak = {{"anon": anon_kib()}}
def sample():  # the kernel keeps no peak of anonymous memory: sample it every 5 ms
    while True:
        peak["anon"] = max(peak["anon"], anon_kib())
        time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()
stages = {{}}
def mark(name):
    peak["anon"] = max(peak["anon"], anon_kib())
    stages[name] = {{"peak_anon_kib": peak["anon"], "seconds": time.perf_counter() - began}}

import soundlm.processing.pretokenized as pretokenized
encode_rows = pretokenized._encode_rows
def marked_encode_rows(*args, **kwargs):  # what the rows' bookkeeping holds, before the encoder's buffers
    mark("before encoding")
    return encode_rows(*args, **kwargs)
pretokenized._encode_rows = marked_encode_rows
began = time.perf_counter()
torch.manual_seed(0)
model = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval()
mark("model")
rows = load_audio_dataset({manifest!r})
mark("load_audio_dataset")
summary = pretokenize(rows, model, {out!r}, batch_size=256, progress=False)
mark("pretokenize")
coded = load_pretokenized({out!r})
lm = lm_msn_task_dataset(coded, stage=1)
mark("lm_msn_task_dataset")
mint = mint_task_dataset(rows, stage=1)
mark("mint_task_dataset")
print(json.dumps({{"rows": len(rows), "kept": summary.kept, "lm_msn": len(lm), "mint": len(mint),
                  "peak_anon_kib": peak["anon"], "stages": stages,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "seconds": time.perf_counter() - began}}))
"""


def write_corpus(folder: Path, rows: int) -> Path:
    """100 files of 100 s and a manifest of `rows` distinct 0.1-s windows over them."""
    import numpy as np
    import soundfile as sf

    audio = folder / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(100):
        path = audio / f"f{index:03d}.wav"
        if not path.exists():
            t = np.arange(800_000) / 8000
            signal = 0.3 * np.sin(2 * np.pi * (200 + 5 * index) * t) + 0.05 * rng.standard_normal(t.size)
            sf.write(path, signal.astype(np.float32), 8000, subtype="PCM_16")
    manifest = folder / f"manifest_{rows}.csv"
    with manifest.open("w") as handle:
        handle.write("path,start,end,caption\n")
        for row in range(rows):
            file, window = row % 100, row // 100
            start = window * 0.1
            handle.write(f"audio/f{file:03d}.wav,{start:.1f},{start + 0.1:.1f},tone {file} part {window}\n")
    return manifest


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=2, help="fresh processes per size (the peak moves run to run)")
    parser.add_argument("--out", default="benchmarks/results/streaming_cpu.json")
    args = parser.parse_args(argv)
    if max(args.rows) > 100_000:
        raise ValueError(f"--rows at most 100000 (1000 windows of 0.1 s per file), got {max(args.rows)}")
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sorted(args.rows):
            manifest = write_corpus(Path(tmp), rows)
            runs = []
            for repeat in range(args.repeats):
                output = Path(tmp) / f"pretokenized_{rows}_{repeat}"
                script = CHILD.format(tests=tests, manifest=str(manifest), out=str(output))
                done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"{rows} rows failed:\n{done.stderr[-3000:]}")
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            result = {"rows": rows, "runs": runs,
                      "held_before_encoding_kib": min(r["stages"]["before encoding"]["peak_anon_kib"] for r in runs),
                      "peak_anon_kib": [min(r["peak_anon_kib"] for r in runs), max(r["peak_anon_kib"] for r in runs)],
                      "peak_kib": max(r["peak_kib"] for r in runs), "seconds": min(r["seconds"] for r in runs)}
            results.append(result)
            print(f"{rows} rows: held before encoding {result['held_before_encoding_kib'] / 1024:.0f} MiB, peak "
                  f"anonymous {result['peak_anon_kib'][0] / 1024:.0f}-{result['peak_anon_kib'][1] / 1024:.0f} MiB, "
                  f"{result['seconds']:.0f} s", file=sys.stderr)
    smallest = results[0]
    lines = ["| rows | held before encoding MiB | MiB per 10k more rows | peak anonymous MiB (min-max of runs) "
             "| peak RSS MiB (with mapped files) | seconds |", "|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        extra = (result["held_before_encoding_kib"] - smallest["held_before_encoding_kib"]) / 1024
        per_10k = extra / max(result["rows"] - smallest["rows"], 1) * 10_000 if result is not smallest else 0.0
        low, high = (value / 1024 for value in result["peak_anon_kib"])
        lines.append(f"| {result['rows']} | {result['held_before_encoding_kib'] / 1024:.0f} | {per_10k:.1f} | "
                     f"{low:.0f}-{high:.0f} | {result['peak_kib'] / 1024:.0f} | {result['seconds']:.0f} |")
    table = "\n".join(lines)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {platform.processor()}",
        "command": "python benchmarks/bench_streaming.py " + " ".join(argv or sys.argv[1:]),
        "results": results, "table": table}, indent=2))
    Path(args.out).with_suffix(".md").write_text(table + "\n")
    return results


if __name__ == "__main__":
    main()
