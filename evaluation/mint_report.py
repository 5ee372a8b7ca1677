"""MINT on held-out clips, in the layouts of the paper's tables (small-scale numbers on the demo corpus).

    python -m soundlm.evaluation.mint_report --stage1 runs/demo/mint/stage1/final \
        --stage1_ablation "ALC=runs/demo/mint/stage1_alc/final" --stage2 runs/demo/mint/stage2/final \
        --tasks work/tasks --out runs/demo/mint_report

* **Classification (Table 2 layout), per dataset of the task sets:** stage-1 models classify zero-shot by audio-text
  embedding similarity (the text being the dataset's instruction followed by the label, as LAION-CLAP does with
  "This is a sound of"); the stage-2 model by vocabulary ranking (the log-likelihood of every label of the dataset
  after the instruction, audio and prompt encoded once). Chance (1 / number of labels) and the majority class of
  the training split are printed beside each. The same numbers give the stage-1 loss ablation (Table 5 layout:
  the `--stage1_ablation` models against the full one) and stage 1 against stage 1+2 (Table 6 layout).
* **Retrieval (Table 3 layout):** each distinct held-out caption retrieves the held-out clips (every clip with that
  caption is correct), from stage-1 embeddings, and with the top 10 re-ranked by the ALM head; R@1/5/10 with the
  expected R@k of a random ranking.
* **Captions:** the stage-2 model's captions for the held-out clips of captioning datasets, with the captioning
  scores and a few samples.

Writes `report.json` and `report.md` under `--out` and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch

from ..modeling.mint import (
    MintForConditionalGeneration,
    MintForPreTraining,
    MintProcessor,
    encode_audio_rows,
    pad_audio_embeds,
)
from .captioning import caption_scores
from .retrieval import recall_at_k

logger = logging.getLogger(__name__)

KS = (1, 5, 10)
RERANK_TOP_K = 10


def _split(rows: datasets.Dataset, split: str, keep: bool) -> list[dict]:
    if "split" not in rows.column_names:
        return list(rows) if keep else []
    return [row for row in rows if (row["split"] == split) == keep]


def clip_features(model, processor: MintProcessor, rows: list[dict], batch_size: int = 8) -> dict[str, np.ndarray]:
    """The frozen encoder's output of each clip, by row key (clips that cannot be read are left out, logged)."""
    features: dict[str, np.ndarray] = {}
    unique = list({row["key"]: row for row in rows}.values())
    for start in range(0, len(unique), batch_size):
        chunk = unique[start: start + batch_size]
        embeds, errors = encode_audio_rows(model.audio_encoder, processor.feature_extractor, chunk)
        for row, embed, error in zip(chunk, embeds, errors):
            if error:
                logger.warning("skipping clip %s: %s", row["key"], error)
            else:
                features[row["key"]] = embed
    return features


