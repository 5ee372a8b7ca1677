"""Fine-tune the LM-MSN audio LLM: LoRA + the new audio-token rows, weighted cross-entropy with z-loss.

    accelerate launch training/finetune.py --config training/configs/demo_lm_msn.yaml --stage pretrain
    accelerate launch training/finetune.py --config training/configs/demo_lm_msn.yaml --stage instruct \
        [--train.max_steps=200 ...]

`--stage pretrain` (the paper's stage 1, caption pairs in both orders) trains the adapter from scratch on
`data.pretrain`; `--stage instruct` (stage 2, the chat tasks) starts from the stage-1 adapter
(`model.init_adapter`, default `<train.output_dir>/pretrain/final`) on `data.instruct`. Both read the Arrow
sets of `training/build_task_data.py`. What differs between the stages goes under `stages:` in the same file
(`stages: {pretrain: {train: {max_steps: 10}}, instruct: {train: {max_steps: 40}}}`), laid over the shared sections;
command-line overrides come last.

Built on the transformers `Trainer`, so one code path runs from one CPU process to many GPUs (DDP and FSDP
through `accelerate launch --config_file training/configs/accelerate_{ddp,fsdp}.yaml`): gradient
accumulation, bf16 autocast where the device has it (`train.bf16: auto`), gradient checkpointing,
length-grouped batches (examples of similar length share a batch; padding is masked, examples never attend to
each other), cosine or linear schedule with warm-up, TensorBoard logs under `<run>/runs`, a progress bar, and
checkpoints (adapter, optimiser, scheduler, RNG states) that resume exactly with
`--train.resume_from_checkpoint latest`. The loss is `lm_msn_loss` (chunked LM head, logged as its parts:
`text_loss`, `audio_loss`, `z_loss`).

Writes `<train.output_dir>/<stage>/final/`: the peft adapter (LoRA + new rows), the processor (tokenizer with
the audio tokens and its chat template) and `config.json` (the `LMMSNConfig` recipe). `soundlm merge` turns it
into a plain model folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import datasets
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, set_seed

from soundlm.modeling.lm_msn import (
    AudioTokenProcessor,
    LMMSNConfig,
    lm_msn_loss,
    load_audio_llm,
    naive_lm_msn_loss,
    prepare_audio_llm,
)
from soundlm.training.common.checkpoints import MarksCompleteCheckpoints, written_then_renamed
from soundlm.training.common.config import apply_overrides, load_config, merge_sections
from soundlm.training.common.trainer import LossPartsLogging, resume_checkpoint, trainer_arguments, training_rows

logger = logging.getLogger("finetune")

STAGES = ("pretrain", "instruct")

DEFAULTS = {
    "data": {
        "pretrain": "work/tasks/lm_msn_stage1",  # Arrow sets of build_task_data.py
        "instruct": "work/tasks/lm_msn_stage2",
        "split_column": "split",  # rows whose value is `train_split` train; None: every row
        "train_split": "train",
        "max_length": 512,  # tokens per example; longer examples are cut at the end (counted in the log)
        "max_examples": None,  # first N examples (after the split filter), for short runs
    },
    "model": {
        "base_model": None,  # causal LM folder or Hub id (paper: lmsys/vicuna-7b-v1.5)
        "sound_tokenizer": None,  # MSNTokenizerModel folder: gives the codebook size
        "init_adapter": None,  # instruct: the stage-1 adapter folder (default <output_dir>/pretrain/final)
        "dtype": "float32",  # base weights: float32 | bfloat16 | float16
        "load_in_bits": None,  # 4 or 8: quantised base through bitsandbytes (when installed)
        "lora_rank": 64,
        "lora_alpha": 128,
        "lora_dropout": 0.05,
        "lora_target_modules": "all-linear",
        "new_row_init": "mean_cov",  # mean_cov | mean | codebook (from the sound tokenizer's code vectors) | model
        "audio_loss_weight": 10.0,
        "z_loss_coefficient": 1.0e-4,
        "loss_chunk_size": 1024,
        "loss_normalization": "tokens",  # tokens | examples (LMMSNConfig.loss_normalization)
    },
    "train": {
        "output_dir": "runs/lm_msn",
        "seed": 0,
        "batch_size": 8,
        "gradient_accumulation_steps": 1,
        "max_steps": 100,
        "lr": 2.0e-4,
        "weight_decay": 0.0,
        "warmup_steps": 10,
        "scheduler": "cosine",  # cosine | linear
        "grad_clip": 1.0,
        "bf16": "auto",  # auto: bf16 autocast on a GPU that has it, off on the CPU
        "gradient_checkpointing": False,
        "group_by_length": True,
        "chunked_loss": True,  # False: full-logits loss (FSDP switches to it by itself)
        "save_every": 50,
        "save_total_limit": 2,
        "log_every": 10,
        "resume_from_checkpoint": None,  # a checkpoint folder, or "latest"
    },
}


def merged_config(config: dict, stage: str | None = None) -> dict:
    """The defaults updated by the file's sections, then by its ``stages.<stage>`` sections (what differs per stage,
    e.g. ``stages: {pretrain: {train: {max_steps: 10}}}``); unknown sections, keys and stages are refused."""
    config = dict(config)
    stages = config.pop("stages", None) or {}
    if not isinstance(stages, dict) or set(stages) - set(STAGES):
        raise ValueError(f"config section 'stages' must map stage names {list(STAGES)} to sections, got "
                         f"{stages!r:.200}")
    merged = merge_sections(DEFAULTS, config)
    return merge_sections(merged, stages.get(stage) or {}) if stage else merged


def recipe(model_config: dict, codebook_size: int) -> LMMSNConfig:
    return LMMSNConfig(
        base_model_name_or_path=model_config["base_model"],
        codebook_size=codebook_size,
        sound_tokenizer_name_or_path=model_config["sound_tokenizer"],
        lora_rank=model_config["lora_rank"],
        lora_alpha=model_config["lora_alpha"],
        lora_dropout=model_config["lora_dropout"],
        lora_target_modules=model_config["lora_target_modules"],
        new_row_init=model_config["new_row_init"],
        audio_loss_weight=model_config["audio_loss_weight"],
        z_loss_coefficient=model_config["z_loss_coefficient"],
        loss_chunk_size=model_config["loss_chunk_size"],
        loss_normalization=model_config["loss_normalization"],
    )


def _model_kwargs(model_config: dict) -> dict:
    kwargs = {"dtype": getattr(torch, model_config["dtype"])}
    if model_config["load_in_bits"]:
        from transformers import BitsAndBytesConfig  # needs bitsandbytes (>= 0.49 also runs on the CPU)

        bits = int(model_config["load_in_bits"])
        if bits not in (4, 8):
            raise ValueError(f"model.load_in_bits must be 4 or 8, got {bits}")
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=bits == 4, load_in_8bit=bits == 8,
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
    return kwargs


def build_model(stage: str, config: dict):
    """(peft model, processor, recipe) for the stage: stage 1 from the base LLM, stage 2 from stage 1's adapter."""
    model_config = config["model"]
    if stage == "instruct":
        init = model_config["init_adapter"] or os.path.join(config["train"]["output_dir"], "pretrain", "final")
        if not Path(init, "adapter_config.json").is_file():
            raise ValueError(f"model.init_adapter {init!r} holds no adapter: run --stage pretrain first or point "
                             "model.init_adapter at a stage-1 adapter folder")
        model, processor = load_audio_llm(init, base_model=model_config["base_model"], is_trainable=True,
                                          **_model_kwargs(model_config))
        lm_config = LMMSNConfig.from_pretrained(init) if Path(init, "config.json").is_file() else recipe(
            model_config, processor.codebook_size)
        lm_config.audio_loss_weight = model_config["audio_loss_weight"]
        lm_config.z_loss_coefficient = model_config["z_loss_coefficient"]
        lm_config.loss_normalization = model_config["loss_normalization"]
        processor.audio_loss_weight = float(model_config["audio_loss_weight"])
        return model, processor, lm_config
    if not model_config["base_model"] or not model_config["sound_tokenizer"]:
        raise ValueError("model.base_model and model.sound_tokenizer are required for --stage pretrain")
    tokenizer = AutoTokenizer.from_pretrained(model_config["base_model"])
    processor = AudioTokenProcessor(tokenizer, codebook_size=model_config["sound_tokenizer"],
                                    audio_loss_weight=model_config["audio_loss_weight"])
    lm_config = recipe(model_config, processor.codebook_size)
    base = AutoModelForCausalLM.from_pretrained(model_config["base_model"], **_model_kwargs(model_config))
    code_vectors = None
    if lm_config.new_row_init == "codebook":
        from soundlm.modeling.msn_tokenizer import MSNTokenizerModel

        code_vectors = MSNTokenizerModel.from_pretrained(model_config["sound_tokenizer"]).quantizer.codebook
    model = prepare_audio_llm(base, processor, lm_config, seed=config["train"]["seed"], code_vectors=code_vectors)
    return model, processor, lm_config


