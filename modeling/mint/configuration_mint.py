# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""MINT configurations: the Q-Former ("Bridge-Net") and the composite model (audio encoder + Q-Former + LLM)."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from ..yamnet.configuration_yamnet import YamnetConfig

# MINT's default audio encoder. Registered here too (not only on `import soundlm`) so that an exported MINT folder,
# loaded as remote code in a process without soundlm, can rebuild its nested `audio_config`.
AutoConfig.register(YamnetConfig.model_type, YamnetConfig, exist_ok=True)

_AUDIO_HIDDEN_SIZE_ATTRIBUTES = ("hidden_size", "d_model")


def _check_positive_ints(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")


def audio_hidden_size(audio_config: PretrainedConfig) -> int:
    """Width of the sequence the Q-Former cross-attends to, for an audio encoder config.

    YAMNet: its 1024-d patch embeddings; the MSN tokenizer: its encoder's output before the quantizer
    (`codebook_dim`); a transformers audio model (data2vec audio, wav2vec2, HuBERT, Whisper's encoder, ...):
    `hidden_size` or `d_model`.
    """
    if getattr(audio_config, "model_type", None) == "msn_tokenizer":
        return audio_config.codebook_dim
    for name in _AUDIO_HIDDEN_SIZE_ATTRIBUTES:
        value = getattr(audio_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError(
        f"cannot tell the hidden size of audio encoder config {type(audio_config).__name__} "
        f"(model_type {getattr(audio_config, 'model_type', None)!r}): it has none of {_AUDIO_HIDDEN_SIZE_ATTRIBUTES}"
    )


class MintQFormerConfig(PretrainedConfig):
    r"""
    Configuration of the MINT Q-Former: a BERT encoder whose layers also hold learned-query paths (cross-attention
    to the audio encoder every `cross_attention_frequency` layers, and their own feed-forward blocks). The paper's
    is BERT-base (768 x 12 layers) with 32 queries; the defaults are BERT-base's, plus one `[DEC]` token
    (`bos_token_id`) that starts the audio-grounded text generation (ATG), as in BLIP-2.

    Args:
        vocab_size (`int`, *optional*, defaults to 30523): BERT's 30522 WordPiece tokens and `[DEC]`.
        hidden_size (`int`, *optional*, defaults to 768): width of queries and text tokens.
        num_hidden_layers (`int`, *optional*, defaults to 12): blocks.
        num_attention_heads (`int`, *optional*, defaults to 12): heads of every attention.
        intermediate_size (`int`, *optional*, defaults to 3072): feed-forward width (text and query paths).
        hidden_act (`str`, *optional*, defaults to `"gelu"`): feed-forward activation.
        hidden_dropout_prob (`float`, *optional*, defaults to 0.1): dropout after embeddings and sub-layers.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.1): dropout on attention weights.
        max_position_embeddings (`int`, *optional*, defaults to 512): text positions (queries have none).
        initializer_range (`float`, *optional*, defaults to 0.02): std of the normal init of new weights.
        layer_norm_eps (`float`, *optional*, defaults to 1e-12): LayerNorm epsilon.
        pad_token_id (`int`, *optional*, defaults to 0): BERT's `[PAD]`.
        bos_token_id (`int`, *optional*, defaults to 30522): the `[DEC]` token that replaces `[CLS]` for ATG.
        cross_attention_frequency (`int`, *optional*, defaults to 2): queries cross-attend to the audio in layers
            0, f, 2f, ... (1: every layer; 2: every other layer, BLIP-2's choice).
        encoder_hidden_size (`int`, *optional*, defaults to 1024): width of the audio encoder's hidden states.
    """

    model_type = "mint_qformer"
    base_config_key = "qformer_config"

    def __init__(
        self,
        vocab_size: int = 30523,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        pad_token_id: int = 0,
        bos_token_id: int = 30522,
        cross_attention_frequency: int = 2,
        encoder_hidden_size: int = 1024,
        **kwargs,
    ):
        _check_positive_ints("MintQFormerConfig", vocab_size=vocab_size, hidden_size=hidden_size,
                             num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                             intermediate_size=intermediate_size, cross_attention_frequency=cross_attention_frequency,
                             encoder_hidden_size=encoder_hidden_size, max_position_embeddings=max_position_embeddings)
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"MintQFormerConfig: hidden_size {hidden_size} is not a multiple of num_attention_heads "
                f"{num_attention_heads}"
            )
        for name, value in (("pad_token_id", pad_token_id), ("bos_token_id", bos_token_id)):
            if not 0 <= value < vocab_size:
                raise ValueError(f"MintQFormerConfig: {name} {value} is outside the vocabulary [0, {vocab_size})")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = float(hidden_dropout_prob)
        self.attention_probs_dropout_prob = float(attention_probs_dropout_prob)
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = float(initializer_range)
        self.layer_norm_eps = float(layer_norm_eps)
        self.cross_attention_frequency = cross_attention_frequency
        self.encoder_hidden_size = encoder_hidden_size
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, **kwargs)