def _batched_audio(features: dict[str, np.ndarray], keys: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    return pad_audio_embeds([features[key] for key in keys])


@torch.no_grad()
def audio_features(model: MintForPreTraining, features: dict[str, np.ndarray], keys: list[str],
                   batch_size: int = 32) -> torch.Tensor:
    parts = []
    for start in range(0, len(keys), batch_size):
        embeds, mask = _batched_audio(features, keys[start: start + batch_size])
        parts.append(model.get_audio_features(audio_embeds=embeds, audio_embeds_mask=mask))
    return torch.cat(parts)


@torch.no_grad()
def text_features(model: MintForPreTraining, processor: MintProcessor, texts: list[str],
                  batch_size: int = 64) -> torch.Tensor:
    parts = []
    for start in range(0, len(texts), batch_size):
        parts.append(model.get_text_features(**processor.qformer_text(texts[start: start + batch_size])))
    return torch.cat(parts)


@torch.no_grad()
def text_to_audio_similarity(model: MintForPreTraining, processor: MintProcessor, features: dict[str, np.ndarray],
                             keys: list[str], texts: list[str]) -> torch.Tensor:
    """(texts, clips) similarity from stage-1 embeddings (max over queries of the cosine)."""
    return model.similarity(audio_features(model, features, keys), text_features(model, processor, texts)).T


@torch.no_grad()
def alm_rerank(model: MintForPreTraining, processor: MintProcessor, features: dict[str, np.ndarray],
               keys: list[str], texts: list[str], similarity: torch.Tensor, top_k: int) -> torch.Tensor:
    """A copy of `similarity` whose top `top_k` clips per text are re-ordered by the ALM head's matched-minus-unmatched
    logit and stay above the rest."""
    similarity = similarity.clone()
    k = min(top_k, len(keys))
    top = similarity.topk(k, dim=1).indices
    for row, text in enumerate(texts):
        embeds, mask = _batched_audio(features, [keys[i] for i in top[row].tolist()])
        tokens = processor.qformer_text([text] * k)
        margin = model.alm_scores(embeds, mask, tokens["input_ids"], tokens["attention_mask"])
        similarity[row, top[row]] = 1e4 + margin  # cosine is within [-1, 1]: re-ranked clips stay on top
    return similarity


def random_recall(relevant: list[list[int]], num_items: int, k: int) -> float:
    """Expected R@k of a random ranking: a query with r correct items among n misses all of them in the top k with
    probability C(n - r, k) / C(n, k)."""
    def hit(r: int) -> float:
        if k >= num_items:
            return 1.0
        return 1.0 - math.comb(num_items - r, k) / math.comb(num_items, k)

    return float(np.mean([hit(len(items)) for items in relevant]))


def classification(models: dict[str, Any], processor: MintProcessor, stage2, stage2_processor, features,
                   train: list[dict], test: list[dict]) -> dict[str, Any]:
    """Accuracy per classification dataset and model, with chance and the training split's majority class."""
    by_dataset: dict[str, list[dict]] = defaultdict(list)
    for row in test:
        if row["task"] == "classification" and row["key"] in features:
            by_dataset[row["dataset"]].append(row)
    vocab: dict[str, set[str]] = defaultdict(set)
    for row in train + test:
        if row["task"] == "classification":
            vocab[row["dataset"]].add(row["response"])
    result: dict[str, Any] = {}
    for dataset, rows in sorted(by_dataset.items()):
        labels = sorted(vocab[dataset])
        instruction = rows[0]["instruction"]
        truth = [labels.index(row["response"]) for row in rows]
        keys = [row["key"] for row in rows]
        train_counts = Counter(r["response"] for r in train if r["task"] == "classification"
                               and r["dataset"] == dataset)
        majority = train_counts.most_common(1)[0][0] if train_counts else labels[0]
        entry: dict[str, Any] = {"items": len(rows), "labels": len(labels), "chance": 1.0 / len(labels),
                                 "majority": float(np.mean([row["response"] == majority for row in rows])),
                                 "majority_label": majority, "accuracy": {}}
        prompts = [f"{instruction} {label}" for label in labels]
        for name, model in models.items():
            scores = model.similarity(audio_features(model, features, keys), text_features(model, processor, prompts))
            entry["accuracy"][name] = float(np.mean(scores.argmax(1).numpy() == np.asarray(truth)))
        if stage2 is not None:
            candidates = stage2_processor.candidate_ids(labels)
            prompt = stage2_processor.llm_text([instruction])
            qformer = stage2_processor.qformer_text([instruction])
            predictions = []
            for key in keys:
                embeds, mask = _batched_audio(features, [key])
                scores = stage2.score_candidates(candidates, input_ids=prompt["input_ids"],
                                                 attention_mask=prompt["attention_mask"],
                                                 qformer_input_ids=qformer["input_ids"],
                                                 qformer_attention_mask=qformer["attention_mask"],
                                                 audio_embeds=embeds, audio_embeds_mask=mask)
                predictions.append(int(scores.argmax()))
            entry["accuracy"]["stage 1+2 (vocabulary ranking)"] = float(np.mean(np.asarray(predictions) ==
                                                                                np.asarray(truth)))
            entry["stage2_outputs"] = dict(Counter(labels[p] for p in predictions).most_common(3))
        result[dataset] = entry
    return result


def retrieval(models: dict[str, Any], full_name: str, processor: MintProcessor, features,
              captioned: list[dict]) -> dict[str, Any]:
    """Text-to-audio R@1/5/10 over the held-out clips: each distinct caption is a query."""
    rows = [row for row in captioned if row["key"] in features]
    keys = list(dict.fromkeys(row["key"] for row in rows))
    texts = list(dict.fromkeys(row["text"] for row in rows))
    relevant = [sorted({keys.index(row["key"]) for row in rows if row["text"] == text}) for text in texts]
    out: dict[str, Any] = {"queries": len(texts), "clips": len(keys),
                           "chance": {f"R@{k}": random_recall(relevant, len(keys), k) for k in KS}, "recall": {}}
    def recall(similarity: torch.Tensor) -> dict[str, float]:
        return {key: value for key, value in recall_at_k(similarity.numpy(), relevant, KS).items()
                if key.startswith("R@") or key == "median_rank"}

    for name, model in models.items():
        similarity = text_to_audio_similarity(model, processor, features, keys, texts)
        out["recall"][name] = recall(similarity)
        if name == full_name:
            reranked = alm_rerank(model, processor, features, keys, texts, similarity, RERANK_TOP_K)
            out["recall"][f"{full_name} + ALM re-rank of top {RERANK_TOP_K}"] = recall(reranked)
    return out


@torch.no_grad()
def captions(stage2, processor: MintProcessor, features, test: list[dict], train: list[dict],
             max_new_tokens: int = 24, batch_size: int = 8) -> dict[str, Any]:
    rows = [row for row in test if row["task"] == "captioning" and row["key"] in features]
    if not rows:
        return {}
    generated: list[str] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start: start + batch_size]
        embeds, mask = _batched_audio(features, [row["key"] for row in chunk])
        inputs = processor(text=[row["instruction"] for row in chunk])
        ids = stage2.generate(**inputs, audio_embeds=embeds, audio_embeds_mask=mask, max_new_tokens=max_new_tokens,
                              do_sample=False, num_beams=1, no_repeat_ngram_size=3)
        generated += processor.batch_decode(ids)
    references = [[row["response"]] for row in rows]
    keep = ("bleu_4", "meteor", "rouge_l", "cider_d", "sentence_similarity")
    scores = caption_scores([g if g.strip() else "(empty)" for g in generated], references, spice=False)
    train_captions = Counter(r["response"] for r in train if r["task"] == "captioning")
    floor_caption = train_captions.most_common(1)[0][0] if train_captions else references[0][0]
    floor = caption_scores([floor_caption] * len(rows), references, spice=False)
    return {"items": len(rows), "scores": {k: scores[k] for k in keep if k in scores},
            "floor": {"caption": floor_caption, **{k: floor[k] for k in keep if k in floor}},
            "samples": [{"reference": row["response"], "generated": text} for row, text in zip(rows, generated)]}


