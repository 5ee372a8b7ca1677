"""MINT stage 2 (instruction tuning): the stage-1 Q-Former, now instruction-aware, feeds a frozen LLM a soft prompt.

    accelerate launch training/instruct_mint.py --config training/configs/demo_mint_stage2.yaml \
        [--model.init_stage1=runs/demo/mint/stage1/final --train.max_steps=200 ...]

Reads the `mint_stage2` Arrow set of `training/build_task_data.py` (audio references + `instruction` + `response`,
the instructions of the MINT paper's Table 1 and any added with `--mint_templates`). Starts from the stage-1 model in
`model.init_stage1` (audio encoder, queries, Q-Former); adds a linear projection to the width of the frozen LLM in
`model.language_model` (a causal LM such as SmolLM2 / Vicuna, or an encoder-decoder such as the paper's
`google/flan-t5-xl`). Only the queries, the Q-Former and the projection train; the loss is the LLM's cross-entropy on
the response tokens (`lm_loss` in the logs). Same Trainer skeleton as stage 1: warm-up + linear schedule, exact
resume, TensorBoard, multi-GPU through `accelerate launch --config_file training/configs/accelerate_ddp.yaml`.
Writes `<train.output_dir>/final/`: the model (`MintForConditionalGeneration`, loadable with
`AutoModelForSpeechSeq2Seq`) and its processor (`MintProcessor` with the LLM's tokenizer).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer

from soundlm.modeling.mint import (
    MintForConditionalGeneration,
    MintForPreTraining,
    MintProcessor,
    pad_audio_embeds,
)
from soundlm.training.common.mint import (
    DATA_DEFAULTS,
    TRAIN_DEFAULTS,
    run_stage,
    stage_config,
    with_features,
)
from soundlm.training.common.trainer import training_rows

logger = logging.getLogger("instruct_mint")

DEFAULTS = {
    "data": {"train": "work/tasks/mint_stage2", **DATA_DEFAULTS},
    "model": {
        "init_stage1": None,  # a stage-1 folder (pretrain_mint.py's final/)
        "language_model": None,  # the frozen LLM: folder or Hub id (paper: google/flan-t5-xl)
        "dtype": "float32",  # the LLM's weights: float32 | bfloat16 | float16
    },
    "train": {**TRAIN_DEFAULTS, "output_dir": "runs/mint/stage2", "num_epochs": 3},
}


def build(config: dict):
    """(stage-2 model, stage-2 processor)."""
    model_config = config["model"]
    init, llm = model_config["init_stage1"], model_config["language_model"]
    if not init or not Path(init, "config.json").is_file():
        raise ValueError(f"model.init_stage1 {init!r} holds no stage-1 model: run training/pretrain_mint.py first")
    if not llm:
        raise ValueError("model.language_model is required (a causal or encoder-decoder LM folder / Hub id)")
    stage1_processor = MintProcessor.from_pretrained(init)
    decoder_only = not AutoConfig.from_pretrained(llm).is_encoder_decoder
    processor = MintProcessor(stage1_processor.feature_extractor, stage1_processor.qformer_tokenizer,
                              AutoTokenizer.from_pretrained(llm), max_text_length=stage1_processor.max_text_length,
                              decoder_only=decoder_only)
    model = MintForConditionalGeneration.from_stage1(MintForPreTraining.from_pretrained(init), llm,
                                                     dtype=getattr(torch, model_config["dtype"]))
    return model, processor


class InstructionCollator:
    """Rows with `audio_embeds`, `instruction`, `response` -> `MintForConditionalGeneration.forward` inputs."""

    def __init__(self, processor: MintProcessor):
        self.processor = processor

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        embeds, mask = pad_audio_embeds([row["audio_embeds"] for row in rows])
        text = self.processor(text=[row["instruction"] for row in rows], response=[row["response"] for row in rows])
        return {"audio_embeds": embeds, "audio_embeds_mask": mask, **text}


def main(argv: list[str] | None = None, callbacks: list | None = None) -> Path:
    """Run stage 2; returns the folder of the final model."""
    config, arguments = stage_config(__doc__.split("\n\n")[0], DEFAULTS, argv)
    model, processor = build(config)
    rows = training_rows(config["data"]["train"], config["data"])
    train_set = with_features(rows, config, model.audio_encoder, processor.feature_extractor,
                              str(config["model"]["init_stage1"]), arguments)
    return run_stage("stage 2", model, processor, train_set, InstructionCollator(processor), config, arguments,
                     (), callbacks, new_modules=("language_projection",))


__all__ = ["DEFAULTS", "InstructionCollator", "build", "main"]

if __name__ == "__main__":
    main()
