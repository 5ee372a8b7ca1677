"""Command line: ``soundlm tokenize | decode | caption | classify | generate | evaluate | report | export | merge``.

    soundlm tokenize runs/demo/tokenizer_fm/final clip1.wav clip2.ogg --out codes.jsonl
    soundlm decode runs/demo/tokenizer_fm/final codes.jsonl --out-dir decoded/ --num-steps 10
    soundlm caption runs/demo/mint/stage2/final clip1.wav clip2.wav --out captions.jsonl
    soundlm classify runs/demo/mint/stage1/final clip1.wav --labels "applause,rain,dog barking"
    soundlm generate runs/demo/lm_msn/merged "rain on a tin roof" --sound-tokenizer runs/demo/tokenizer_fm/final \\
        --out-dir sounds/
    soundlm evaluate captions.jsonl --references work/corpus/manifest.csv --out scores.json
    soundlm report --model "VQ + FM=runs/demo/tokenizer_fm/final" --data work/corpus/manifest.csv \\
        --report runs/demo/tokenizer_report --out runs/demo/listening_report
    soundlm export runs/demo/tokenizer_fm/final hub/msn-tokenizer --repo-id org/msn-tokenizer
    soundlm merge runs/demo/lm_msn/instruct/final runs/demo/lm_msn/merged

Batch commands skip an input they cannot use, log the reason, and print the counts and the failed inputs at the
end. Exit status: 0 when every input worked, 1 when some failed, 2 on bad arguments or a model that does not load
(a one-line message, no traceback).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger("soundlm")


def _load(model_dir: str):
    """The model of a saved folder and its processor (feature extractor), through the Auto classes, so every
    registered model family loads the same way."""
    from transformers import AutoFeatureExtractor, AutoProcessor

    from . import modeling  # noqa: F401  (importing it registers the families with the Auto classes)

    model = _load_model(model_dir).eval()
    folder = Path(model_dir)
    if (folder / "processor_config.json").exists():
        processor = AutoProcessor.from_pretrained(model_dir)
    elif (folder / "preprocessor_config.json").exists():
        processor = AutoFeatureExtractor.from_pretrained(model_dir)
    else:
        processor = None
    return model, processor


def _load_model(model_dir: str):
    """The model of a folder through the first Auto class that knows its config: `AutoModel` (the tokenizer),
    `AutoModelForPreTraining` (MINT stage 1), `AutoModelForSpeechSeq2Seq` (MINT stage 2)."""
    from transformers import AutoModel, AutoModelForPreTraining, AutoModelForSpeechSeq2Seq

    error = None
    for auto_class in (AutoModel, AutoModelForPreTraining, AutoModelForSpeechSeq2Seq):
        try:
            return auto_class.from_pretrained(model_dir)
        except ValueError as not_this_one:  # "Unrecognized configuration class ... for this kind of AutoModel"
            error = error or not_this_one
    raise error


def _codec(model_dir: str):
    """A model with the codec contract (encode / decode / num_frames) and its feature extractor, or a clear error."""
    try:
        model, extractor = _load(model_dir)
    except ValueError as error:  # transformers: "Unrecognized configuration class ..." and every class it knows
        raise ValueError(f"{model_dir} is not an audio tokenizer folder ({_first_line(error)[:160]})") from error
    missing = [name for name in ("encode", "decode", "num_frames") if not hasattr(model, name)]
    if missing:
        raise ValueError(f"{model_dir}: {type(model).__name__} is not an audio tokenizer (no {', '.join(missing)})")
    if extractor is None:
        raise ValueError(f"{model_dir}: no preprocessor_config.json (the tokenizer's feature extractor) in the folder")
    return model, extractor


def _file_codes(model, extractor, path: str) -> tuple[list[int], int]:
    """Codes of a whole file, encoded window by window: a long file (an hour) is never decoded or encoded whole.

    Windows are the tokenizer's window (`config.window_frames`: the training clip, `clip_seconds`, in whole
    frames), read from the file one at a time and held to exactly that many samples after resampling, so they
    sit on the frame grid: the file gets `num_frames(samples)` codes in all and code k stays at k x hop_length
    samples, however long the file. Each window is encoded from a fresh causal context. Returns (codes, windows).
    """
    import numpy as np

    from .processing.audio_datasets import file_window_rows, read_row_audio

    window = model.config.window_frames * model.hop_length  # samples at the model's rate
    rows = file_window_rows(path, window / model.sample_rate)
    codes: list[int] = []
    for index, row in enumerate(rows):
        audio, rate = read_row_audio(row, model.sample_rate, model.channels)
        if index < len(rows) - 1:  # resampling a window may leave it a sample or two off the grid
            audio = np.pad(audio[:, :window], ((0, 0), (0, max(0, window - audio.shape[-1]))))
        batch = extractor(audio, sampling_rate=rate)
        frames = model.num_frames(int(batch["padding_mask"].sum()))
        codes.extend(model.encode(**batch).audio_codes[0, 0, :frames].tolist())
    return codes, len(rows)


def tokenize(args: argparse.Namespace) -> int:
    from .processing.audio_io import AudioInputError

    model, extractor = _codec(args.model)
    extractor.clip_seconds = None  # one window at a time, padded to whole frames
    ok = failed = 0
    out = open(args.out, "w") if args.out else sys.stdout
    try:
        for path in args.audio:
            try:
                codes, windows = _file_codes(model, extractor, path)
            except (AudioInputError, ValueError, TypeError) as error:
                logger.warning("skipping %s (%s): %s", path, _category(error), error)
                failed += 1
                continue
            record = {"path": str(path), "frame_rate": model.frame_rate, "codebook_size": model.codebook_size,
                      "windows": windows, "codes": codes}
            out.write(json.dumps(record) + "\n")
            ok += 1
    finally:
        if args.out:
            out.close()
    print(f"tokenized {ok} file(s), skipped {failed}", file=sys.stderr)
    return 1 if failed else 0


def decode(args: argparse.Namespace) -> int:
    import soundfile as sf
    import torch

    from .modeling.lm_msn.generation_lm_msn import codes_to_audio

    model, _ = _codec(args.model)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = failed = 0
    with open(args.codes) as handle:
        for line_number, line in enumerate(handle, 1):
            try:
                record = json.loads(line)
                if record.get("codebook_size", model.codebook_size) != model.codebook_size:
                    raise ValueError(f"codes were made with codebook_size={record['codebook_size']}, "
                                     f"this tokenizer has {model.codebook_size}")
                # the whole span checked first, then decoded window by window by the tokenizer's decode
                audio = codes_to_audio(model, record["codes"], num_steps=args.num_steps, scheduler=args.scheduler,
                                       generator=torch.Generator().manual_seed(args.seed))
            except (ValueError, TypeError, KeyError, json.JSONDecodeError) as error:
                logger.warning("skipping line %d: %s", line_number, error)
                failed += 1
                continue
            name = Path(record.get("path", f"line{line_number}")).stem + ".wav"
            sf.write(out_dir / name, audio.T.numpy(), model.sample_rate)
            ok += 1
    print(f"decoded {ok} item(s) to {out_dir}, skipped {failed}", file=sys.stderr)
    return 1 if failed else 0


def _category(error: BaseException) -> str:
    """The log's word for why an input was skipped: the audio error's category, else "bad_argument"."""
    from .processing.audio_io import AudioInputError

    return error.category if isinstance(error, AudioInputError) else "bad_argument"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _summary(verb: str, ok: int, failed: list[str]) -> int:
    """Prints the counts (and the failed inputs) to stderr; 0 if nothing failed, else 1."""
    print(f"{verb} {ok} input(s), failed {len(failed)}", file=sys.stderr)
    for item in failed:
        print(f"  failed: {item}", file=sys.stderr)
    return 1 if failed else 0


def _pipeline(task: str, args: argparse.Namespace, **kwargs):
    """A registered pipeline for ``args.model`` on ``args.device``."""
    from transformers import pipeline

    from . import pipelines  # noqa: F401  (registers the tasks)

    pipe = pipeline(task, model=args.model, device=args.device, **kwargs)
    # a batch path, as `soundlm tokenize`: files of more than two channels are averaged to the model's channels
    # instead of refused (the feature extractors refuse them unless built with downmix=True)
    for extractor in (getattr(pipe, "feature_extractor", None), getattr(pipe, "sound_extractor", None),
                      getattr(getattr(pipe, "processor", None), "feature_extractor", None)):
        if hasattr(extractor, "downmix"):
            extractor.downmix = True
    return pipe


def _run_batches(pipe, inputs: list[str], batch_size: int, call_kwargs: dict, describe: str):
    """(input, result) for each input that worked, and the failed inputs with their reasons; a failing batch is
    retried one input at a time, so that one bad file costs only itself."""
    from tqdm.auto import tqdm

    from .processing.audio_io import AudioInputError

    user_errors = (AudioInputError, ValueError, TypeError, OSError, RuntimeError)
    done, failed = [], []
    with tqdm(total=len(inputs), desc=describe, unit="input", disable=None) as bar:
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start: start + batch_size]
            try:
                done += list(zip(chunk, pipe(chunk, batch_size=len(chunk), **call_kwargs)))
            except user_errors:
                for item in chunk:
                    try:
                        done.append((item, pipe(item, **call_kwargs)))
                    except user_errors as error:
                        logger.warning("skipping %s (%s): %s", item, _category(error), error)
                        failed.append(f"{item}: {_first_line(error)}")
            bar.update(len(chunk))
    return done, failed


def _write_jsonl(records: list[dict], out: str | None) -> None:
    text = "".join(json.dumps(record) + "\n" for record in records)
    if out:
        Path(out).write_text(text)
    else:
        sys.stdout.write(text)


def _audio_guidance(pipe, args: argparse.Namespace) -> float | None:
    """`--audio-guidance`, refused for a pipeline that reads no sound tokens (anything but LM-MSN)."""
    if args.audio_guidance is not None and getattr(pipe, "sound_tokenizer", None) is None:
        raise ValueError(f"--audio-guidance is for LM-MSN models (sound tokens in the LLM's prompt), got "
                         f"{type(pipe.model).__name__}")
    return args.audio_guidance


def caption(args: argparse.Namespace) -> int:
    extra = {"sound_tokenizer": args.sound_tokenizer} if args.sound_tokenizer else {}
    pipe = _pipeline("audio-text-to-text", args, **extra)
    call = {"max_new_tokens": args.max_new_tokens, **({"prompt": args.prompt} if args.prompt else {})}
    if (guidance := _audio_guidance(pipe, args)) is not None:
        call["generate_kwargs"] = {"audio_guidance_scale": guidance}
    done, failed = _run_batches(pipe, args.audio, args.batch_size, call, "caption")
    _write_jsonl([{"path": path, "text": result[0]["generated_text"]} for path, result in done], args.out)
    return _summary("captioned", len(done), failed)


def classify(args: argparse.Namespace) -> int:
    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    if len(labels) < 2:
        raise ValueError(f"--labels needs at least two comma-separated labels, got {args.labels!r}")
    extra = {"sound_tokenizer": args.sound_tokenizer} if args.sound_tokenizer else {}
    pipe = _pipeline("zero-shot-audio-classification", args, **extra)
    call = {"candidate_labels": labels}
    if args.template:
        call["hypothesis_template"] = args.template
    if args.instruction:
        call["instruction"] = args.instruction
    if (guidance := _audio_guidance(pipe, args)) is not None:
        call["audio_guidance_scale"] = guidance
    done, failed = _run_batches(pipe, args.audio, args.batch_size, call, "classify")
    _write_jsonl([{"path": path, "labels": result} for path, result in done], args.out)
    return _summary("classified", len(done), failed)


def generate(args: argparse.Namespace) -> int:
    import re

    from .processing.audio_io import write_audio

    pipe = _pipeline("text-to-audio", args, sound_tokenizer=args.sound_tokenizer)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    call = {"seed": args.seed, "num_steps": args.num_steps}
    if args.max_audio_tokens:
        call["max_audio_tokens"] = args.max_audio_tokens
    done, failed = _run_batches(pipe, args.text, args.batch_size, call, "generate")
    for index, (text, result) in enumerate(done):
        name = f"{index:03d}_{re.sub(r'[^A-Za-z0-9]+', '_', text).strip('_')[:60]}.wav"
        write_audio(out_dir / name, result["audio"], result["sampling_rate"])
        print(out_dir / name)
    return _summary("generated", len(done), failed)


def evaluate(args: argparse.Namespace) -> int:
    """Scores `soundlm caption` / `soundlm classify` output against a manifest's captions / labels."""
    from .evaluation.captioning import caption_scores
    from .evaluation.classification import accuracy
    from .processing.audio_datasets import manifest_rows

    references: dict[str, list[dict]] = {}
    for audio_path, row in manifest_rows(args.references, args.path_column):
        references.setdefault(audio_path, []).append(row)
    predictions = [json.loads(line) for line in Path(args.predictions).read_text().splitlines() if line.strip()]
    matched, failed = [], []
    for record in predictions:
        rows = references.get(str(Path(record.get("path", "")).resolve()))
        if rows is None:
            failed.append(f"{record.get('path')}: not in {args.references}")
        else:
            matched.append((record, rows))
    if not matched:
        raise ValueError(f"no prediction of {args.predictions} matches a row of {args.references} by path")
    scores: dict[str, Any] = {"predictions": len(predictions), "matched": len(matched)}
    captioned = [(r["text"], [row[args.caption_column] for row in rows if row.get(args.caption_column)])
                 for r, rows in matched if "text" in r]
    captioned = [(text, refs) for text, refs in captioned if refs]
    if captioned:
        result = caption_scores([text or "(empty)" for text, _ in captioned], [refs for _, refs in captioned],
                                spice=False)
        scores["captioning"] = {key: value for key, value in result.items() if isinstance(value, float)}
        scores["captioning"]["items"] = len(captioned)
    labelled = [(r["labels"][0]["label"], rows[0][args.label_column]) for r, rows in matched
                if r.get("labels") and rows[0].get(args.label_column)]
    if labelled:
        scores["classification"] = {"accuracy": accuracy([p for p, _ in labelled], [t for _, t in labelled]),
                                    "items": len(labelled)}
    if "captioning" not in scores and "classification" not in scores:
        raise ValueError("the predictions hold neither captions ('text') nor labels ('labels') with a reference")
    text = json.dumps(scores, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return _summary("scored", len(matched), failed)


def report(args: argparse.Namespace) -> int:
    from .evaluation.listening_report import run

    run(args)
    return 0


def export(args: argparse.Namespace) -> int:
    from .modeling.hub_export import export_for_hub
    from .processing.pretokenized import weights_sha256

    processor_config = Path(args.model) / "processor_config.json"
    lm_msn = (processor_config.exists()
              and json.loads(processor_config.read_text()).get("processor_class") == "AudioTokenProcessor")
    bundled_tokenizer = False
    card: dict[str, Any] = {}
    auto_class = "AutoModel"
    if lm_msn:  # a merged LM-MSN folder: a plain causal LM (no remote code) with the package's processor
        from transformers import AutoModelForCausalLM, AutoProcessor

        from .modeling.lm_msn import lm_msn_card_fields

        if not args.sound_tokenizer:
            raise ValueError("an LM-MSN folder needs --sound-tokenizer (the Hub id or folder of the MSN tokenizer "
                             "whose codes it reads and writes)")
        model = AutoModelForCausalLM.from_pretrained(args.model).eval()
        processor = AutoProcessor.from_pretrained(args.model)
        # a local tokenizer folder travels inside the export (sound_tokenizer/), so the folder's remote-code
        # pipelines need nothing else; a Hub id is only named in the card
        bundled_tokenizer = Path(args.sound_tokenizer).is_dir()
        card = lm_msn_card_fields(model, processor, args.sound_tokenizer, args.base_model, repo_id=args.repo_id,
                                  bundled=bundled_tokenizer)
        # the pipelines' default prompts, saved with the processor: remote code cannot read the package's JSON
        processor.prompts = processor.stage2_prompts
        auto_class = "AutoModelForCausalLM"
    else:
        model, processor = _load(args.model)
    notes = ""
    config_file = Path(args.model) / "training_config.json"
    if config_file.exists():
        notes = f"Training config (`training_config.json` of the run):\n\n```json\n{config_file.read_text()}\n```"
    model_index = None
    if args.results:
        if not hasattr(model, "hub_model_index"):
            raise ValueError(f"--results: {type(model).__name__} does not read evaluation reports into model-index")
        report_file = Path(args.results)
        report = json.loads(report_file.read_text())
        dataset = {"name": args.dataset_name, "type": args.dataset_type, "split": str(report.get("split", "test"))}
        row = {"row": args.results_row} if args.results_row else {}
        model_index = model.hub_model_index(report, dataset, **row)
        measured = datetime.date.fromtimestamp(report_file.stat().st_mtime).isoformat()
        notes = (f"Measured results (the card's `model-index`): `{report_file.name}` written {measured}, on "
                 f"{dataset['name']} ({dataset['split']} split, {report.get('clips', '?')} clips), by this package's "
                 f"evaluation; small-scale numbers, not the paper's benchmarks.\n\n{notes}")
    from .pipelines import remote_pipelines

    folder = export_for_hub(model, Path(args.out).resolve(), processor, repo_id=args.repo_id,
                            extra_card_fields={**card, "training_notes": notes}, model_index=model_index,
                            card_template="lm_msn.md" if lm_msn else None,
                            pipelines=remote_pipelines(model, processor))
    if lm_msn and bundled_tokenizer:
        from .pipelines.lm_msn_support import SOUND_TOKENIZER_SUBFOLDER

        tokenizer_model, extractor = _load(args.sound_tokenizer)
        export_for_hub(tokenizer_model, folder / SOUND_TOKENIZER_SUBFOLDER, extractor,
                       repo_id=f"{args.repo_id} (subfolder {SOUND_TOKENIZER_SUBFOLDER})",
                       pipelines=remote_pipelines(tokenizer_model))
    print(f"exported to {folder}")
    if args.no_check:
        return 0
    # load it as a Hub user would: a fresh interpreter that never imports soundlm, and the same weights
    check = (
        "import hashlib, sys, torch\n"
        f"from transformers import {auto_class}\n"
        f"model = {auto_class}.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()\n"
        "assert not any(name.split('.')[0] == 'soundlm' for name in sys.modules), 'soundlm was imported'\n"
        "digest = hashlib.sha256()\n"
        "for name, tensor in sorted(model.state_dict().items()):\n"
        "    tensor = tensor.detach().cpu().contiguous()\n"
        "    digest.update(f'{name}:{tensor.dtype}:{tuple(tensor.shape)}'.encode())\n"
        "    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b'')\n"
        "print(type(model).__name__, digest.hexdigest())\n"
    )
    if processor is not None:
        auto = "AutoProcessor" if (folder / "processor_config.json").exists() else "AutoFeatureExtractor"
        check += (f"from transformers import {auto}\n"
                  f"{auto}.from_pretrained({str(folder)!r}, trust_remote_code=True)\n")
    result = subprocess.run([sys.executable, "-c", check], cwd=folder, capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        return result.returncode
    loaded_class, loaded_digest = result.stdout.split()
    if loaded_digest != weights_sha256(model):
        print(f"remote-code load gave other weights than {args.model}", file=sys.stderr)
        return 1
    print(f"remote-code load ok: {loaded_class}, weights identical (sha256 {loaded_digest[:12]})")
    return 0


def merge(args: argparse.Namespace) -> int:
    from .modeling.lm_msn import merge_audio_llm

    out = merge_audio_llm(args.adapter, args.out, base_model=args.base_model)
    print(f"merged {args.adapter} into {out} (loads with AutoModelForCausalLM and AutoProcessor, no peft)")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="soundlm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("tokenize", help="audio files -> codes (JSON lines)")
    p.add_argument("model")
    p.add_argument("audio", nargs="+")
    p.add_argument("--out", help="JSONL file (default: stdout)")
    p.set_defaults(func=tokenize)
    p = commands.add_parser("decode", help="codes (JSON lines) -> WAV files")
    p.add_argument("model")
    p.add_argument("codes")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--num-steps", type=int, default=10)
    p.add_argument("--scheduler", default="euler", choices=["euler", "heun"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=decode)
    runtime = argparse.ArgumentParser(add_help=False)
    runtime.add_argument("--device", default=None, help="e.g. cpu, cuda, cuda:1 (default: cpu)")
    runtime.add_argument("--batch-size", type=int, default=8, help="inputs per model call (default 8)")
    runtime.add_argument("--out", help="JSONL file (default: stdout)")
    p = commands.add_parser(
        "caption", parents=[runtime], help="audio files -> text (MINT stage 2, or LM-MSN with --sound-tokenizer)",
        epilog="example: soundlm caption runs/demo/mint/stage2/final a.wav b.wav --out captions.jsonl")
    p.add_argument("model", help="a MINT stage-2 folder, or a merged LM-MSN folder (with --sound-tokenizer)")
    p.add_argument("audio", nargs="+")
    p.add_argument("--prompt", help="instruction (default: the model family's captioning prompt)")
    p.add_argument("--sound-tokenizer", help="LM-MSN only: the MSN tokenizer folder (default: the model folder's "
                                             "sound_tokenizer/)")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--audio-guidance", type=float, default=None,
                   help="LM-MSN only: audio guidance scale w (1 = none; w > 1 favours what the audio makes likelier "
                        "than the prompt alone; README 'LM-MSN audio LLM')")
    p.set_defaults(func=caption)
    p = commands.add_parser(
        "classify", parents=[runtime],
        help="audio files -> scores of the given labels (MINT stage 1 or 2, or LM-MSN with --sound-tokenizer)",
        epilog='example: soundlm classify runs/demo/mint/stage1/final a.wav --labels "applause,rain,dog barking"')
    p.add_argument("model", help="a MINT stage-1 or stage-2 folder, or a merged LM-MSN folder")
    p.add_argument("audio", nargs="+")
    p.add_argument("--labels", required=True, help="comma-separated candidate labels")
    p.add_argument("--template", help='MINT stage 1: text around each label (default "This is a sound of {}")')
    p.add_argument("--instruction", help='MINT stage 2 and LM-MSN: the prompt the labels answer (default: MINT "This '
                                         'is a sound of", LM-MSN its processor\'s classification prompt)')
    p.add_argument("--sound-tokenizer", help="LM-MSN only: the MSN tokenizer folder (default: the model folder's "
                                             "sound_tokenizer/)")
    p.add_argument("--audio-guidance", type=float, default=None,
                   help="LM-MSN only: audio guidance scale w of the label scores (1 = likelihood; 2 = how much the "
                        "audio raises each label over the prompt alone)")
    p.set_defaults(func=classify)
    p = commands.add_parser(
        "generate", parents=[runtime], help="text -> WAV files with LM-MSN and its sound tokenizer",
        epilog="example: soundlm generate runs/demo/lm_msn/merged \"rain on a tin roof\" "
               "--sound-tokenizer runs/demo/tokenizer_fm/final --out-dir sounds/")
    p.add_argument("model", help="a merged LM-MSN folder (soundlm merge)")
    p.add_argument("text", nargs="+", help="one caption per sound")
    p.add_argument("--sound-tokenizer", help="the MSN tokenizer folder that decodes the codes (default: the model "
                                             "folder's sound_tokenizer/, which soundlm export writes)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-steps", type=int, default=10, help="flow-matching decoder steps")
    p.add_argument("--max-audio-tokens", type=int, default=None, help="default: one decoder window")
    p.set_defaults(func=generate)
    p = commands.add_parser(
        "evaluate", help="score caption / classify output (JSONL) against a manifest's captions and labels",
        epilog="example: soundlm evaluate captions.jsonl --references work/corpus/manifest.csv --out scores.json")
    p.add_argument("predictions", help="JSONL written by soundlm caption or soundlm classify")
    p.add_argument("--references", required=True, help="CSV / JSONL manifest with the audio paths and references")
    p.add_argument("--path-column", help="the audio path column (default: the first of path, file_name, audio, "
                                         "audio_path present, as manifests are read everywhere)")
    p.add_argument("--caption-column", default="caption")
    p.add_argument("--label-column", default="label")
    p.add_argument("--out", help="JSON file of the scores")
    p.set_defaults(func=evaluate)
    p = commands.add_parser(
        "report", help="the listening report: a static HTML folder to judge the tokenizers by ear and eye",
        epilog='example: soundlm report --model "VQ + FM=runs/demo/tokenizer_fm/final" --model '
               '"VQ + MSE=runs/demo/tokenizer_mse/final" --data work/corpus/manifest.csv '
               '--report runs/demo/tokenizer_report --out runs/demo/listening_report')
    from .evaluation.listening_report import add_arguments as add_report_arguments

    add_report_arguments(p)
    p.set_defaults(func=report)
    p = commands.add_parser("export", help="write a Hub-ready folder and check it loads with remote code",
                            epilog="example: soundlm export runs/demo/mint/stage1/final hub/mint-stage1 --repo-id "
                                   "org/mint-stage1 --results runs/demo/mint_report/report.json")
    p.add_argument("model", help="a saved model folder of any soundlm family")
    p.add_argument("out")
    p.add_argument("--repo-id", default="your-org/model")
    p.add_argument("--no-check", action="store_true")
    p.add_argument("--results", help="an evaluation report.json (e.g. runs/demo/mint_report/report.json) whose "
                                     "numbers go into the card's model-index")
    p.add_argument("--sound-tokenizer", help="LM-MSN: its sound tokenizer; a folder is exported into sound_tokenizer/ "
                                             "(the remote-code pipelines read it), a Hub id is named in the card")
    p.add_argument("--base-model", help="LM-MSN: the base LLM's Hub id (the card's base_model)")
    p.add_argument("--results-row", help="tokenizer reports: the row of this model (default: the row whose config "
                                         "is this model's)")
    p.add_argument("--dataset-name", default="soundlm demo corpus (Debian packages)",
                   help="the dataset the report measured on, as the card names it")
    p.add_argument("--dataset-type", default="soundlm-demo-corpus", help="its model-index dataset type (an id)")
    p.set_defaults(func=export)
    p = commands.add_parser("merge", help="LM-MSN adapter folder -> plain merged model folder (AutoModelForCausalLM)")
    p.add_argument("adapter", help="a folder written by training/finetune.py (<run>/<stage>/final)")
    p.add_argument("out")
    p.add_argument("--base-model", help="the base LLM folder or Hub id (default: the adapter's)")
    p.set_defaults(func=merge)
    args = parser.parse_args(argv)
    if getattr(args, "batch_size", 1) < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as error:  # bad arguments or a model that does not load: no traceback
        print(f"soundlm {args.command}: error: {_first_line(error)[:500]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
