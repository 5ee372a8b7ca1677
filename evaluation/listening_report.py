"""The listening report: a static HTML folder (no server, no network) in which a person judges the models by ear
and by eye.

For a few held-out clips (`clips_per_category` per category of the split) it holds the original, the front end's
own resynthesis, and each tokenizer's reconstruction from its codes: flow matching at several step counts and
temperatures (`fm_steps` x `temperatures`), MSE once; each as a WAV with an audio player, the log-mel spectrograms
of all of them side by side in one PNG, and the codes as a compact strip (one coloured cell per token). From the
evaluation report folders it is given (`reports`: the tokenizer, LM-MSN and MINT reports of the demo) it adds
their summary tables (`report.md`), their plots (`*.png`), generated vs reference captions and the sounds the LLM
generated from text. A small script in the page records what the browser saw (errors, each audio element's
duration, each image's size) in `#selfcheck`, which the tests read from headless Chromium.

    python -m soundlm.evaluation.listening_report --model "VQ + FM=runs/demo/tokenizer_fm/final" \\
        --model "VQ + MSE=runs/demo/tokenizer_mse/final" --data work/corpus/manifest.csv \\
        --report runs/demo/tokenizer_report --report runs/demo/mint_report --out runs/demo/listening_report
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from ..modeling.msn_tokenizer import MSNTokenizerModel
from ..processing.audio_datasets import read_row_audio
from ..processing.audio_io import write_audio
from ..processing.latent_cache import build_latent_cache
from .reconstruction import load_named_tokenizers
from .tokenizer_report import plot_log_mel_rows

SELF_CHECK = """
<script>
const found = {errors: [], audio: [], images: []};
window.addEventListener("error", (event) => found.errors.push(String(event.message || event.target.src || event)),
                        true);
function settled(element) {
  return new Promise((resolve) => {
    const done = () => resolve();
    if (element.tagName === "IMG") {
      if (element.complete) { done(); } else { element.onload = done; element.onerror = done; }
    } else if (element.readyState >= 1) { done(); } else {
      element.addEventListener("loadedmetadata", done); element.addEventListener("error", done);
    }
  });
}
window.addEventListener("load", async () => {
  const audios = [...document.querySelectorAll("audio")], images = [...document.querySelectorAll("img")];
  await Promise.all([...audios, ...images].map(settled));
  audios.forEach((a) => found.audio.push({src: a.currentSrc || a.src, duration: a.duration || 0,
                                          error: a.error ? a.error.code : null}));
  images.forEach((i) => found.images.push({src: i.src, width: i.naturalWidth, height: i.naturalHeight}));
  document.getElementById("selfcheck").textContent = JSON.stringify(found);
});
</script>
"""

STYLE = """
<style>
body { font-family: sans-serif; margin: 1.5em; max-width: 1300px; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.5em; vertical-align: top; }
audio { width: 230px; height: 32px; }
img.spectrogram { max-width: 100%; }
img.codes { image-rendering: pixelated; height: 14px; width: 100%; max-width: 900px; }
pre#selfcheck { display: none; }
</style>
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _code_strip(codes: np.ndarray, codebook_size: int, path: Path) -> None:
    """One pixel per token, coloured by its code: repeated codes and their runs show at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image

    colours = matplotlib.colormaps["turbo"](codes.astype(np.float64) / max(codebook_size - 1, 1))[None, :, :3]
    path.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(path, (colours * 255).astype(np.uint8))


def reconstructions(models: dict[str, MSNTokenizerModel], latents: torch.Tensor, length: int,
                    fm_steps: tuple[int, ...], temperatures: tuple[float, ...], seed: int
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """{system: audio (channels, samples)} of one clip's latents (1, frames, dims) and {tokenizer: codes}."""
    first = next(iter(models.values()))
    audio = {"front end": first.latents_to_audio(latents)[0, :, :length].numpy()}
    codes = {}
    with torch.no_grad():
        for name, model in models.items():
            tokens = model.encode_latents(latents)
            codes[name] = tokens[0, 0].numpy()
            if model.config.decoder_objective == "mse":
                settings = [(name, 1, 1.0)]
            else:
                settings = [(f"{name}, {steps} steps, T={temperature:g}", steps, temperature)
                            for temperature in temperatures for steps in fm_steps]
            for label, steps, temperature in settings:
                decoded = model.decode_latents(tokens, num_steps=steps, temperature=temperature,
                                               generator=torch.Generator().manual_seed(seed))
                audio[label] = model.latents_to_audio(decoded)[0, :, :length].numpy()
    return audio, codes


