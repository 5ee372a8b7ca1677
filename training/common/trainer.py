"""What the scripts built on the transformers `Trainer` share: their `TrainingArguments` from a config's `train`
section, and the training rows of a task set."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import TrainingArguments

from .checkpoints import check_complete_checkpoint, last_complete_checkpoint


def trainer_arguments(train: dict, output_dir: str | Path, schedulers: tuple[str, ...] = ("cosine", "linear"),
                      **extra: Any) -> TrainingArguments:
    """The `TrainingArguments` every script sets the same way: batch, accumulation, steps, AdamW (weight decay 0 is
    Adam), warm-up and schedule, clipping, bf16 autocast where the GPU has it (`bf16: auto`; off on the CPU),
    activation checkpointing, logging / saving cadence, TensorBoard, seeds, the CPU when there is no GPU, and the
    extra columns kept (`remove_unused_columns=False`). `extra` adds or overrides arguments."""
    if train["scheduler"] not in schedulers:
        raise ValueError(f"train.scheduler must be one of {list(schedulers)}, got {train['scheduler']!r}")
    bf16 = train["bf16"]
    if bf16 == "auto":
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    arguments = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=int(train["batch_size"]),
        gradient_accumulation_steps=int(train["gradient_accumulation_steps"]),
        max_steps=int(train["max_steps"]),
        learning_rate=float(train["lr"]),
        weight_decay=float(train["weight_decay"]),
        warmup_steps=int(train["warmup_steps"]),
        lr_scheduler_type=train["scheduler"],
        max_grad_norm=float(train["grad_clip"]),
        bf16=bool(bf16),
        activation_checkpointing=bool(train["gradient_checkpointing"]),
        activation_checkpointing_kwargs={"use_reentrant": False} if train["gradient_checkpointing"] else None,
        logging_steps=int(train["log_every"]),
        save_steps=int(train["save_every"]),
        save_total_limit=train["save_total_limit"],
        report_to=["tensorboard"],
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        seed=int(train["seed"]),
        data_seed=int(train["seed"]),
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
    )
    arguments.update(extra)
    return TrainingArguments(**arguments)


def training_rows(path: str, data_config: dict) -> datasets.Dataset:
    """The Arrow set of `build_task_data.py`, filtered to the training split (and `max_examples`)."""
    if not Path(path).is_dir():
        raise ValueError(f"task set {path!r} does not exist: build it with training/build_task_data.py")
    rows = datasets.load_from_disk(path)
    column, split = data_config["split_column"], data_config["train_split"]
    if column and column in rows.column_names:
        rows = rows.filter(lambda value: value == split, input_columns=column, desc=f"{column} == {split!r}")
    if data_config["max_examples"]:
        rows = rows.select(range(min(len(rows), int(data_config["max_examples"]))))
    if not len(rows):
        raise ValueError(f"task set {path!r} has no training rows (split column {column!r} == {split!r})")
    return rows


class LossPartsLogging:
    """`Trainer` mixin: each log line also carries the mean of every loss part (`text_loss`, `alc_loss`, ...) over
    the steps since the previous line. Call `init_loss_parts(names)` in `__init__` and `record_loss_parts(output)` in
    `compute_loss` (parts that are None or NaN, such as a batch without audio targets, are left out)."""

    def init_loss_parts(self, names: tuple[str, ...]) -> None:
        self._loss_parts: dict[str, list[float]] = {name: [] for name in names}

    def record_loss_parts(self, output: Any) -> None:
        for name, values in self._loss_parts.items():
            value = output.get(name)
            if value is None:
                continue
            value = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
            if not math.isnan(value):
                values.append(value)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:
            for name, values in self._loss_parts.items():
                if values:
                    logs[name] = round(sum(values) / len(values), 4)
                values.clear()
        super().log(logs, *args, **kwargs)


def resume_checkpoint(resume: str | None, output_dir: str | Path, log: Any) -> str | None:
    """`train.resume_from_checkpoint` as the Trainer takes it: `"latest"` is the newest complete checkpoint under
    `output_dir` (None, logged, when there is none yet); a path must be a complete checkpoint (see `checkpoints`)."""
    if not resume:
        return None
    if resume is not True and resume != "latest":
        return check_complete_checkpoint(resume)
    latest = last_complete_checkpoint(output_dir)
    if latest is None:
        log.info("no checkpoint under %s: starting from step 0", output_dir)
    return latest