def encode_dataset(path: str, processor: AudioTokenProcessor, data_config: dict) -> datasets.Dataset:
    """The task set as `input_ids`, `labels`, `loss_weights` and `length` (for length grouping)."""
    rows = training_rows(path, data_config)
    max_length = int(data_config["max_length"])

    def encode(row: dict) -> dict:
        encoded = processor.encode_example(row)
        cut = len(encoded["input_ids"]) > max_length
        encoded = {name: values[:max_length] for name, values in encoded.items()}
        return {**encoded, "length": len(encoded["input_ids"]), "truncated": cut}

    encoded = rows.map(encode, remove_columns=rows.column_names, desc="tokenising")
    truncated = sum(encoded["truncated"])
    if truncated:
        logger.warning("%d of %d examples were longer than data.max_length=%d tokens and were cut", truncated,
                       len(encoded), max_length)
    # an example cut before its first target teaches nothing (and a batch of them has no gradient)
    kept = encoded.filter(lambda labels: any(label != -100 for label in labels), input_columns="labels",
                          desc="examples with targets")
    if len(kept) < len(encoded):
        logger.warning("skipped %d of %d examples with no target token left within data.max_length=%d",
                       len(encoded) - len(kept), len(encoded), max_length)
    if not len(kept):
        raise ValueError(f"no example of {path!r} keeps a target token within data.max_length={max_length}; "
                         "raise data.max_length")
    return kept.remove_columns("truncated")


