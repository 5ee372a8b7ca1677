"""Build the LM-MSN and MINT training sets from a pre-tokenised folder and save them as Arrow datasets.

    python training/build_task_data.py --pretokenized work/pretokenized/corpus --output work/tasks \
        [--tokenizer runs/demo/tokenizer_fm/final] [--seed 0] [--dataset_column category] \
        [--mint_templates training/configs/corpus_mint_templates.json]

Writes `lm_msn_stage1/`, `lm_msn_stage2/`, `mint_stage1/`, `mint_stage2/` under `--output` (load them with
`datasets.load_from_disk`) and prints the example counts per task and one example of each LM-MSN stage.

`--tokenizer` checks that the codes fit the tokenizer the LLM will be trained with (codebook size and frame
rate; a mismatch is refused with both named). `--chat_template_from` renders LM-MSN stage 2 through that LLM
tokenizer's own chat template (e.g. SmolLM2's ChatML) instead of Vicuna v1.1, the paper's; it needs `--tokenizer`
for the codebook size. `--dataset_column` names the column that selects a MINT stage-2
template (default `dataset`); `--mint_templates` adds templates (a JSON list in the layout of the shipped
`processing/templates/mint_instructions.json`) to the twelve of the MINT paper.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections import Counter
from pathlib import Path

from soundlm.processing.audio_tokens import AUDIO_SPAN_PATTERN, AUDIO_TOKEN_PATTERN, EOA_TOKEN, SOA_TOKEN
from soundlm.processing.pretokenized import load_pretokenized
from soundlm.processing.task_datasets import lm_msn_task_dataset, mint_task_dataset
from soundlm.processing.tasks import MintInstructionTemplates, TaskExample


def _short(text: str, keep: int = 6) -> str:
    """A rendered example with long runs of audio tokens shortened for printing."""

    def shorten(match: re.Match) -> str:
        tokens = [token.group(0) for token in AUDIO_TOKEN_PATTERN.finditer(match.group(1))]
        if len(tokens) <= keep:
            return match.group(0)
        return SOA_TOKEN + "".join(tokens[:keep]) + f"...({len(tokens) - keep} more){EOA_TOKEN}"

    return AUDIO_SPAN_PATTERN.sub(shorten, text)


def main(argv: list[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretokenized", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--tokenizer", default=None, help="a saved MSNTokenizerModel folder the codes must fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset_column", default="dataset", help="column naming each row's MINT dataset")
    parser.add_argument("--mint_templates", default=None, help="JSON file of extra MINT stage-2 templates")
    parser.add_argument("--chat_template_from", default=None,
                        help="an LLM folder whose tokenizer's chat template renders LM-MSN stage 2 (default Vicuna)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    config = None
    if args.tokenizer is not None:
        from soundlm import MSNTokenizerConfig

        config = MSNTokenizerConfig.from_pretrained(args.tokenizer)
    rows = load_pretokenized(args.pretokenized, tokenizer=config)
    chat_template = None
    if args.chat_template_from is not None:
        if config is None:
            raise ValueError("--chat_template_from needs --tokenizer (the sound tokenizer gives the codebook size)")
        from transformers import AutoTokenizer

        from soundlm.processing.processing_lm_msn import AudioTokenProcessor

        llm_tokenizer = AutoTokenizer.from_pretrained(args.chat_template_from)
        chat_template = AudioTokenProcessor(llm_tokenizer, codebook_size=config).chat_segments
    templates = MintInstructionTemplates.default()
    if args.mint_templates:
        for template in MintInstructionTemplates.from_json(args.mint_templates):
            templates.add(template.dataset, template.instruction, template.target_field, task=template.task,
                          display_name=template.display_name, wording=template.wording)
    mint_rows = rows
    if args.dataset_column != "dataset":
        if args.dataset_column not in rows.column_names:
            raise ValueError(f"--dataset_column {args.dataset_column!r} is not a column of {rows.column_names}")
        mint_rows = rows.remove_columns("dataset").rename_column(args.dataset_column, "dataset")

    output = Path(args.output)
    built = {
        "lm_msn_stage1": lm_msn_task_dataset(rows, stage=1, seed=args.seed),
        "lm_msn_stage2": lm_msn_task_dataset(rows, stage=2, seed=args.seed, chat_template=chat_template),
        "mint_stage1": mint_task_dataset(mint_rows, stage=1),
        "mint_stage2": mint_task_dataset(mint_rows, stage=2, templates=templates),
    }
    counts = {}
    print(f"{len(rows)} pre-tokenised rows from {args.pretokenized}")
    print("| set | examples | by task |\n|---|---:|---|")
    for name, dataset in built.items():
        dataset.save_to_disk(str(output / name))
        counts[name] = len(dataset)
        by_task = dict(Counter(dataset["task"])) if "task" in dataset.column_names else {"caption pair": len(dataset)}
        print(f"| {name} | {len(dataset)} | {by_task} |")
    for name in ("lm_msn_stage1", "lm_msn_stage2"):
        if len(built[name]):
            print(f"\n{name} example: {_short(TaskExample.from_dict(built[name][0]).render())}")
    if len(built["mint_stage2"]):
        example = built["mint_stage2"][0]
        print(f"\nmint_stage2 example: [{example['dataset']}] {example['instruction']!r} -> {example['response']!r}")
    return counts


if __name__ == "__main__":
    main()