def _markdown_tables(text: str) -> str:
    """The markdown of a report as HTML: its tables as tables, every other line as a paragraph."""
    out, rows = [], []

    def flush() -> None:
        if rows:
            cells = [[html.escape(cell.strip()) for cell in row.strip().strip("|").split("|")] for row in rows
                     if not re.fullmatch(r"\|[\s:|-]+\|", row.strip())]
            head, *body = cells
            out.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body)
                       + "</table>")
            rows.clear()

    for line in text.splitlines():
        if line.strip().startswith("|"):
            rows.append(line)
            continue
        flush()
        if line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def _report_sections(report_dir: Path, out: Path) -> list[str]:
    """HTML for one evaluation report folder: its tables, plots, captions and generated sounds."""
    name = report_dir.name
    parts = [f"<h2>{html.escape(name)}</h2>"]
    data = json.loads((report_dir / "report.json").read_text()) if (report_dir / "report.json").exists() else {}
    captions = data.get("captions")
    if isinstance(captions, dict):
        captions = captions.get("samples")
    if isinstance(captions, list) and captions:
        rows = "".join(f"<tr><td>{html.escape(str(c.get('reference', '')))}</td>"
                       f"<td>{html.escape(str(c.get('generated', '')))}</td></tr>" for c in captions[:12])
        parts.append(f"<h3>captions</h3><table><tr><th>reference</th><th>generated</th></tr>{rows}</table>")
    sounds = [s for s in data.get("sounds", []) if Path(s.get("wav", "")).is_file()]
    if sounds:
        rows = []
        for index, sound in enumerate(sounds):
            target = out / "sounds" / f"{_slug(name)}_{index}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sound["wav"], target)
            heard = ", ".join(sound.get("yamnet_generated", []))
            rows.append(f"<tr><td>{html.escape(sound.get('caption', ''))}</td><td><audio controls preload="
                        f"\"metadata\" src=\"{target.relative_to(out).as_posix()}\"></audio></td>"
                        f"<td>{html.escape(heard)}</td></tr>")
        parts.append("<h3>sounds generated from text</h3><table><tr><th>prompt</th><th>generated</th>"
                     "<th>YAMNet hears</th></tr>" + "".join(rows) + "</table>")
    for png in sorted(report_dir.glob("*.png")):
        target = out / "plots" / f"{_slug(name)}_{png.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, target)
        parts.append(f"<p><img class=\"spectrogram\" alt=\"{html.escape(png.stem)}\" "
                     f"src=\"{target.relative_to(out).as_posix()}\"></p>")
    if (report_dir / "report.md").exists():
        parts.append(_markdown_tables((report_dir / "report.md").read_text()))
    return parts


