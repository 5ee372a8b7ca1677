"""The LM-MSN audio LLM judged on held-out clips: captions (Table II's task), label guessing (Table III's rule) and
text-to-audio samples.

    python -m soundlm.evaluation.lm_msn_report --adapter runs/demo/lm_msn/instruct/final \
        --pretokenized work/pretokenized/corpus --sound_tokenizer runs/demo/tokenizer_fm/final \
        --out runs/demo/lm_msn_report

For the clips of `--split` of a pre-tokenised corpus (`training/pretokenize.py`):

- **captions**: the audio and the first captioning prompt of `processing/templates/lm_msn_prompts.json` in the
  LLM's chat template; printed beside the reference, scored with `evaluation/captioning.py`
  (BLEU, METEOR, ROUGE-L, CIDEr-D with pycocoevalcap when Java is there; MiniLM sentence similarity as a
  FENSE-like stand-in; SPICE and FENSE need models that cannot be had offline). A floor beside it: the most
  frequent training caption given for every clip.
- **label guessing** (Table III): the first classification prompt; an answer is correct when it names the clip's
  label (`evaluation.classification.label_in_text_accuracy`); per class the most frequent outputs; chance level
  (a uniform guess among the training labels) and the majority-label floor beside it.

- **listening control**: the same two prompts with each clip's codes swapped for another held-out clip's (the
  clip half the list away, so no clip keeps its own), scored against the first clip's reference and label. A model
  that listens scores lower on swapped audio and changes its answer; `changed` is the share of clips whose answer
  differs when the audio is swapped (0 % for a model that ignores the audio). Greedy answers are a coarse test (a
  model can lean on the audio and still give its most frequent answer), so the control also scores each reference
  answer teacher-forced: its negative log-likelihood (nats per answer token) after the clip's own codes and after
  the swapped ones (`answer_nll`). A model that uses the audio gives its own clip's reference a lower loss; the
  share of clips where it does is printed beside the means (one half for a model that ignores the audio), with the
  two-sided sign-test p-value of that share (`sign_test_p`).
- **label ranking** (`label_ranking`, `--no_label_ranking` skips it): label guessing as a closed-set choice. Every
  training label is scored as the answer to the classification prompt about each clip (`score_answers`: its
  log-likelihood as trained, end-of-turn token included), at audio guidance w = 1 (likelihood), 2 (how much the
  audio raises it over the prompt alone) and `--audio_guidance`; top-1 and top-5 accuracy, the spread of the
  picks, and the same with swapped audio, clip by clip. It tells what the model knows about a clip where the
  greedy answer is its prior.
- **what the codes alone tell**: each held-out clip labelled as its nearest training clip by the cosine of their
  code histograms (`nearest_code_histogram_labels`); it shows how much of the label the codes carry, beside what
  the LLM makes of them.

Text is decoded greedily with `no_repeat_ngram_size=3` (a briefly trained small LLM otherwise repeats a phrase
until the token budget runs out), with audio guidance `--audio_guidance` w (`generate_text`: each token scored by
w log p(y | audio, prompt) + (1 - w) log p(y | prompt)); for w != 1 the plain greedy answers are scored beside the
guided ones, with the number of different answers each gives (one for a model that answers with its prior). The
listening control decodes as the answers do.
- **text to audio**: `--num_sounds` held-out captions through the first text-to-audio prompt, sampled
  (`--top_k`, `--temperature`, seeded), spans capped at the sound tokenizer's window, decoded by the sound
  tokenizer's decoder into `sounds/*.wav`; with YAMNet installed each sound's top AudioSet classes are printed
  beside the reference clip's, as a check by a real audio network.

Writes `report.md` and `report.json` to `--out`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..modeling.lm_msn import example_losses, generate_audio, generate_text, load_audio_llm, score_answers
from ..processing.audio_io import write_audio
from ..processing.pretokenized import load_pretokenized
from ..processing.tasks import TaskExample, audio_question, load_lm_msn_prompts, text_segment
from .captioning import caption_scores
from .classification import format_label_match_table, label_in_text_accuracy

logger = logging.getLogger(__name__)


def _question(row, prompt: str) -> list:
    """The user turn that asks `prompt` about a row's audio, as training asked it (`audio_question`)."""
    return audio_question(row["codes"], prompt)