class LMMSNTrainer(LossPartsLogging, MarksCompleteCheckpoints, Trainer):
    """`Trainer` with the LM-MSN loss (`lm_msn_loss`, or the full-logits form) and its parts in the logs."""

    def __init__(self, *args, lm_config: LMMSNConfig, audio_id_range: tuple[int, int], chunked_loss: bool = True,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.lm_config = lm_config
        self.audio_id_range = audio_id_range
        if chunked_loss and self.is_fsdp_enabled:
            logger.info("FSDP: the LM head is sharded outside the forward, so the loss uses full logits")
            chunked_loss = False
        self.loss_function_ = lm_msn_loss if chunked_loss else naive_lm_msn_loss
        # the loss is a per-batch weighted mean, so the Trainer must divide it by the accumulation steps
        self.loss_is_scaled_for_ga = False
        self.init_loss_parts(("text_loss", "audio_loss", "z_loss"))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        output = self.loss_function_(model, **inputs, z_loss_coefficient=self.lm_config.z_loss_coefficient,
                                     chunk_size=self.lm_config.loss_chunk_size, audio_id_range=self.audio_id_range,
                                     normalization=self.lm_config.loss_normalization)
        self.record_loss_parts(output)
        return (output.loss, output) if return_outputs else output.loss

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Checkpoints hold the adapter only: the new rows live in its trainable-token weights, so peft's copy of
        the whole resized embedding matrices (its default after a resize) is left out."""
        from peft import PeftModel

        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if not isinstance(model, PeftModel):
            return super()._save(output_dir, state_dict)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if self.args.should_save:
            os.makedirs(output_dir, exist_ok=True)
            model.save_pretrained(output_dir, save_embedding_layers=False, is_main_process=True)


def training_arguments(config: dict, output_dir: Path) -> TrainingArguments:
    train = config["train"]
    return trainer_arguments(train, output_dir,
                             train_sampling_strategy="group_by_length" if train["group_by_length"] else "random")


def main(argv: list[str] | None = None, callbacks: list | None = None) -> Path:
    """Run one stage; `callbacks` are extra `TrainerCallback`s (programmatic use); returns the final folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=None, help="YAML config (sections data, model, train)")
    parser.add_argument("--stage", required=True, choices=STAGES)
    args, overrides = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    stage = args.stage
    config = merged_config(load_config(args.config), stage)
    config = apply_overrides(config, overrides)
    output_dir = Path(config["train"]["output_dir"]) / stage
    set_seed(int(config["train"]["seed"]))

    model, processor, lm_config = build_model(stage, config)
    data_path = config["data"]["pretrain" if stage == "pretrain" else "instruct"]
    train_set = encode_dataset(data_path, processor, config["data"])
    logger.info("stage %s: %d examples, %d tokens (%d target), from %s", stage, len(train_set),
                sum(train_set["length"]), sum(sum(1 for label in labels if label != -100)
                                                for labels in train_set["labels"]), data_path)
    if hasattr(model, "print_trainable_parameters"):
        model.print_trainable_parameters()

    arguments = training_arguments(config, output_dir)
    trainer = LMMSNTrainer(
        model=model,
        args=arguments,
        train_dataset=train_set,
        data_collator=lambda features: processor.pad(features, padding_side="right"),
        lm_config=lm_config,
        audio_id_range=processor.audio_id_range,
        chunked_loss=bool(config["train"]["chunked_loss"]),
        callbacks=callbacks,
    )
    resume = resume_checkpoint(config["train"]["resume_from_checkpoint"], output_dir, logger)
    result = trainer.train(resume_from_checkpoint=resume)
    logger.info("stage %s done: %s", stage, {k: round(v, 4) if isinstance(v, float) else v
                                            for k, v in result.metrics.items()})

    final = output_dir / "final"
    with written_then_renamed(final, write=trainer.is_world_process_zero()) as folder:
        if trainer.is_world_process_zero():
            # the adapter carries the new rows itself (trainable tokens); the resized embedding matrices stay out
            trainer.model.save_pretrained(folder, save_embedding_layers=False)
            processor.save_pretrained(folder)
            lm_config.save_pretrained(folder)
    logger.info("saved the adapter, the processor and the recipe to %s", final)
    trainer.accelerator.wait_for_everyone()
    return final


if __name__ == "__main__":
    main()