def mint_report(stage1: str, tasks: str, out: str, stage1_ablation: dict[str, str] | None = None,
                stage2: str | None = None, split: str = "test") -> dict[str, Any]:
    """Run the evaluations and write `report.json` / `report.md`; returns the report."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    full = MintForPreTraining.from_pretrained(stage1).eval()
    processor = MintProcessor.from_pretrained(stage1)
    full_name = f"stage 1 ({'+'.join(o.upper() for o in full.config.objectives)})"
    models = {}
    for name, folder in (stage1_ablation or {}).items():
        model = MintForPreTraining.from_pretrained(folder).eval()
        models[f"stage 1 ({name})"] = model
    models[full_name] = full
    stage2_model = stage2_processor = None
    if stage2:
        stage2_model = MintForConditionalGeneration.from_pretrained(stage2).eval()
        stage2_processor = MintProcessor.from_pretrained(stage2)
    pairs = datasets.load_from_disk(str(Path(tasks, "mint_stage1")))
    instructions = datasets.load_from_disk(str(Path(tasks, "mint_stage2")))
    test_pairs, test_instr = _split(pairs, split, True), _split(instructions, split, True)
    train_instr = _split(instructions, split, False)
    if not test_pairs and not test_instr:
        raise ValueError(f"no rows of split {split!r} in {tasks}/mint_stage1 or mint_stage2")
    timings["load"] = time.perf_counter() - started

    started = time.perf_counter()
    features = clip_features(full, processor, test_pairs + test_instr)
    timings["audio encoder"] = time.perf_counter() - started
    report: dict[str, Any] = {"stage1": stage1, "stage1_ablation": stage1_ablation or {}, "stage2": stage2,
                              "split": split, "clips": len(features),
                              "audio_encoder": full.config.audio_config.model_type,
                              "language_model": None if stage2_model is None else
                              stage2_model.config.text_config._name_or_path}
    started = time.perf_counter()
    report["classification"] = classification(models, processor, stage2_model, stage2_processor, features,
                                              train_instr, test_instr)
    timings["classification"] = time.perf_counter() - started
    started = time.perf_counter()
    report["retrieval"] = retrieval(models, full_name, processor, features, test_pairs)
    timings["retrieval"] = time.perf_counter() - started
    if stage2_model is not None:
        started = time.perf_counter()
        report["captions"] = captions(stage2_model, stage2_processor, features, test_instr, train_instr)
        timings["captions"] = time.perf_counter() - started
    report["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2))
    text = format_report(report)
    (folder / "report.md").write_text(text + "\n")
    return report


def format_report(report: dict[str, Any], samples: int = 6) -> str:
    lines = [f"MINT on {report['clips']} held-out clips (split {report['split']!r}); audio encoder "
             f"{report['audio_encoder']}, LLM {report['language_model']}. Small-scale numbers on the demo corpus, "
             "not the paper's benchmarks.", ""]
    table = report["classification"]
    if table:
        datasets_ = list(table)
        names = list(next(iter(table.values()))["accuracy"])
        lines += ["Classification accuracy (%), Table 2 layout (rows 1-2: Table 5's ablation; stage 1 vs stage 1+2: "
                  "Table 6):", "",
                  "| model | " + " | ".join(f"{d} ({table[d]['items']} clips, {table[d]['labels']} labels)"
                                           for d in datasets_) + " |",
                  "|---|" + "---:|" * len(datasets_)]
        for name in names:
            lines.append(f"| {name} | " + " | ".join(f"{100 * table[d]['accuracy'][name]:.1f}" for d in datasets_)
                         + " |")
        lines.append("| chance | " + " | ".join(f"{100 * table[d]['chance']:.1f}" for d in datasets_) + " |")
        lines.append("| majority class of train | " + " | ".join(
            f"{100 * table[d]['majority']:.1f} ({table[d]['majority_label']})" for d in datasets_) + " |")
        lines.append("")
    retrieval_ = report["retrieval"]
    lines += [f"Text-to-audio retrieval, Table 3 layout ({retrieval_['queries']} distinct captions -> "
              f"{retrieval_['clips']} clips):", "", "| model | R@1 | R@5 | R@10 | median rank |",
              "|---|---:|---:|---:|---:|"]
    for name, scores in retrieval_["recall"].items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * scores[f'R@{k}']:.1f}" for k in KS)
                     + f" | {scores['median_rank']:g} |")
    lines.append("| random ranking (expected) | " + " | ".join(f"{100 * retrieval_['chance'][f'R@{k}']:.1f}"
                                                               for k in KS) + " | |")
    caps = report.get("captions") or {}
    if caps:
        lines += ["", f"Captions by stage 1+2 on {caps['items']} held-out clips of captioning datasets:", "",
                  "| | " + " | ".join(caps["scores"]) + " |", "|---|" + "---:|" * len(caps["scores"]),
                  "| MINT stage 1+2 | " + " | ".join(f"{v:.3f}" for v in caps["scores"].values()) + " |",
                  f"| floor: always \"{caps['floor']['caption']}\" | "
                  + " | ".join(f"{caps['floor'].get(k, float('nan')):.3f}" for k in caps["scores"]) + " |", ""]
        for sample in caps["samples"][:samples]:
            lines.append(f"- reference: {sample['reference']!r}; generated: {sample['generated']!r}")
    lines += ["", "wall time (s): " + ", ".join(f"{k} {v}" for k, v in report["timings_s"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage1", required=True, help="the full stage-1 model folder")
    parser.add_argument("--stage1_ablation", action="append", default=[],
                        help="NAME=FOLDER of a stage-1 model trained with fewer objectives (repeatable)")
    parser.add_argument("--stage2", default=None, help="the stage-2 model folder")
    parser.add_argument("--tasks", required=True, help="build_task_data.py's output (mint_stage1/, mint_stage2/)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ablation = {}
    for item in args.stage1_ablation:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            parser.error(f"--stage1_ablation must be NAME=FOLDER, got {item!r}")
        ablation[name] = folder
    report = mint_report(args.stage1, args.tasks, args.out, ablation, args.stage2, args.split)
    print(format_report(report))
    print(f"\nwrote {Path(args.out) / 'report.md'} and report.json")
    return report


if __name__ == "__main__":
    main()
