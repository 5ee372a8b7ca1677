"""MINT stage 1 (multi-target pre-training): the Q-Former learns from audio-caption pairs with ALC, ALM and ATG.

    accelerate launch training/pretrain_mint.py --config training/configs/demo_mint.yaml \
        [--model.use_alm=false --model.use_atg=false --train.output_dir=runs/demo/mint/stage1_alc ...]

Reads the `mint_stage1` Arrow set of `training/build_task_data.py` (audio references + `text`). The frozen audio
encoder (`model.audio_encoder`: `yamnet`, the real AudioSet YAMNet; or a folder / Hub id such as
`facebook/data2vec-audio-base`, the paper's) runs once per clip and its output is cached. The Q-Former starts from a
BERT (`model.qformer_init`: `minilm`, the real all-MiniLM-L6-v2; a folder / Hub id such as `bert-base-uncased`, the
paper's; or null for random weights in the sizes of `model.qformer`), its cross-attention fresh.

Built on the transformers `Trainer` (one code path from one CPU to many GPUs through `accelerate launch
--config_file training/configs/accelerate_ddp.yaml`; ALC gathers negatives across processes): Adam with the paper's
linear schedule and warm-up, each loss (`alc_loss`, `alm_loss`, `atg_loss`) in the logs and in TensorBoard under
`<output_dir>/runs`, a progress bar, checkpoints that resume exactly (`--train.resume_from_checkpoint latest`).
Writes `<train.output_dir>/final/`: the model (`MintForPreTraining`, loadable with `AutoModelForPreTraining`) and its
processor (`MintProcessor`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from soundlm.modeling.mint import MintProcessor, build_mint_for_pretraining, pad_audio_embeds
from soundlm.training.common.mint import (
    DATA_DEFAULTS,
    MINILM,
    TRAIN_DEFAULTS,
    YAMNET,
    load_audio_encoder,
    load_qformer_bert,
    pair_id,
    run_stage,
    stage_config,
    with_features,
)
from soundlm.training.common.trainer import training_rows

logger = logging.getLogger("pretrain_mint")

DEFAULTS = {
    "data": {"train": "work/tasks/mint_stage1", **DATA_DEFAULTS},
    "model": {
        "audio_encoder": YAMNET,  # "yamnet" or a transformers audio model folder / Hub id
        "audio_encoder_cache": None,  # where the converted YAMNet lives (default $HF_HOME/soundlm/yamnet)
        "qformer_init": MINILM,  # "minilm", a BERT folder / Hub id, or null (random, sized by `qformer`)
        "qformer_tokenizer": None,  # the Q-Former's tokenizer when qformer_init is null (default: qformer_init's)
        "qformer": {},  # MintQFormerConfig overrides, e.g. {num_hidden_layers: 4, cross_attention_frequency: 2}
        "num_query_tokens": 32,
        "embed_dim": 256,
        "max_text_length": 32,
        "use_alc": True,
        "use_alm": True,
        "use_atg": True,
        "atg_label_smoothing": 0.1,
    },
    "train": {**TRAIN_DEFAULTS, "output_dir": "runs/mint/stage1"},
}

LOSS_PARTS = ("alc_loss", "alm_loss", "atg_loss")


def build(config: dict):
    """(stage-1 model, stage-1 processor, frozen encoder, its feature extractor)."""
    model_config = config["model"]
    encoder, extractor = load_audio_encoder(model_config["audio_encoder"], model_config["audio_encoder_cache"])
    objectives = {name: model_config[name] for name in (
        "num_query_tokens", "embed_dim", "max_text_length", "use_alc", "use_alm", "use_atg", "atg_label_smoothing")}
    if model_config["qformer_init"]:
        bert, tokenizer = load_qformer_bert(model_config["qformer_init"])
        model = build_mint_for_pretraining(encoder, bert=bert, qformer_config=dict(model_config["qformer"]),
                                           **objectives)
    else:
        from transformers import AutoTokenizer

        if not model_config["qformer_tokenizer"]:
            raise ValueError("model.qformer_init is null: name the Q-Former's tokenizer in model.qformer_tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(model_config["qformer_tokenizer"])
        model = build_mint_for_pretraining(encoder, qformer_config=dict(model_config["qformer"]), **objectives)
    processor = MintProcessor(extractor, tokenizer, tokenizer, max_text_length=model_config["max_text_length"])
    if processor.dec_token_id != model.config.qformer_config.bos_token_id:
        raise ValueError(f"the Q-Former tokenizer puts [DEC] at id {processor.dec_token_id} but the Q-Former config "
                         f"expects bos_token_id {model.config.qformer_config.bos_token_id}")
    if len(tokenizer) > model.config.qformer_config.vocab_size:
        raise ValueError(f"the Q-Former tokenizer has {len(tokenizer)} tokens but the Q-Former's vocabulary "
                         f"{model.config.qformer_config.vocab_size}")
    return model, processor, encoder, extractor


class PairCollator:
    """Rows with `audio_embeds` and `text` -> `MintForPreTraining.forward` inputs."""

    def __init__(self, processor: MintProcessor):
        self.processor = processor

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        embeds, mask = pad_audio_embeds([row["audio_embeds"] for row in rows])
        text = self.processor.qformer_text([row["text"] for row in rows])
        return {"audio_embeds": embeds, "audio_embeds_mask": mask, **text,
                "pair_ids": torch.tensor([pair_id(row["text"]) for row in rows], dtype=torch.long)}


def main(argv: list[str] | None = None, callbacks: list | None = None) -> Path:
    """Run stage 1; returns the folder of the final model."""
    config, arguments = stage_config(__doc__.split("\n\n")[0], DEFAULTS, argv)
    model, processor, encoder, extractor = build(config)
    logger.info("stage 1 objectives: %s; %d queries x %d; Q-Former of %d layers (cross-attention every %d)",
                "+".join(o.upper() for o in model.config.objectives), model.config.num_query_tokens,
                model.config.qformer_config.hidden_size, model.config.qformer_config.num_hidden_layers,
                model.config.qformer_config.cross_attention_frequency)
    rows = training_rows(config["data"]["train"], config["data"])
    train_set = with_features(rows, config, encoder, extractor, config["model"]["audio_encoder"], arguments)
    return run_stage("stage 1", model, processor, train_set, PairCollator(processor), config, arguments, LOSS_PARTS,
                     callbacks)


__all__ = ["DEFAULTS", "PairCollator", "build", "main"]

if __name__ == "__main__":
    main()