def answers(model, processor, rows: list, prompt: str, batch_size: int, max_new_tokens: int,
            audio_guidance_scale: float = 1.0) -> list[str]:
    """Greedy text answers to `prompt` about each row's audio (`rows[i]["codes"]`), in the LLM's chat template,
    with audio guidance `audio_guidance_scale` (`generate_text`; 1 = none)."""
    out: list[str] = []
    for start in range(0, len(rows), batch_size):
        segments = [processor.chat_segments(_question(row, prompt)) for row in rows[start:start + batch_size]]
        out += generate_text(model, processor, segments, max_new_tokens=max_new_tokens, no_repeat_ngram_size=3,
                             audio_guidance_scale=audio_guidance_scale)
    return out


def answer_nll(model, processor, rows: list, prompt: str, references: list[str], batch_size: int) -> list[float]:
    """Teacher-forced loss of each reference answer: the mean negative log-likelihood (nats per target token, the
    template's end-of-turn token included) of `references[i]` as the assistant's answer to `rows[i]`'s audio and
    `prompt`, in the LLM's chat template. Returns one float per row."""
    if len(rows) != len(references):
        raise ValueError(f"rows and references must have the same length, got {len(rows)} and {len(references)}.")
    losses: list[float] = []
    device = next(model.parameters()).device
    for start in range(0, len(rows), batch_size):
        examples = [TaskExample("answer", processor.chat_segments(_question(row, prompt), [text_segment(reference)]))
                    for row, reference in zip(rows[start:start + batch_size], references[start:start + batch_size])]
        batch = processor(examples)
        with torch.no_grad():
            losses += example_losses(model, batch["input_ids"].to(device), batch["labels"].to(device),
                                     batch["attention_mask"].to(device)).tolist()
    return losses


def nearest_code_histogram_labels(train_codes: list, train_labels: list[str], test_codes: list,
                                  codebook_size: int) -> list[str]:
    """Each test clip's label guessed as the label of the training clip whose code histogram is nearest by cosine
    (how much of the label the codes alone carry; no LLM involved). Codes: one sequence of ints per clip."""
    if not train_codes or len(train_codes) != len(train_labels):
        raise ValueError(f"train_codes and train_labels must be non-empty and of the same length, got "
                         f"{len(train_codes)} and {len(train_labels)}.")

    def histograms(codes: list) -> torch.Tensor:
        counts = torch.stack([torch.bincount(torch.as_tensor(c, dtype=torch.long).flatten(), minlength=codebook_size)
                              for c in codes]).float()
        return torch.nn.functional.normalize(counts, dim=1)

    nearest = (histograms(test_codes) @ histograms(train_codes).T).argmax(dim=1)
    return [train_labels[int(index)] for index in nearest]


def _non_empty(captions: list[str]) -> list[str]:
    """An empty answer scored as "(empty)": the caption metrics refuse empty strings."""
    return [caption if caption.strip() else "(empty)" for caption in captions]