class MintConfig(PretrainedConfig):
    r"""
    Configuration of a MINT model: a frozen audio encoder, the Q-Former with `num_query_tokens` learned queries, and
    (stage 2) a frozen language model that reads the projected query outputs as a soft prompt.

    Args:
        audio_config (`dict` or `PretrainedConfig`, *optional*): the frozen audio encoder, any registered config
            (default YAMNet, `model_type="yamnet"`; the paper's is data2vec audio, `"data2vec-audio"`; the
            project's own `"msn_tokenizer"` works too). Its hidden size becomes the Q-Former's
            `encoder_hidden_size`.
        qformer_config (`dict` or [`MintQFormerConfig`], *optional*): the Q-Former.
        text_config (`dict` or `PretrainedConfig`, *optional*): the frozen LLM (stage 2 only; paper: FlanT5-XL,
            here any causal or encoder-decoder LM). `None` for a stage-1 model.
        num_query_tokens (`int`, *optional*, defaults to 32): learned queries.
        embed_dim (`int`, *optional*, defaults to 256): width of the ALC projections (BLIP-2's 256).
        use_alc / use_alm / use_atg (`bool`, *optional*, default `True`): stage-1 objectives (Table 5's ablation):
            contrastive, matching, audio-grounded text generation. At least one must be on.
        max_text_length (`int`, *optional*, defaults to 32): Q-Former text tokens per caption or instruction,
            `[CLS]` and `[SEP]` included (the paper: text of at most 30 tokens).
        atg_label_smoothing (`float`, *optional*, defaults to 0.1): label smoothing of the ATG loss (BLIP-2's).
        initializer_range (`float`, *optional*, defaults to 0.02): std of new weights (queries, heads, projection).
        tie_word_embeddings (`bool`, *optional*, defaults to `True`): ATG's LM head shares the Q-Former's word
            embeddings (BLIP-2's choice).
    """

    model_type = "mint"
    sub_configs_defaults = {
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="yamnet"),
        "qformer_config": MintQFormerConfig,
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama", optional=True),
    }

    def __init__(
        self,
        audio_config: dict | PretrainedConfig | None = None,
        qformer_config: dict | MintQFormerConfig | None = None,
        text_config: dict | PretrainedConfig | None = None,
        num_query_tokens: int = 32,
        embed_dim: int = 256,
        use_alc: bool = True,
        use_alm: bool = True,
        use_atg: bool = True,
        max_text_length: int = 32,
        atg_label_smoothing: float = 0.1,
        initializer_range: float = 0.02,
        tie_word_embeddings: bool = True,
        **kwargs,
    ):
        self.audio_config = _sub_config(audio_config, "audio_config", default_type="yamnet")
        if isinstance(qformer_config, dict):
            qformer_config = MintQFormerConfig(**qformer_config)
        elif qformer_config is None:
            qformer_config = MintQFormerConfig(encoder_hidden_size=audio_hidden_size(self.audio_config))
        elif not isinstance(qformer_config, MintQFormerConfig):
            raise TypeError(
                f"qformer_config must be a dict or a MintQFormerConfig, got {type(qformer_config).__name__}"
            )
        encoder_width = audio_hidden_size(self.audio_config)
        if qformer_config.encoder_hidden_size != encoder_width:
            raise ValueError(
                f"qformer_config.encoder_hidden_size is {qformer_config.encoder_hidden_size} but the audio encoder "
                f"({self.audio_config.model_type}) gives hidden states of width {encoder_width}"
            )
        self.qformer_config = qformer_config
        self.text_config = None if text_config is None else _sub_config(text_config, "text_config", "llama")
        _check_positive_ints("MintConfig", num_query_tokens=num_query_tokens, embed_dim=embed_dim,
                             max_text_length=max_text_length)
        if max_text_length > qformer_config.max_position_embeddings:
            raise ValueError(
                f"MintConfig: max_text_length {max_text_length} exceeds the Q-Former's max_position_embeddings "
                f"{qformer_config.max_position_embeddings}"
            )
        if not (use_alc or use_alm or use_atg):
            raise ValueError("MintConfig: at least one of use_alc, use_alm, use_atg must be True")
        if use_alm and not use_alc:
            raise ValueError("MintConfig: use_alm needs use_alc (ALM's hard negatives are drawn from ALC similarities)")
        if not 0.0 <= atg_label_smoothing < 1.0:
            raise ValueError(f"MintConfig: atg_label_smoothing must be in [0, 1), got {atg_label_smoothing}")
        self.num_query_tokens = num_query_tokens
        self.embed_dim = embed_dim
        self.use_alc = bool(use_alc)
        self.use_alm = bool(use_alm)
        self.use_atg = bool(use_atg)
        self.max_text_length = max_text_length
        self.atg_label_smoothing = float(atg_label_smoothing)
        self.initializer_range = float(initializer_range)
        self.tie_word_embeddings = bool(tie_word_embeddings)
        super().__init__(**kwargs)

    @property
    def use_decoder_only_language_model(self) -> bool:
        """True when the LLM is a causal LM (SmolLM2, Vicuna), False for an encoder-decoder (FlanT5)."""
        if self.text_config is None:
            raise ValueError("this MintConfig has no text_config (a stage-1 model has no language model)")
        return self.text_config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    @property
    def objectives(self) -> tuple[str, ...]:
        """The stage-1 objectives switched on, e.g. `("alc", "alm", "atg")`."""
        return tuple(name for name in ("alc", "alm", "atg") if getattr(self, f"use_{name}"))


def _sub_config(value: Any, name: str, default_type: str) -> PretrainedConfig:
    if isinstance(value, PretrainedConfig):
        return value
    if value is None:
        return AutoConfig.for_model(default_type)
    if isinstance(value, dict):
        value = dict(value)
        model_type = value.pop("model_type", default_type)
        return AutoConfig.for_model(model_type, **value)
    raise TypeError(f"{name} must be a dict or a PretrainedConfig, got {type(value).__name__}")


__all__ = ["MintConfig", "MintQFormerConfig", "audio_hidden_size"]
