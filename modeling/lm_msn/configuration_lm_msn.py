# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""LM-MSN audio LLM configuration: how a causal text LM is turned into the audio LLM and trained."""

from __future__ import annotations

from transformers import PretrainedConfig

__all__ = ["LMMSNConfig"]

NEW_ROW_INITS = ("mean_cov", "mean", "codebook", "model")
LOSS_NORMALIZATIONS = ("tokens", "examples")


class LMMSNConfig(PretrainedConfig):
    """The recipe of an LM-MSN audio LLM on top of any causal LM (paper: Vicuna-7B v1.5).

    It is saved beside the peft adapter and the processor (`config.json` of a fine-tuning run's folder), so a
    folder says how its adapter was made. The base LLM keeps its own config.

    Args:
        base_model_name_or_path (`str`, *optional*): the causal LM's Hub id or folder.
        codebook_size (`int`, *optional*): the sound tokenizer's codebook size (8196 in the paper).
        sound_tokenizer_name_or_path (`str`, *optional*): the sound tokenizer whose codes the LLM reads and writes
            (its decoder turns generated codes into audio).
        lora_rank (`int`, *optional*, defaults to 64), lora_alpha (`int`, *optional*, defaults to 128): the
            paper's LoRA.
        lora_dropout (`float`, *optional*, defaults to 0.05).
        lora_target_modules (`str` or `list[str]`, *optional*, defaults to `"all-linear"`): peft's name for every
            linear layer of the transformer blocks (the LM head excluded), the paper's "LoRA in all layers".
        new_row_init (`str`, *optional*, defaults to `"mean_cov"`): how the added embedding rows start.
            `"mean_cov"` draws them from a normal with the mean and covariance of the existing rows (Hewitt's
            recipe: new tokens start inside the distribution of the old ones, so their logits start near the
            average token's instead of dominating or vanishing); `"mean"` sets every row to the mean;
            `"codebook"` starts the code rows from a fixed random map of the sound tokenizer's code vectors with
            the same mean and spread, so that codes close in the codebook start close (`init_code_rows_from_codebook`;
            `<soa>`/`<eoa>` as `"mean_cov"`);
            `"model"` keeps what `resize_token_embeddings` gives.
        audio_loss_weight (`float`, *optional*, defaults to 10.0): cross-entropy weight of audio-token targets.
        z_loss_coefficient (`float`, *optional*, defaults to 1e-4): PaLM's z-loss, `coef * logsumexp(logits)^2`
            averaged over target positions.
        loss_normalization (`str`, *optional*, defaults to `"tokens"`): how the weighted cross-entropy is averaged
            (`LOSS_NORMALIZATIONS`). `"tokens"`: the batch's sum of weight x CE over its sum of weights, so every
            target token of equal weight counts the same and a text-to-audio example (216 code targets) outweighs
            a caption answer (about 8 tokens) 27 to 1; `"examples"`: each example's weighted mean, averaged over
            the batch's examples that have a target, so every example counts the same whatever its length.
        loss_chunk_size (`int`, *optional*, defaults to 1024): target positions per chunk of the vocabulary
            projection in the loss (bounds the float32 logits held at once to `chunk x vocab`).
    """

    model_type = "lm_msn"

    def __init__(
        self,
        base_model_name_or_path: str | None = None,
        codebook_size: int | None = None,
        sound_tokenizer_name_or_path: str | None = None,
        lora_rank: int = 64,
        lora_alpha: int = 128,
        lora_dropout: float = 0.05,
        lora_target_modules: str | list[str] = "all-linear",
        new_row_init: str = "mean_cov",
        audio_loss_weight: float = 10.0,
        z_loss_coefficient: float = 1e-4,
        loss_chunk_size: int = 1024,
        loss_normalization: str = "tokens",
        **kwargs,
    ):
        if lora_rank < 1 or lora_alpha <= 0:
            raise ValueError(f"lora_rank must be >= 1 and lora_alpha > 0, got {lora_rank} and {lora_alpha}.")
        if new_row_init not in NEW_ROW_INITS:
            raise ValueError(f"new_row_init must be one of {NEW_ROW_INITS}, got {new_row_init!r}.")
        if not audio_loss_weight > 0 or z_loss_coefficient < 0:
            raise ValueError(f"audio_loss_weight must be > 0 and z_loss_coefficient >= 0, got {audio_loss_weight} "
                             f"and {z_loss_coefficient}.")
        if loss_chunk_size < 1:
            raise ValueError(f"loss_chunk_size must be >= 1, got {loss_chunk_size}.")
        if loss_normalization not in LOSS_NORMALIZATIONS:
            raise ValueError(f"loss_normalization must be one of {LOSS_NORMALIZATIONS}, got {loss_normalization!r}.")
        if codebook_size is not None and codebook_size < 1:
            raise ValueError(f"codebook_size must be >= 1, got {codebook_size}.")
        self.base_model_name_or_path = base_model_name_or_path
        self.codebook_size = codebook_size
        self.sound_tokenizer_name_or_path = sound_tokenizer_name_or_path
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_target_modules = lora_target_modules
        self.new_row_init = new_row_init
        self.audio_loss_weight = audio_loss_weight
        self.z_loss_coefficient = z_loss_coefficient
        self.loss_chunk_size = loss_chunk_size
        self.loss_normalization = loss_normalization
        super().__init__(**kwargs)
