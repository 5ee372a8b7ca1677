"""Whole-dataset task builders: the pure row functions of `processing/tasks/` mapped over a `datasets.Dataset`.

- `lm_msn_task_dataset(pretokenized, stage=1 | 2)`: LM-MSN training examples from pre-tokenised rows (codes).
  Stage 1 makes one caption-pair example per captioned row; stage 2 one chat example per task a row supports
  (captioning and text-to-audio from a caption, classification from a label, question answering from an
  instruction and a response). Each row's random draws come from `row_rng(seed, key + task)`, so the result
  does not depend on row order or `num_proc`.
- `mint_task_dataset(rows, stage=1 | 2)`: MINT examples that keep the audio reference (path or bytes and the
  window) because MINT encodes raw audio with its own frozen encoder. Stage 1: (audio, caption) pairs; stage 2:
  the row's dataset instruction template and the response from the row.

Rows a stage cannot use (no caption, no template for their dataset, ...) are skipped and counted in the log.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence

import datasets

from .audio_datasets import scratch_map_arguments
from .tasks import (
    ChatTemplate,
    MintInstructionTemplates,
    lm_msn_chat_example,
    lm_msn_chat_tasks,
    lm_msn_pretraining_example,
    mint_instruction_example,
    row_rng,
)

logger = logging.getLogger(__name__)

SEGMENTS_FEATURE = datasets.List(
    {
        "kind": datasets.Value("string"),
        "text": datasets.Value("string"),
        "codes": datasets.List(datasets.Value("int32")),
        "is_target": datasets.Value("bool"),
    }
)
LM_MSN_FEATURES = datasets.Features(
    {"key": datasets.Value("string"), "source_id": datasets.Value("string"), "task": datasets.Value("string"),
     "segments": SEGMENTS_FEATURE}
)
_MINT_AUDIO_COLUMNS = ("key", "source_id", "audio_path", "audio_bytes", "sampling_rate", "start", "end", "duration",
                       "padded", "split")


def _check_stage(stage: int) -> int:
    if stage not in (1, 2) or isinstance(stage, bool):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    return stage


def lm_msn_task_dataset(
    dataset: datasets.Dataset,
    *,
    stage: int,
    seed: int = 0,
    targets: str = "all",
    prompts: Mapping[str, Sequence[str]] | None = None,
    chat_template: ChatTemplate | None = None,
    num_proc: int | None = None,
) -> datasets.Dataset:
    """
    LM-MSN stage-1 or stage-2 examples from pre-tokenised rows.

    Args:
        dataset: rows with `key`, `source_id`, `codes` and the text columns (`load_pretokenized`).
        stage: 1 (caption pairs in a random order) or 2 (Vicuna v1.1 chat tasks).
        seed: global seed of the random choices (order in stage 1, prompt phrasing in stage 2).
        targets: stage 1 only, `"all"` or `"second"` (see `lm_msn_pretraining_example`).
        prompts: stage 2 only, phrasings per task replacing the shipped ones.
        chat_template: stage 2 only, the chat template over segments (default Vicuna v1.1, the paper's);
            `AudioTokenProcessor(...).chat_segments` renders through an LLM tokenizer's own template.

    Returns:
        `datasets.Dataset` with `key`, `source_id`, `task` and `segments` (list of `{"kind", "text", "codes",
        "is_target"}`; rebuild a `TaskExample` with `TaskExample.from_dict(row)`), and `split` when the rows have
        one (so training can leave held-out clips out).
    """
    _check_stage(stage)
    if "codes" not in dataset.column_names:
        raise ValueError(
            f"dataset has no 'codes' column (columns {dataset.column_names}): pre-tokenise it with "
            "training/pretokenize.py and load it with load_pretokenized"
        )

    keep_split = "split" in dataset.column_names
    features = LM_MSN_FEATURES
    if keep_split:
        features = datasets.Features({**LM_MSN_FEATURES, "split": datasets.Value("string")})

    def build(batch: dict) -> dict:
        out = {"key": [], "source_id": [], "task": [], "segments": [], **({"split": []} if keep_split else {})}
        for index in range(len(batch["key"])):
            row = {name: values[index] for name, values in batch.items()}
            if stage == 1:
                if not row.get("caption"):
                    continue
                examples = [lm_msn_pretraining_example(row["codes"], row["caption"], row_rng(seed, row["key"]),
                                                       targets=targets)]
            else:
                examples = [
                    lm_msn_chat_example(task, row["codes"], caption=row.get("caption"), label=row.get("label"),
                                        instruction=row.get("instruction"), response=row.get("response"),
                                        rng=row_rng(seed, f"{row['key']}:{task}"), prompts=prompts,
                                        chat_template=chat_template)
                    for task in lm_msn_chat_tasks(row)
                ]
            for example in examples:
                out["key"].append(row["key"])
                out["source_id"].append(row["source_id"])
                out["task"].append(example.task)
                out["segments"].append(example.to_dict()["segments"])
                if keep_split:
                    out["split"].append(row["split"])
        return out

    result = dataset.map(build, batched=True, remove_columns=dataset.column_names, features=features,
                         num_proc=num_proc, desc=f"LM-MSN stage {stage} examples")
    tasks: Counter = Counter()
    for batch in result.select_columns(["task"]).iter(batch_size=10_000):  # a column at a time, not a list of all
        tasks.update(batch["task"])
    logger.info("LM-MSN stage %d: %d examples from %d rows %s", stage, len(result), len(dataset), dict(tasks))
    return result


def mint_task_dataset(
    dataset: datasets.Dataset, *, stage: int, templates: MintInstructionTemplates | None = None
) -> datasets.Dataset:
    """
    MINT stage-1 (audio, caption) pairs or stage-2 instruction examples, keeping each row's audio reference.

    Args:
        dataset: rows of `load_audio_dataset` (or of a pre-tokenised folder).
        stage: 1 (rows with a caption; adds `text`) or 2 (rows whose `dataset` has a template; adds `task`,
            `dataset`, `instruction`, `response`).
        templates: stage 2 only, the instruction templates (default: the twelve of the MINT paper's Table 1).

    Returns:
        `datasets.Dataset` with the audio columns (`key`, `source_id`, `audio_path`, `audio_bytes` when present,
        `sampling_rate`, `start`, `end`, `duration`, `padded`, and `split` when the rows have one) and the stage's
        text columns.
    """
    _check_stage(stage)
    templates = templates or MintInstructionTemplates.default()
    keep = [c for c in _MINT_AUDIO_COLUMNS if c in dataset.column_names]
    skipped: Counter = Counter()
    text_columns = ["text"] if stage == 1 else ["task", "dataset", "instruction", "response"]
    columns = [c for c in ("caption", "label", "dataset") if c in dataset.column_names]

    def build(batch: dict) -> dict:
        out: dict[str, list] = {column: [] for column in [*keep, *text_columns]}
        for index in range(len(next(iter(batch.values())))):
            row = {column: batch[column][index] for column in columns}
            if stage == 1:
                if not (row.get("caption") or "").strip():
                    skipped["no caption"] += 1
                    continue
                texts = {"text": row["caption"].strip()}
            else:
                name = (row.get("dataset") or "").strip()
                if not name or name not in templates:
                    skipped[f"no template for dataset {name!r}"] += 1
                    continue
                try:
                    texts = mint_instruction_example(row, templates)
                except (TypeError, ValueError) as error:
                    field_name = templates.get(name).target_field
                    if not skipped[f"no usable {field_name!r} for dataset {name!r}"]:
                        logger.warning("MINT stage 2: skipping rows of dataset %r: %s", name, error)
                    skipped[f"no usable {field_name!r} for dataset {name!r}"] += 1
                    continue
            for column in keep:
                out[column].append(batch[column][index])
            for column in text_columns:
                out[column].append(texts[column])
        return out

    features = datasets.Features({**{name: dataset.features[name] for name in keep},
                                  **{name: datasets.Value("string") for name in text_columns}})
    # batched map: the rows stream through to a scratch file, never a list of every row (and `build` always runs,
    # so the skip counts below are this call's)
    result = dataset.select_columns(sorted({*keep, *columns})).map(
        build, batched=True, remove_columns=sorted({*keep, *columns}), features=features,
        desc=f"MINT stage {stage} examples", **scratch_map_arguments("mint-tasks"))
    if skipped:
        logger.info("MINT stage %d: skipped %d of %d rows: %s", stage, sum(skipped.values()), len(dataset),
                    dict(skipped))
    return result