def swapped_audio(rows: list) -> list:
    """Each row with the codes of the row half the list away (a derangement of the audio for 2+ rows)."""
    shift = len(rows) // 2
    return [{**row, "codes": rows[(index + shift) % len(rows)]["codes"]} for index, row in enumerate(rows)]


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign-test p-value of `wins` against `losses` (ties left out): the chance of a split at least
    this uneven if each clip were equally likely to fall either way."""
    if wins < 0 or losses < 0:
        raise ValueError(f"wins and losses must be >= 0, got {wins} and {losses}.")
    total = wins + losses
    if total == 0:
        return 1.0
    tail = sum(math.comb(total, k) for k in range(max(wins, losses), total + 1))
    return min(1.0, 2 * tail / 2 ** total)


def _answer_nll_control(model, processor, rows: list, swapped_rows: list, prompt: str, references: list[str],
                        batch_size: int) -> dict[str, float]:
    """`answer_nll` after each row's own codes and after the swapped ones, summarised: the two means, the share of
    rows whose own codes give the lower loss, and the sign-test p of that share."""
    own = answer_nll(model, processor, rows, prompt, references, batch_size)
    swapped = answer_nll(model, processor, swapped_rows, prompt, references, batch_size)
    paired = paired_comparison([-loss for loss in own], [-loss for loss in swapped])  # a lower loss is better
    return {"own": sum(own) / len(own), "swapped": sum(swapped) / len(swapped), "own_lower": paired["own_better"],
            "sign_test_p": paired["sign_test_p"]}


def paired_comparison(own: list, swapped: list) -> dict[str, float]:
    """Clip by clip, own audio against swapped: `own_better` and `swapped_better` are the shares of clips where
    each scores higher (ties count for neither), with the two-sided sign-test p of the untied clips. Scores are
    per-clip numbers (a caption metric) or booleans (the label named)."""
    if len(own) != len(swapped) or not own:
        raise ValueError(f"own and swapped must be non-empty and of the same length, got {len(own)} and "
                         f"{len(swapped)}.")
    better = sum(float(a) > float(b) for a, b in zip(own, swapped))
    worse = sum(float(a) < float(b) for a, b in zip(own, swapped))
    return {"own_better": better / len(own), "swapped_better": worse / len(own), "sign_test_p": sign_test_p(better,
                                                                                                          worse)}


RANKING_SCALES = (1.0, 2.0)  # the plain likelihood, and how much the audio raises it over the prompt's own prior


def label_ranking(model, processor, rows: list, prompt: str, candidates: list[str],
                  scales: Sequence[float] = RANKING_SCALES, swapped_rows: list | None = None) -> dict[str, Any]:
    """Label guessing as a closed-set choice: every candidate label scored as the answer to `prompt` about each
    row's audio (`score_answers`: the summed log-probability of its tokens and end-of-turn token, as trained), the
    best one picked. For each audio guidance scale w in `scales` the score is w log p(label | audio) + (1 - w)
    log p(label | prompt alone), so w = 1 ranks by likelihood and w = 2 by how much the audio raises it.
    Returns per w: top-1 and top-5 accuracy (a clip whose label is not a candidate counts as missed), each clip's
    pick and the picks' spread, and with `swapped_rows` (each row's audio swapped for another's) the swapped top-1
    accuracy and the clip-by-clip comparison."""
    labels = [row["label"] for row in rows]
    own = score_answers(model, processor, [_question(row, prompt) for row in rows], candidates)
    audio_free = [segment for segment in _question(rows[0], prompt) if segment.kind != "audio"]
    prior = score_answers(model, processor, [audio_free], candidates)  # the same for every row
    swapped = (score_answers(model, processor, [_question(row, prompt) for row in swapped_rows], candidates)
               if swapped_rows else None)
    target = torch.tensor([candidates.index(label) if label in candidates else -1 for label in labels])
    result: dict[str, Any] = {"candidates": len(candidates), "scales": {}}
    for scale in scales:
        def ranked(scores: torch.Tensor, w: float = scale) -> torch.Tensor:
            return (w * scores + (1 - w) * prior).argsort(dim=-1, descending=True)  # score_answers' guidance

        order = ranked(own)
        correct = (order[:, 0] == target).tolist()
        picks = [candidates[int(i)] for i in order[:, 0]]
        entry = {"accuracy": sum(correct) / len(rows),
                 "top5_accuracy": float((order[:, :5] == target[:, None]).any(-1).float().mean()),
                 **_answer_spread(picks), "picks": picks}
        if swapped is not None:
            swapped_correct = (ranked(swapped)[:, 0] == target).tolist()
            entry["swapped_accuracy"] = sum(swapped_correct) / len(rows)
            entry["paired"] = paired_comparison(correct, swapped_correct)
        result["scales"][f"{scale:g}"] = entry
    return result


def _answer_spread(texts: list[str]) -> dict[str, Any]:
    """How many different answers, and the most frequent one with its count: a model that answers with its prior
    gives one answer to every clip."""
    text, count = Counter(texts).most_common(1)[0] if texts else ("", 0)
    return {"distinct": len(set(texts)), "most_frequent": text, "most_frequent_count": count}


def changed_share(answers_own: list[str], answers_swapped: list[str]) -> float:
    """Share of clips whose answer differs (after stripping spaces and case) when the audio is swapped."""
    if len(answers_own) != len(answers_swapped) or not answers_own:
        raise ValueError(f"answers_own and answers_swapped must be non-empty and of the same length, got "
                         f"{len(answers_own)} and {len(answers_swapped)}.")
    return sum(a.strip().lower() != b.strip().lower() for a, b in zip(answers_own, answers_swapped)) / len(answers_own)


def _load_yamnet():
    """The real YAMNet and its feature extractor, or None when its wheel is not installed."""
    try:
        from ..modeling.yamnet import load_pretrained_yamnet

        return load_pretrained_yamnet()
    except ModuleNotFoundError as error:
        logger.warning("YAMNet check skipped: %s", error)
        return None


def yamnet_top_classes(yamnet, audio: torch.Tensor, sampling_rate: int, k: int = 3) -> list[str] | None:
    """The `k` AudioSet classes YAMNet scores highest (mean sigmoid over patches) for `audio` `(channels, samples)`."""
    if yamnet is None:
        return None
    model, extractor = yamnet
    mono = torch.as_tensor(audio).float().reshape(-1, torch.as_tensor(audio).shape[-1]).mean(dim=0).numpy()
    with torch.no_grad():
        logits = model(**extractor(mono, sampling_rate=sampling_rate)).logits
    scores = torch.sigmoid(logits).mean(dim=(0, 1))
    return [model.config.id2label[int(i)] for i in scores.topk(k).indices]


def lm_msn_report(adapter: str, pretokenized: str, sound_tokenizer: str | None, out: str, split: str = "test",
                  base_model: str | None = None, batch_size: int = 8, max_clips: int | None = None,
                  num_sounds: int = 3, top_k: int = 50, temperature: float = 1.0, seed: int = 0,
                  num_steps: int = 10, listening_control: bool = True, audio_guidance_scale: float = 1.0,
                  rank_labels: bool = True) -> dict[str, Any]:
    """Run the evaluations (the listening control unless `listening_control=False`) and write the report; returns
    what `report.json` holds. With `audio_guidance_scale` != 1 the answers are decoded with audio guidance and the
    plain greedy ones are scored beside them (`plain_greedy`). `rank_labels` adds the closed-set label ranking
    (`label_ranking`, at w = 1, 2 and `audio_guidance_scale`)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    model, processor = load_audio_llm(adapter, base_model=base_model)
    model.eval()
    rows = load_pretokenized(pretokenized)
    train = rows.filter(lambda s: s != split, input_columns="split") if "split" in rows.column_names else rows
    test = rows.filter(lambda s: s == split, input_columns="split") if "split" in rows.column_names else rows
    if max_clips:
        test = test.select(range(min(max_clips, len(test))))
    if not len(test):
        raise ValueError(f"no rows of split {split!r} in {pretokenized}")
    prompts = load_lm_msn_prompts()
    timings["load"] = time.perf_counter() - started
    result: dict[str, Any] = {"adapter": adapter, "base_model": base_model, "split": split, "clips": len(test),
                              "audio_guidance_scale": audio_guidance_scale}
    guided = audio_guidance_scale != 1
    plain: dict[str, Any] = {}

    # captions
    started = time.perf_counter()
    captioned = [row for row in test if row.get("caption")]
    predictions = answers(model, processor, captioned, prompts["captioning"][0], batch_size, max_new_tokens=32,
                          audio_guidance_scale=audio_guidance_scale)
    references = [[row["caption"]] for row in captioned]
    result["captions"] = [{"reference": row["caption"], "generated": text, "label": row.get("label")}
                          for row, text in zip(captioned, predictions)]
    if captioned:
        scores = caption_scores(_non_empty(predictions), references, spice=False)
        floor_caption = Counter(r["caption"] for r in train if r.get("caption")).most_common(1)[0][0]
        floor = caption_scores([floor_caption] * len(captioned), references, spice=False)
        keep = ("bleu_4", "meteor", "rouge_l", "cider_d", "sentence_similarity")
        result["caption_scores"] = {k: scores[k] for k in keep if k in scores}
        result["caption_floor"] = {"caption": floor_caption, **{k: floor[k] for k in keep if k in floor}}
        result["caption_notes"] = scores.get("notes", [])
        result["caption_answers"] = _answer_spread(predictions)
        own_items = scores.get("per_item", {})
    timings["captions"] = time.perf_counter() - started
    if guided and captioned:
        started = time.perf_counter()
        unguided = answers(model, processor, captioned, prompts["captioning"][0], batch_size, max_new_tokens=32)
        scores = caption_scores(_non_empty(unguided), references, spice=False)
        plain["captions"] = {**{k: scores[k] for k in result["caption_scores"] if k in scores},
                             **_answer_spread(unguided)}
        timings["captions, plain greedy"] = time.perf_counter() - started
    control: dict[str, Any] = {}
    if listening_control and len(captioned) > 1:
        started = time.perf_counter()
        swapped_rows = swapped_audio(captioned)
        swapped = answers(model, processor, swapped_rows, prompts["captioning"][0], batch_size, max_new_tokens=32,
                          audio_guidance_scale=audio_guidance_scale)
        scores = caption_scores(_non_empty(swapped), references, spice=False)
        paired = "sentence_similarity" if "sentence_similarity" in own_items else "rouge_l"
        control["captions"] = {**{k: scores[k] for k in result["caption_scores"] if k in scores},
                               "changed": changed_share(predictions, swapped),
                               "paired": {"metric": paired, **paired_comparison(own_items[paired],
                                                                                scores["per_item"][paired])},
                               "answer_nll": _answer_nll_control(model, processor, captioned, swapped_rows,
                                                                 prompts["captioning"][0],
                                                                 [row["caption"] for row in captioned], batch_size)}
        timings["captions, swapped audio"] = time.perf_counter() - started

    # label guessing
    started = time.perf_counter()
    labelled = [row for row in test if row.get("label")]
    outputs = answers(model, processor, labelled, prompts["classification"][0], batch_size, max_new_tokens=12,
                      audio_guidance_scale=audio_guidance_scale)
    if labelled:
        labels = [row["label"] for row in labelled]
        table = label_in_text_accuracy(outputs, labels, top_k=2)
        train_labelled = [r for r in train if r.get("label")]
        train_labels = Counter(r["label"] for r in train_labelled)
        majority = train_labels.most_common(1)[0][0]
        result["label_guessing"] = {
            "accuracy": table["accuracy"], "per_class": table["per_class"],
            "chance": 1 / len(train_labels), "majority_label": majority,
            "majority_accuracy": sum(label == majority for label in labels) / len(labels),
            "outputs": [{"label": label, "output": text} for label, text in zip(labels, outputs)],
            "code_histogram_1nn": sum(guess == label for guess, label in zip(nearest_code_histogram_labels(
                [r["codes"] for r in train_labelled], [r["label"] for r in train_labelled],
                [r["codes"] for r in labelled], processor.codebook_size), labels)) / len(labels),
            "table": format_label_match_table(table),
            **_answer_spread(outputs),
        }
    timings["label guessing"] = time.perf_counter() - started
    if guided and labelled:
        started = time.perf_counter()
        unguided = answers(model, processor, labelled, prompts["classification"][0], batch_size, max_new_tokens=12)
        plain["labels"] = {"accuracy": label_in_text_accuracy(unguided, labels, top_k=2)["accuracy"],
                           **_answer_spread(unguided)}
        timings["label guessing, plain greedy"] = time.perf_counter() - started
    if plain:
        result["plain_greedy"] = plain
    if listening_control and len(labelled) > 1:
        started = time.perf_counter()
        swapped_rows = swapped_audio(labelled)
        swapped = answers(model, processor, swapped_rows, prompts["classification"][0], batch_size,
                          max_new_tokens=12, audio_guidance_scale=audio_guidance_scale)
        swapped_table = label_in_text_accuracy(swapped, labels, top_k=2)
        control["labels"] = {"accuracy": swapped_table["accuracy"],
                             "changed": changed_share(outputs, swapped),
                             "paired": {"metric": "label named", **paired_comparison(table["correct"],
                                                                                     swapped_table["correct"])},
                             "answer_nll": _answer_nll_control(model, processor, labelled, swapped_rows,
                                                               prompts["classification"][0], labels, batch_size)}
        timings["label guessing, swapped audio"] = time.perf_counter() - started
    if control:
        result["listening_control"] = control
    if rank_labels and labelled:
        started = time.perf_counter()
        result["label_ranking"] = label_ranking(
            model, processor, labelled, prompts["classification"][0], sorted(train_labels),
            scales=sorted({*RANKING_SCALES, float(audio_guidance_scale)}),
            swapped_rows=swapped_audio(labelled) if listening_control and len(labelled) > 1 else None)
        top5 = {label for label, _ in train_labels.most_common(5)}
        result["label_ranking"]["floors"] = {  # what answering from the training prior alone earns
            "top1": result["label_guessing"]["majority_accuracy"],
            "top5": sum(label in top5 for label in labels) / len(labels)}
        timings["label ranking"] = time.perf_counter() - started

    # text to audio
    started = time.perf_counter()
    sounds = []
    if sound_tokenizer and num_sounds:
        from ..modeling.msn_tokenizer import MSNTokenizerModel

        decoder = MSNTokenizerModel.from_pretrained(sound_tokenizer).eval()
        window = decoder.config.window_frames
        chosen, seen = [], set()
        for row in captioned:
            if row["caption"] not in seen:
                chosen.append(row)
                seen.add(row["caption"])
            if len(chosen) == num_sounds:
                break
        folder = Path(out) / "sounds"
        folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
        segments = [processor.chat_segments([text_segment(prompts["text_to_audio"][0].format(caption=row["caption"]))])
                    for row in chosen]
        generated = generate_audio(model, processor, segments, max_audio_tokens=window,
                                   min_audio_tokens=min(window, 20), sound_tokenizer=decoder,
                                   decode_kwargs={"num_steps": num_steps,
                                                  "generator": torch.Generator().manual_seed(seed)},
                                   do_sample=True, top_k=top_k, temperature=temperature)

        from ..processing.audio_datasets import read_row_audio

        rate = decoder.config.sampling_rate
        yamnet = _load_yamnet()
        for index, (row, item) in enumerate(zip(chosen, generated)):
            path = folder / f"{index}_{'_'.join(row['caption'].split())[:60]}.wav"
            audio = item.audio_values.clamp(-1, 1)
            write_audio(path, audio.numpy(), rate)
            reference, _ = read_row_audio(row, sampling_rate=rate, channels=1)
            sounds.append({"caption": row["caption"], "codes": len(item.audio_codes), "complete": item.complete,
                           "seconds": audio.shape[-1] / rate, "wav": str(path),
                           "yamnet_generated": yamnet_top_classes(yamnet, audio, rate),
                           "yamnet_reference": yamnet_top_classes(yamnet, torch.as_tensor(reference), rate)})
    result["sounds"] = sounds
    timings["text to audio"] = time.perf_counter() - started
    result["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "report.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (Path(out) / "report.md").write_text(format_report(result) + "\n")
    return result


def _paired_cells(entry: dict) -> str:
    """The `paired_comparison` of a report entry as three table cells: own better, swapped better, sign test p."""
    paired = entry.get("paired")
    return (f"{100 * paired['own_better']:.0f} % | {100 * paired['swapped_better']:.0f} % | "
            f"{paired['sign_test_p']:.2g}") if paired else "- | - | -"


def format_report(result: dict[str, Any], max_rows: int = 12) -> str:
    scale = result.get("audio_guidance_scale", 1.0)
    decoding = "greedy" if scale == 1 else f"greedy with audio guidance w = {scale:g}"
    lines = [f"LM-MSN audio LLM {result['adapter']} on {result['clips']} held-out clips (split {result['split']!r})",
             "", f"Captions ({decoding}; first rows):", "", "| reference | generated |", "|---|---|"]
    for item in result.get("captions", [])[:max_rows]:
        lines.append(f"| {item['reference']} | {item['generated'] or '(empty)'} |")
    if "caption_scores" in result:
        names = list(result["caption_scores"])
        lines += ["", "| captions | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names),
                  "| audio LLM | " + " | ".join(f"{result['caption_scores'][n]:.3f}" for n in names) + " |",
                  f"| floor: \"{result['caption_floor']['caption']}\" for every clip | "
                  + " | ".join(f"{result['caption_floor'].get(n, float('nan')):.3f}" for n in names) + " |"]
        lines += [f"note: {note}" for note in result.get("caption_notes", [])]
    if "label_guessing" in result:
        guess = result["label_guessing"]
        lines += ["", "Label guessing (Table III rule: correct if the label is named):", "", guess["table"], "",
                  f"chance (uniform guess among {round(1 / guess['chance'])} training labels): "
                  f"{100 * guess['chance']:.2f} %; always '{guess['majority_label']}': "
                  f"{100 * guess['majority_accuracy']:.2f} %; audio LLM: {100 * guess['accuracy']:.2f} %",
                  f"what the codes alone tell (nearest training clip by code histogram, no LLM): "
                  f"{100 * guess['code_histogram_1nn']:.2f} %"]
    plain = result.get("plain_greedy") or {}
    if plain:
        names = [n for n in result.get("caption_scores", {}) if n in plain.get("captions", {})]
        lines += ["", "Plain greedy decoding against audio guidance (the answers above):", "",
                  "| decoding | " + "".join(f"captions {n} | " for n in names) + "different captions | labels named | "
                  "different label answers | most frequent label answer |", "|---|" + "---:|" * (len(names) + 3)
                  + "---|"]
        rows = (("plain greedy", plain.get("captions", {}), plain.get("labels", {})),
                (f"audio guidance w = {scale:g}", {**result.get("caption_scores", {}),
                                                   **result.get("caption_answers", {})},
                 result.get("label_guessing", {})))
        for name, captions, labels in rows:
            cells = [f"{captions[n]:.3f}" for n in names] + [str(captions.get("distinct", "-"))]
            cells += [f"{100 * labels['accuracy']:.2f} %" if "accuracy" in labels else "-",
                      str(labels.get("distinct", "-")),
                      f"{labels['most_frequent']} ({labels['most_frequent_count']})" if "most_frequent" in labels
                      else "-"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    control = result.get("listening_control") or {}
    if control:
        lines += ["", "Listening control (each clip's codes swapped for another held-out clip's; a model that listens "
                  "scores lower and changes its answers; clip by clip, the shares of clips where the own or the "
                  "swapped audio's answer scores higher, and the sign test):", "", "| answers | own audio | swapped "
                  "audio | answers changed | own better | swapped better | sign test p |", "|---|---:|---:|---:|---:|"
                  "---:|---:|"]

        if "captions" in control:
            name = "sentence_similarity" if "sentence_similarity" in control["captions"] else "rouge_l"
            lines.append(f"| captions ({name}) | {result['caption_scores'][name]:.3f} | "
                         f"{control['captions'][name]:.3f} | {100 * control['captions']['changed']:.0f} % | "
                         f"{_paired_cells(control['captions'])} |")
        if "labels" in control:
            lines.append(f"| labels (named, %) | {100 * result['label_guessing']['accuracy']:.2f} | "
                         f"{100 * control['labels']['accuracy']:.2f} | {100 * control['labels']['changed']:.0f} % | "
                         f"{_paired_cells(control['labels'])} |")
        rows = [(name, control[key]["answer_nll"]) for key, name in (("captions", "reference caption"),
                                                                      ("labels", "reference label"))
                if "answer_nll" in control.get(key, {})]
        if rows:
            lines += ["", "| teacher-forced loss of the | own audio (nats/token) | swapped audio | clips where own "
                      "is lower | sign test p |", "|---|---:|---:|---:|---:|"]
            lines += [f"| {name} | {nll['own']:.3f} | {nll['swapped']:.3f} | {100 * nll['own_lower']:.0f} % | "
                      f"{nll['sign_test_p']:.2g} |" for name, nll in rows]
    ranking = result.get("label_ranking")
    if ranking:
        lines += ["", f"Label ranking (a closed-set choice among the {ranking['candidates']} training labels, each "
                  "scored as the answer; w = 1 by likelihood, w = 2 by how much the audio raises it over the prompt "
                  "alone; swapped: another clip's audio):", "",
                  "| w | top-1 | top-5 | swapped top-1 | own better | swapped better | sign test p | different picks | "
                  "most frequent pick |", "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for scale, entry in ranking["scales"].items():
            swapped = f"{100 * entry['swapped_accuracy']:.1f} %" if "swapped_accuracy" in entry else "-"
            control_cells = f"{swapped} | {_paired_cells(entry)}"
            lines.append(f"| {scale} | {100 * entry['accuracy']:.1f} % | {100 * entry['top5_accuracy']:.1f} % | "
                         f"{control_cells} | {entry['distinct']} | {entry['most_frequent']} "
                         f"({entry['most_frequent_count']}) |")
        floors = ranking.get("floors")
        if floors:
            lines += ["", f"floors from the training prior alone: top-1 {100 * floors['top1']:.1f} % (always the most "
                      f"frequent training label), top-5 {100 * floors['top5']:.1f} % (always the five most frequent); "
                      f"chance {100 / ranking['candidates']:.2f} % and {min(100.0, 500 / ranking['candidates']):.1f} %"]
    if result.get("sounds"):
        lines += ["", "Text to audio (sampled, decoded by the sound tokenizer):", "",
                  "| prompt caption | codes | closed | seconds | YAMNet top-3 (generated) | YAMNet top-3 (reference) |",
                  "|---|---:|---|---:|---|---|"]
        for item in result["sounds"]:
            lines.append(f"| {item['caption']} | {item['codes']} | {'yes' if item['complete'] else 'no'} | "
                         f"{item['seconds']:.1f} | {', '.join(item['yamnet_generated'] or ['-'])} | "
                         f"{', '.join(item['yamnet_reference'] or ['-'])} |")
    lines += ["", "wall time: " + ", ".join(f"{k} {v} s" for k, v in result["timings_s"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", required=True, help="a folder of training/finetune.py (<run>/<stage>/final)")
    parser.add_argument("--base_model", default=None, help="the base LLM (default: the adapter's)")
    parser.add_argument("--pretokenized", required=True)
    parser.add_argument("--sound_tokenizer", default=None, help="decodes generated codes (text to audio)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_clips", type=int, default=None)
    parser.add_argument("--num_sounds", type=int, default=3)
    parser.add_argument("--top_k", type=int, default=50)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--num_steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--audio_guidance", type=float, default=1.0,
                        help="audio guidance scale w of the text answers (generate_text; 1 = plain greedy); other "
                             "than 1, the plain greedy answers are scored beside them")
    parser.add_argument("--no_listening_control", action="store_true",
                        help="skip the swapped-audio pass (halves the text generation)")
    parser.add_argument("--no_label_ranking", action="store_true",
                        help="skip the closed-set label ranking (every training label scored for every clip)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = lm_msn_report(args.adapter, args.pretokenized, args.sound_tokenizer, args.out, args.split,
                           args.base_model, args.batch_size, args.max_clips, args.num_sounds, args.top_k,
                           args.temperature, args.seed, args.num_steps,
                           listening_control=not args.no_listening_control,
                           audio_guidance_scale=args.audio_guidance, rank_labels=not args.no_label_ranking)
    print(format_report(result))
    return result


if __name__ == "__main__":
    main()