def listening_report(
    models: dict[str, MSNTokenizerModel], data: str, out: str | Path, split: str = "test",
    cache_dir: str = "work/cache", clips_per_category: int = 1, fm_steps: tuple[int, ...] = (4, 10, 32),
    temperatures: tuple[float, ...] = (0.0, 1.0), seed: int = 0, reports: tuple[str | Path, ...] = (),
) -> Path:
    """Writes the report into ``out`` (see the module docstring); returns the path of its `index.html`."""
    if not models:
        raise ValueError("models is empty: pass at least one tokenizer")
    if clips_per_category < 1:
        raise ValueError(f"clips_per_category must be >= 1, got {clips_per_category}")
    for report in reports:
        if not Path(report).is_dir():
            raise ValueError(f"report {str(report)!r} is not a folder (an evaluation report's --out)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    first = next(iter(models.values()))
    rate = first.sample_rate
    cache = build_latent_cache(data, first, cache_dir, window_seconds=first.config.clip_seconds)
    chosen: dict[str, list[int]] = {}
    for index in cache.select(split=split):
        category = cache.rows[index].get("category") or "all"
        if len(chosen.setdefault(category, [])) < clips_per_category:
            chosen[category].append(index)
    if not chosen:
        raise ValueError(f"no clip of split {split!r} in {data}")

    body = [f"<h1>Listening report</h1><p>{sum(map(len, chosen.values()))} held-out clips of {html.escape(data)} "
            f"(split {html.escape(split)}), {rate} Hz; flow matching from seed {seed}. Tokenizers: "
            f"{html.escape(', '.join(models))}.</p>"]
    for category, indices in sorted(chosen.items()):
        for index in indices:
            row = cache.rows[index]
            original, _ = read_row_audio(row, rate, first.channels)
            clip_id = _slug(f"{category}_{row.get('source_id') or index}")[:80]
            audio, codes = reconstructions(models, cache.clip(index)[None], original.shape[-1], tuple(fm_steps),
                                           tuple(temperatures), seed)
            audio = {"original": original, **audio}
            body.append(f"<h2>{html.escape(category)}: {html.escape(str(row.get('caption') or row.get('label')))}"
                        f"</h2><table><tr><th>system</th><th>listen</th></tr>")
            for system, clip in audio.items():
                path = out / "audio" / clip_id / f"{_slug(system)}.wav"
                write_audio(path, clip, rate)
                body.append(f"<tr><td>{html.escape(system)}</td><td><audio controls preload=\"metadata\" "
                            f"src=\"{path.relative_to(out).as_posix()}\"></audio></td></tr>")
            body.append("</table>")
            for name, tokens in codes.items():
                strip = out / "img" / f"{clip_id}_codes_{_slug(name)}.png"
                _code_strip(tokens, models[name].config.codebook_size, strip)
                body.append(f"<p>{html.escape(name)} codes ({len(tokens)} tokens): <img class=\"codes\" alt=\"codes\" "
                            f"title=\"{' '.join(map(str, tokens[:400]))}\" src=\"{strip.relative_to(out).as_posix()}\">"
                            "</p>")
            picture = out / "img" / f"{clip_id}_spectrograms.png"
            plot_log_mel_rows(audio, rate, f"{category}: log-mel spectrograms", picture, width=9.0, row_height=1.2,
                              dpi=90, label_size=7)
            body.append(f"<p><img class=\"spectrogram\" alt=\"spectrograms\" src=\""
                        f"{picture.relative_to(out).as_posix()}\"></p>")
    for report in reports:
        body += _report_sections(Path(report), out)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Listening report</title>"
            f"{STYLE}</head><body>\n" + "\n".join(body) + "\n<pre id=\"selfcheck\"></pre>\n" + SELF_CHECK
            + "</body></html>\n")
    index_html = out / "index.html"
    index_html.write_text(page)
    return index_html


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's command-line arguments (this module's `main` and `soundlm report`)."""
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH of a saved tokenizer (repeat)")
    parser.add_argument("--data", required=True, help="audio folder, .csv/.jsonl manifest or Hub dataset id")
    parser.add_argument("--split", default="test")
    parser.add_argument("--cache_dir", "--cache-dir", default="work/cache")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips_per_category", "--clips-per-category", type=int, default=1)
    parser.add_argument("--fm_steps", "--fm-steps", type=int, nargs="+", default=[4, 10, 32])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--report", action="append", default=[], help="an evaluation report folder (repeatable)")
    parser.add_argument("--out", required=True)


def run(args: argparse.Namespace) -> Path:
    page = listening_report(load_named_tokenizers(args.model), args.data, args.out, args.split, args.cache_dir,
                            args.clips_per_category, tuple(args.fm_steps), tuple(args.temperatures), args.seed,
                            tuple(args.report))
    print(f"listening report: {page.resolve()}")
    return page


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
