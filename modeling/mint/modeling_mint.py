# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""MINT: a Q-Former ("Bridge-Net") between a frozen audio encoder and a frozen LLM.

The Q-Former is BLIP-2's: a BERT whose layers carry, beside the text path, `num_query_tokens` learned queries that
cross-attend to the audio encoder's hidden states (every `cross_attention_frequency` layers) and have their own
feed-forward blocks. Queries and text share the self-attention; which may see which is set by one of three masks
(`mint_attention_mask`): `"unimodal"` (ALC), `"bidirectional"` (ALM, and stage 2's instruction-aware pass) and
`"unilm"` (ATG: queries see queries, text sees every query and the earlier text).

The embeddings, feed-forward and attention-output blocks are transformers' InstructBLIP Q-Former parts; the
self-attention is ours because it also takes the queries' keys/values from an earlier pass (ATG reuses the ALC
pass's instead of recomputing them), and the layer is ours because it takes the masks above as boolean
(batch, rows, keys) tensors. Parameter names follow BERT's, so `load_bert_into_qformer` copies a BERT checkpoint in.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    GenerationMixin,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.instructblip.modeling_instructblip import (
    InstructBlipQFormerEmbeddings,
    InstructBlipQFormerIntermediate,
    InstructBlipQFormerMultiHeadAttention,
    InstructBlipQFormerOutput,
    InstructBlipQFormerSelfOutput,
)
from transformers.utils import ModelOutput

from ...processing.audio_datasets import read_row_audio
from ...processing.audio_io import AudioInputError
from ..yamnet.configuration_yamnet import YamnetConfig
from ..yamnet.modeling_yamnet import YamnetModel
from .configuration_mint import MintConfig, MintQFormerConfig

logger = logging.getLogger(__name__)

MASK_KINDS = ("unimodal", "bidirectional", "unilm")

QueryKeyValues = tuple[tuple[torch.Tensor, torch.Tensor], ...]


# ----------------------------------------------------------------------------------------------------------------
# masks


def mint_attention_mask(kind: str, num_queries: int, text_attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Which position may attend to which, over the sequence [queries; text].

    Args:
        kind (`str`): `"unimodal"` (queries see queries, text sees text: ALC), `"bidirectional"` (everything sees
            everything: ALM, stage 2) or `"unilm"` (queries see queries; text sees all queries, itself and earlier
            text: ATG).
        num_queries (`int`): queries at the front (may be 0).
        text_attention_mask (`torch.Tensor` of shape `(batch, text_length)`, *optional*): 1 on real text tokens,
            0 on padding (never attended to). `None`: no text.

    Returns:
        `torch.BoolTensor` of shape `(batch, num_queries + text_length, num_queries + text_length)`: True where row
        position may attend to column position. A query row never sees text except under `"bidirectional"`.
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"mask kind must be one of {MASK_KINDS}, got {kind!r}")
    if text_attention_mask is None:
        text_attention_mask = torch.ones(1, 0, dtype=torch.bool)
    text_real = text_attention_mask.bool()
    batch, text_length = text_real.shape
    length = num_queries + text_length
    device = text_real.device
    keys_real = torch.cat([torch.ones(batch, num_queries, dtype=torch.bool, device=device), text_real], dim=1)
    is_query = torch.arange(length, device=device) < num_queries
    rows, cols = is_query[:, None], is_query[None, :]
    if kind == "bidirectional":
        allowed = torch.ones(length, length, dtype=torch.bool, device=device)
    elif kind == "unimodal":
        allowed = rows == cols
    else:
        causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        allowed = (rows & cols) | (~rows & cols) | (~rows & ~cols & causal)
    return allowed[None] & keys_real[:, None, :]


# ----------------------------------------------------------------------------------------------------------------
# the Q-Former


class MintQFormerMultiHeadAttention(InstructBlipQFormerMultiHeadAttention):
    """InstructBLIP's Q-Former attention (same parameters) that also prepends keys/values of an earlier pass."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        encoder_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """hidden_states (batch, length, hidden); attention_mask bool (batch, 1, length, keys), True = attend;
        encoder_index (batch,): row r attends to encoder_hidden_states[encoder_index[r]], whose keys/values are
        computed once per encoder row rather than once per attending row.
        Returns the attention output (batch, length, hidden) and this call's (keys, values), past included."""
        source = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        batch, length, _ = hidden_states.shape

        def heads(states: torch.Tensor) -> torch.Tensor:
            return states.view(states.shape[0], -1, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

        query, key, value = heads(self.query(hidden_states)), heads(self.key(source)), heads(self.value(source))
        if encoder_index is not None:
            key, value = key[encoder_index], value[encoder_index]
        if past_key_value is not None:
            key = torch.cat([past_key_value[0], key], dim=2)
            value = torch.cat([past_key_value[1], value], dim=2)
        output = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask,
            dropout_p=self.attention_dropout if self.training else 0.0, scale=self.scaling,
        )
        return output.transpose(1, 2).reshape(batch, length, self.all_head_size), (key, value)


class MintQFormerAttention(nn.Module):
    """Attention + BERT's output block (dense, dropout, residual LayerNorm)."""

    def __init__(self, config: MintQFormerConfig, is_cross_attention: bool = False):
        super().__init__()
        self.attention = MintQFormerMultiHeadAttention(config, is_cross_attention)
        self.output = InstructBlipQFormerSelfOutput(config)

    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None, past_key_value=None,
                encoder_index=None):
        attended, present = self.attention(hidden_states, attention_mask, encoder_hidden_states, past_key_value,
                                           encoder_index)
        return self.output(attended, hidden_states), present


class MintQFormerLayer(GradientCheckpointingLayer):
    """Shared self-attention over [queries; text]; cross-attention and a feed-forward block for the queries, another
    feed-forward block for the text."""

    def __init__(self, config: MintQFormerConfig, layer_idx: int):
        super().__init__()
        self.attention = MintQFormerAttention(config)
        self.has_cross_attention = layer_idx % config.cross_attention_frequency == 0
        if self.has_cross_attention:
            self.crossattention = MintQFormerAttention(config, is_cross_attention=True)
        self.intermediate = InstructBlipQFormerIntermediate(config)
        self.output = InstructBlipQFormerOutput(config)
        self.intermediate_query = InstructBlipQFormerIntermediate(config)
        self.output_query = InstructBlipQFormerOutput(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        query_length: int = 0,
        past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        encoder_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        attended, present = self.attention(hidden_states, attention_mask, past_key_value=past_key_value)
        parts = []
        if query_length:
            queries = attended[:, :query_length]
            if self.has_cross_attention:
                if encoder_hidden_states is None:
                    raise ValueError("the queries need encoder_hidden_states (the audio encoder's output)")
                queries, _ = self.crossattention(queries, encoder_attention_mask, encoder_hidden_states,
                                                 encoder_index=encoder_index)
            parts.append(self.output_query(self.intermediate_query(queries), queries))
        if attended.shape[1] > query_length:
            text = attended[:, query_length:]
            parts.append(self.output(self.intermediate(text), text))
        return torch.cat(parts, dim=1), present


class MintQFormerEncoder(nn.Module):
    def __init__(self, config: MintQFormerConfig):
        super().__init__()
        self.layer = nn.ModuleList(MintQFormerLayer(config, index) for index in range(config.num_hidden_layers))


@dataclass
class MintQFormerOutput(ModelOutput):
    """Output of [`MintQFormerModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_queries + text_length, hidden_size)`):
            queries first, then text.
        query_key_values (`tuple` of `(key, value)` per layer, *optional*, returned with `use_cache=True`): each of
            shape `(batch_size, num_heads, keys, head_dim)`; pass a queries-only pass's back in to let text attend
            to those queries without recomputing them.
    """

    last_hidden_state: torch.FloatTensor | None = None
    query_key_values: QueryKeyValues | None = None


def _init_position_ids(module: nn.Module) -> None:
    """The text position table is a non-persistent buffer: `from_pretrained` leaves it to `_init_weights`."""
    if isinstance(module, InstructBlipQFormerEmbeddings):
        init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))


class MintQFormerPreTrainedModel(PreTrainedModel):
    config_class = MintQFormerConfig
    base_model_prefix = "qformer"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MintQFormerLayer"]

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        _init_position_ids(module)


class MintQFormerModel(MintQFormerPreTrainedModel):
    """The Q-Former: queries and/or text in, hidden states out (no pooling, no head).

    Example:

    ```python
    >>> import torch
    >>> from soundlm.modeling.mint import MintQFormerConfig, MintQFormerModel, mint_attention_mask
    >>> config = MintQFormerConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    ...                            intermediate_size=64, bos_token_id=99, encoder_hidden_size=16)
    >>> qformer = MintQFormerModel(config).eval()
    >>> queries, audio = torch.randn(2, 4, 32), torch.randn(2, 7, 16)
    >>> ids, mask = torch.randint(1, 99, (2, 5)), torch.ones(2, 5, dtype=torch.long)
    >>> out = qformer(input_ids=ids, attention_mask=mask, query_embeds=queries, encoder_hidden_states=audio,
    ...               mask_kind="unilm")
    >>> out.last_hidden_state.shape
    torch.Size([2, 9, 32])

    ```
    """

    def __init__(self, config: MintQFormerConfig):
        super().__init__(config)
        self.embeddings = InstructBlipQFormerEmbeddings(config)
        self.encoder = MintQFormerEncoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        query_embeds: torch.FloatTensor | None = None,
        encoder_hidden_states: torch.FloatTensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        mask_kind: str = "bidirectional",
        query_key_values: QueryKeyValues | None = None,
        use_cache: bool = False,
        encoder_index: torch.LongTensor | None = None,
    ) -> MintQFormerOutput:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, text_length)`, *optional*): Q-Former text tokens
                (positions count from 0 whether or not queries come first).
            attention_mask (`torch.Tensor` of shape `(batch_size, text_length)`, *optional*): 1 on real text tokens.
            query_embeds (`torch.FloatTensor` of shape `(batch_size, num_queries, hidden_size)`, *optional*): the
                learned queries (expanded to the batch).
            encoder_hidden_states (`torch.FloatTensor` of shape `(batch_size, audio_length, encoder_hidden_size)`,
                *optional*): what the queries cross-attend to; needed when queries are given.
            encoder_attention_mask (`torch.Tensor` of shape `(batch_size, audio_length)`, *optional*): 1 on real
                audio positions.
            mask_kind (`str`, *optional*, defaults to `"bidirectional"`): see `mint_attention_mask`.
            query_key_values (*optional*): a queries-only pass's `query_key_values`; the text then attends to those
                queries as the mask kind allows (`"unilm"` and `"bidirectional"`: all of them). Text only.
            use_cache (`bool`, *optional*): return every layer's keys/values.
            encoder_index (`torch.LongTensor` of shape `(batch_size,)`, *optional*): row r's queries cross-attend to
                `encoder_hidden_states[encoder_index[r]]` (and its mask row). The same result as passing the
                gathered states, but each audio's cross-attention keys/values are computed once: ALM scores 3 x
                batch pairs drawn from one batch of audio.

        Returns:
            [`MintQFormerOutput`].
        """
        if input_ids is None and query_embeds is None:
            raise ValueError("MintQFormerModel needs input_ids, query_embeds or both")
        if query_key_values is not None and (query_embeds is not None or input_ids is None):
            raise ValueError("query_key_values (cached queries) go with text only: pass input_ids, not query_embeds")
        if input_ids is not None and attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        num_queries = 0 if query_embeds is None else query_embeds.shape[1]
        if query_embeds is not None:
            query_embeds = query_embeds.to(self.dtype)
        hidden_states = self.embeddings(input_ids=input_ids, query_embeds=query_embeds)

        past_queries = 0 if query_key_values is None else query_key_values[0][0].shape[2]
        if past_queries:
            # rows: the text; columns: the cached queries, then the text
            full = mint_attention_mask(mask_kind, past_queries, attention_mask)
            mask = full[:, past_queries:]
        else:
            mask = mint_attention_mask(mask_kind, num_queries, attention_mask)
        mask = mask[:, None].to(hidden_states.device)  # (batch, 1, rows, keys): shared by the heads

        cross_mask = None
        if num_queries:
            if encoder_hidden_states is None:
                raise ValueError("query_embeds need encoder_hidden_states to cross-attend to")
            encoder_hidden_states = encoder_hidden_states.to(self.dtype)
            if encoder_index is not None:
                encoder_index = encoder_index.to(hidden_states.device)
                if encoder_index.shape != (hidden_states.shape[0],):
                    raise ValueError(f"encoder_index must have shape ({hidden_states.shape[0]},) (one audio row per "
                                     f"query row), got {tuple(encoder_index.shape)}")
            if encoder_attention_mask is not None:
                cross_mask = encoder_attention_mask.bool()
                cross_mask = cross_mask if encoder_index is None else cross_mask[encoder_index]
                cross_mask = cross_mask[:, None, None, :].to(hidden_states.device)
        elif encoder_index is not None:
            raise ValueError("encoder_index selects the audio each query row cross-attends to: it needs query_embeds")

        presents = [] if use_cache else None
        for index, layer in enumerate(self.encoder.layer):
            past = None if query_key_values is None else query_key_values[index]
            hidden_states, present = layer(hidden_states, mask, encoder_hidden_states, cross_mask, num_queries, past,
                                           encoder_index)
            if use_cache:
                presents.append(present)
        return MintQFormerOutput(last_hidden_state=hidden_states,
                                 query_key_values=tuple(presents) if use_cache else None)


class MintQFormerLMHead(nn.Module):
    """BERT's masked-LM head used as ATG's decoder head: transform, then a projection tied to the word embeddings."""

    def __init__(self, config: MintQFormerConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.LayerNorm(self.activation(self.dense(hidden_states)))
        return self.decoder(hidden_states) + self.bias


# ----------------------------------------------------------------------------------------------------------------
# the frozen audio encoder


def encode_audio(
    encoder: PreTrainedModel, audio_values: torch.Tensor, audio_attention_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sequence the queries cross-attend to, from any supported frozen audio encoder.

    Args:
        encoder: YAMNet (`audio_values` are its log-mel patches, mask `patch_mask`), the project's MSN tokenizer
            (waveforms, mask `padding_mask`; its encoder's continuous output before the quantizer,
            `codebook_dim` wide), or a
            transformers audio model with `last_hidden_state` (data2vec audio, wav2vec2, HuBERT, ...; waveforms or
            features under its `main_input_name`, mask `attention_mask`).
        audio_values (`torch.Tensor`): the encoder's input as its feature extractor returns it.
        audio_attention_mask (`torch.Tensor`, *optional*): the feature extractor's mask for that input.

    Returns:
        `(hidden_states, mask)`: `(batch, audio_length, hidden)` and a bool `(batch, audio_length)` mask.
    """
    model_type = encoder.config.model_type
    if model_type == "yamnet":
        output = encoder(input_features=audio_values, patch_mask=audio_attention_mask)
        return output.embeddings, output.patch_mask
    if model_type == "msn_tokenizer":
        latents = encoder.audio_to_latents(audio_values.to(encoder.dtype))
        hidden = encoder.encoder(encoder.normalize_latents(latents))
        frame_mask = encoder._check_padding_mask(audio_attention_mask, hidden.shape[1])
        if frame_mask is None:
            frame_mask = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
        return hidden, frame_mask.bool()
    if hasattr(encoder, "_get_feat_extract_output_lengths") and audio_values.ndim == 2:
        # a convolutional front end (wav2vec2 family) gives no frame, or fails deep inside, on too little audio
        lengths = (audio_attention_mask.sum(-1) if audio_attention_mask is not None
                   else torch.full((audio_values.shape[0],), audio_values.shape[-1]))
        frames = encoder._get_feat_extract_output_lengths(lengths.cpu())
        if int(frames.min()) < 1:
            shortest, needed = int(lengths.min()), 1
            while int(encoder._get_feat_extract_output_lengths(torch.tensor(needed))) < 1:
                needed += 1
            raise ValueError(f"audio of {shortest} samples is shorter than the audio encoder's receptive field "
                             f"({needed} samples); pad or drop the clip")
    kwargs = {encoder.main_input_name: audio_values.to(encoder.dtype)}
    if audio_attention_mask is not None:
        kwargs["attention_mask"] = audio_attention_mask
    hidden = encoder(**kwargs).last_hidden_state
    if audio_attention_mask is not None and hasattr(encoder, "_get_feature_vector_attention_mask"):
        mask = encoder._get_feature_vector_attention_mask(hidden.shape[1], audio_attention_mask)
    else:
        mask = torch.ones(hidden.shape[:2], device=hidden.device)
    return hidden, mask.bool()


def encode_audio_rows(
    encoder: PreTrainedModel, extractor: Any, rows: Sequence[dict]
) -> tuple[list[np.ndarray | None], list[str | None]]:
    """The frozen encoder's output for each data row (`load_audio_dataset` / task-set rows with `audio_path` or
    `audio_bytes`, `start`, `end`): a float32 `(audio_length, hidden)` array, or None and the reason when the row's
    audio cannot be read (the caller logs and counts it; a batch job does not stop on one file)."""
    audios: list[np.ndarray | None] = []
    errors: list[str | None] = []
    for row in rows:
        try:
            audio, _ = read_row_audio(row, sampling_rate=extractor.sampling_rate, channels=1)
            audios.append(audio[0])
            errors.append(None)
        except AudioInputError as error:
            audios.append(None)
            errors.append(str(error))
    good = [audio for audio in audios if audio is not None]
    outputs: list[np.ndarray | None] = [None] * len(rows)
    if good:
        features = extractor(good, sampling_rate=extractor.sampling_rate, return_tensors="pt")
        names = list(extractor.model_input_names)
        with torch.no_grad():
            hidden, mask = encode_audio(encoder, features[names[0]].to(encoder.device),
                                        features[names[1]].to(encoder.device) if len(names) > 1 else None)
        index = iter(range(len(good)))
        for position, audio in enumerate(audios):
            if audio is not None:
                i = next(index)
                outputs[position] = hidden[i][mask[i]].float().cpu().numpy()
    return outputs, errors


# ----------------------------------------------------------------------------------------------------------------
# outputs


@dataclass
class MintForPreTrainingOutput(ModelOutput):
    """Output of [`MintForPreTraining`].

    Args:
        loss (`torch.FloatTensor` of shape `()`): the sum of the enabled objectives' losses.
        alc_loss, alm_loss, atg_loss (`torch.FloatTensor` of shape `()`, *optional*): each objective's loss (None
            when switched off; `alm_loss` is also None when the batch has no valid negative).
        similarity (`torch.FloatTensor` of shape `(batch_size, global_batch_size)`, *optional*): ALC audio-to-text
            similarity (max over queries of cosine, divided by the temperature) against the texts of every process.
        alm_logits (`torch.FloatTensor` of shape `(num_pairs, 2)`, *optional*): matched (1) / unmatched (0) logits
            of the positive pairs, then the hard-negative pairs.
        atg_logits (`torch.FloatTensor` of shape `(batch_size, text_length, vocab_size)`, *optional*).
        query_output (`torch.FloatTensor` of shape `(batch_size, num_queries, hidden_size)`): the queries-only pass.
    """

    loss: torch.FloatTensor | None = None
    alc_loss: torch.FloatTensor | None = None
    alm_loss: torch.FloatTensor | None = None
    atg_loss: torch.FloatTensor | None = None
    similarity: torch.FloatTensor | None = None
    alm_logits: torch.FloatTensor | None = None
    atg_logits: torch.FloatTensor | None = None
    query_output: torch.FloatTensor | None = None


@dataclass
class MintForConditionalGenerationOutput(ModelOutput):
    """Output of [`MintForConditionalGeneration`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): LM loss on the response tokens (given `labels`).
        logits (`torch.FloatTensor` of shape `(batch_size, length, vocab_size)`): the LLM's logits (decoder-only:
            over the soft prompt and the text; encoder-decoder: over the decoder positions).
        query_output (`torch.FloatTensor` of shape `(batch_size, num_queries, hidden_size)`): the Q-Former's
            query outputs (before the projection).
        language_model_inputs (`torch.FloatTensor` of shape `(batch_size, num_queries, llm_hidden_size)`): the
            soft prompt.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    query_output: torch.FloatTensor | None = None
    language_model_inputs: torch.FloatTensor | None = None


# ----------------------------------------------------------------------------------------------------------------
# the models


class MintPreTrainedModel(PreTrainedModel):
    config_class = MintConfig
    base_model_prefix = "mint"
    main_input_name = "audio_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MintQFormerLayer"]
    _frozen_modules: tuple[str, ...] = ("audio_encoder",)
    hub_card_template = "mint.md"
    hub_auto_class = "AutoModel"  # each stage names the Auto class it is registered with
    _hub_stage: dict[str, str] = {}

    def hub_card_fields(self) -> dict[str, str]:
        """The values `export_for_hub` fills into `hub_cards/mint.md`."""
        config = self.config
        qformer = config.qformer_config
        objectives = [name for name, used in (("ALC", config.use_alc), ("ALM", config.use_alm),
                                              ("ATG", config.use_atg)) if used]
        text = config.text_config
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters())
        return {
            "audio_encoder": config.audio_config.model_type,
            "audio_hidden_size": str(qformer.encoder_hidden_size),
            "num_query_tokens": str(config.num_query_tokens),
            "qformer_hidden_size": str(qformer.hidden_size),
            "qformer_layers": str(qformer.num_hidden_layers),
            "cross_attention_frequency": str(qformer.cross_attention_frequency),
            "objectives": " + ".join(objectives),
            "language_model": "none (stage 1)" if text is None else f"`{text.model_type}`, "
                                                                   f"{text.hidden_size}-d",
            "trainable_parameters": f"{trainable / 1e6:.1f} M",
            "total_parameters": f"{total / 1e6:.1f} M",
            "auto_class": self.hub_auto_class,
            **self._hub_stage,
        }

    def _report_row(self) -> str:
        raise NotImplementedError

    def hub_model_index(self, report: dict[str, Any], dataset: dict[str, str]) -> list[dict[str, Any]]:
        """`model-index` results of this model from a `mint_report` (its `report.json`): classification accuracy
        per dataset of the report, and retrieval recall (stage 1) or captioning scores (stage 2), each on
        ``dataset`` (`{"name", "type", "split"}`)."""
        row = self._report_row()
        results = []
        for name, entry in report.get("classification", {}).items():
            if row in entry["accuracy"]:
                results.append(_index_result("zero-shot-audio-classification", f"{dataset['name']}: {name}",
                                             dataset, [("accuracy", entry["accuracy"][row], "accuracy")]))
        recall = report.get("retrieval", {}).get("recall", {})
        if row in recall:
            metrics = [(f"recall@{k[2:]}", recall[row][k], f"text-to-audio R@{k[2:]}") for k in ("R@1", "R@5", "R@10")]
            results.append(_index_result("audio-retrieval", dataset["name"], dataset, metrics))
        captions = report.get("captions", {})
        if isinstance(self, MintForConditionalGeneration) and "scores" in captions:
            metrics = [(name, value, name) for name, value in captions["scores"].items()]
            results.append(_index_result("audio-captioning", dataset["name"], dataset, metrics))
        if not results:
            rows = sorted({name for entry in report.get("classification", {}).values() for name in entry["accuracy"]})
            raise ValueError(f"the report has no row {row!r} for this model (its classification rows: {rows})")
        return results

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        _init_position_ids(module)
        if isinstance(module, MintPreTrainedModel):
            init.normal_(module.query_tokens, std=self.config.initializer_range)
            if isinstance(module, MintForPreTraining):
                init.constant_(module.temperature, 0.07)
        elif isinstance(module, MintQFormerLMHead):
            init.zeros_(module.bias)

    def _build_bridge(self, config: MintConfig) -> None:
        if config.audio_config.model_type == YamnetConfig.model_type:
            # built directly, not through AutoModel: an exported folder loaded as remote code (no soundlm, its
            # modules loaded by transformers) has no AutoModel entry for the YAMNet config class it made
            self.audio_encoder = YamnetModel(config.audio_config)
        else:
            self.audio_encoder = AutoModel.from_config(config.audio_config)
        self.audio_encoder.requires_grad_(False).eval()
        self.query_tokens = nn.Parameter(torch.zeros(1, config.num_query_tokens, config.qformer_config.hidden_size))
        self.qformer = MintQFormerModel(config.qformer_config)

    def train(self, mode: bool = True) -> MintPreTrainedModel:
        """Train mode for the trained parts; the frozen encoder (and LLM) stay in eval mode (no dropout, and
        YAMNet's batch norm keeps its statistics)."""
        super().train(mode)
        for name in self._frozen_modules:
            getattr(self, name).eval()
        return self

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any):
        """`PreTrainedModel.from_pretrained`, then the frozen parts frozen again: loading the weights hands back
        parameters that require gradients, which would let an optimizer or a backward through `audio_values`
        reach the encoder (and the LLM)."""
        model = super().from_pretrained(*args, **kwargs)
        for name in model._frozen_modules:
            getattr(model, name).requires_grad_(False).eval()
        return model

    @torch.no_grad()
    def get_audio_hidden_states(
        self, audio_values: torch.Tensor, audio_attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The frozen encoder's output `(batch, audio_length, encoder_hidden)` and its bool mask (see
        `encode_audio`); computed without gradient. Cache it once per clip to train without re-encoding."""
        return encode_audio(self.audio_encoder, audio_values, audio_attention_mask)

    def _audio_states(self, audio_values, audio_attention_mask, audio_embeds, audio_embeds_mask):
        if audio_embeds is None:
            if audio_values is None:
                raise ValueError("give audio_values (the audio encoder's input) or audio_embeds (its cached output)")
            audio_embeds, audio_embeds_mask = self.get_audio_hidden_states(audio_values, audio_attention_mask)
        expected = self.config.qformer_config.encoder_hidden_size
        if audio_embeds.ndim != 3 or audio_embeds.shape[-1] != expected:
            raise ValueError(f"audio_embeds must have shape (batch, audio_length, {expected}), got "
                             f"{tuple(audio_embeds.shape)}")
        if audio_embeds.shape[1] == 0:
            raise ValueError("the audio encoder gave no frame for this audio (is the clip shorter than its window?)")
        if audio_embeds_mask is None:
            audio_embeds_mask = torch.ones(audio_embeds.shape[:2], dtype=torch.bool, device=audio_embeds.device)
        audio_embeds_mask = audio_embeds_mask.bool()
        if not audio_embeds_mask.any(dim=1).all():
            empty = (~audio_embeds_mask.any(dim=1)).nonzero().flatten().tolist()
            raise ValueError(f"audio item(s) {empty} have no real encoder frame (audio_embeds_mask all 0)")
        return audio_embeds.to(self.dtype), audio_embeds_mask

    def _queries(self, audio_embeds, audio_embeds_mask, input_ids=None, attention_mask=None,
                 mask_kind="bidirectional", use_cache=False, audio_index=None) -> MintQFormerOutput:
        rows = audio_embeds.shape[0] if audio_index is None else audio_index.shape[0]
        queries = self.query_tokens.expand(rows, -1, -1)
        return self.qformer(input_ids=input_ids, attention_mask=attention_mask, query_embeds=queries,
                            encoder_hidden_states=audio_embeds, encoder_attention_mask=audio_embeds_mask,
                            mask_kind=mask_kind, use_cache=use_cache, encoder_index=audio_index)


def _index_result(task: str, dataset_name: str, dataset: dict[str, str], metrics: list[tuple[str, float, str]]
                  ) -> dict[str, Any]:
    """One `model-index` result: a task, a dataset, and (type, value, name) metrics, values rounded to 4 digits."""
    return {"task": {"type": task},
            "dataset": {"name": dataset_name, "type": dataset["type"], "split": dataset["split"]},
            "metrics": [{"type": kind, "value": round(float(value), 4), "name": name} for kind, value, name in metrics]}


def _gather_with_grad(tensor: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All processes' `tensor` concatenated on dim 0 (gradients flow back to each process's own part), and the
    offset of this process's rows. One process: the tensor itself."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return tensor, 0
    world = torch.distributed.get_world_size()
    if world == 1:
        return tensor, 0
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(world)]
    torch.distributed.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    if len({int(size) for size in sizes}) != 1:
        raise ValueError(f"ALC gathers negatives across processes and needs equal per-process batches, got "
                         f"{[int(size) for size in sizes]} (use even batches / drop_last)")
    from torch.distributed.nn.functional import all_gather

    parts = all_gather(tensor)
    return torch.cat(parts, dim=0), torch.distributed.get_rank() * tensor.shape[0]


class MintForPreTraining(MintPreTrainedModel):
    """MINT stage 1: the Q-Former trained on audio-caption pairs with ALC, ALM and ATG (each switchable in the config).

    * **ALC** (audio-language contrastive): the queries-only pass and the text-only pass (the unimodal mask),
      projected to `embed_dim` and L2-normalised; a pair's similarity is the highest over the queries of
      query . [CLS]; symmetric cross-entropy at a learnable temperature against the texts and audios of every
      process (all-gathered with gradient). Pairs with equal `pair_ids` (same caption) are positives of each other.
    * **ALM** (audio-language matching): per positive pair, one hard-negative text per audio and one hard-negative
      audio per text, drawn with probability softmax(ALC similarity) among this process's batch (never a positive);
      the [queries; text] pass with the bidirectional mask; a 2-way head on each query output, averaged over queries.
    * **ATG** (audio-grounded text generation): the caption with `[DEC]` in place of `[CLS]`, predicted token by token
      under the UniLM mask, attending to the queries' keys/values of the ALC pass (not recomputed); the LM head is
      tied to the Q-Former's word embeddings.

    Example:

    ```python
    >>> import torch
    >>> from soundlm.modeling.mint import MintConfig, MintForPreTraining
    >>> config = MintConfig(
    ...     audio_config={"model_type": "yamnet", "layer_channels": [8, 16], "layer_strides": [2, 2]},
    ...     qformer_config={"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
    ...                     "intermediate_size": 64, "bos_token_id": 99, "encoder_hidden_size": 16},
    ...     num_query_tokens=4, embed_dim=16)
    >>> model = MintForPreTraining(config)
    >>> audio = torch.randn(3, 5, 96, 64)                        # YAMNet log-mel patches: 3 clips x 5 patches
    >>> ids = torch.randint(1, 99, (3, 6)); ids[:, 0] = 2           # [CLS] first
    >>> out = model(audio_values=audio, input_ids=ids, attention_mask=torch.ones_like(ids))
    >>> sorted(k for k in ("alc_loss", "alm_loss", "atg_loss") if out[k] is not None), out.similarity.shape
    (['alc_loss', 'alm_loss', 'atg_loss'], torch.Size([3, 3]))

    ```
    """

    _tied_weights_keys = {"lm_head.decoder.weight": "qformer.embeddings.word_embeddings.weight"}
    hub_auto_class = "AutoModelForPreTraining"

    _hub_stage = {  # the card's stage-specific fields
        "stage": "stage 1", "pipeline_tag": "zero-shot-audio-classification",
        "stage_description": "the stage-1 model: audio encoder and Q-Former, trained on audio-caption pairs; it "
                             "embeds audio and text for zero-shot classification and retrieval",
        "usage": ('inputs = processor(audio=["clip.wav"], text=["This is a sound of applause"])\n'
                  'audio = model.get_audio_features(audio_values=inputs["audio_values"],\n'
                  '                                 audio_attention_mask=inputs["audio_attention_mask"])\n'
                  'text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])\n'
                  'print(model.similarity(audio, text))          # (clips, texts) cosine, best over the queries'),
    }

    def _report_row(self) -> str:
        config = self.config
        used = [name for name, on in (("ALC", config.use_alc), ("ALM", config.use_alm), ("ATG", config.use_atg)) if on]
        return f"stage 1 ({'+'.join(used)})"

    def __init__(self, config: MintConfig):
        super().__init__(config)
        self._build_bridge(config)
        hidden = config.qformer_config.hidden_size
        self.audio_projection = nn.Linear(hidden, config.embed_dim)
        self.text_projection = nn.Linear(hidden, config.embed_dim)
        self.temperature = nn.Parameter(torch.tensor(0.07))
        self.alm_head = nn.Linear(hidden, 2)
        self.lm_head = MintQFormerLMHead(config.qformer_config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def get_input_embeddings(self) -> nn.Embedding:
        return self.qformer.get_input_embeddings()

    # ----- embeddings for zero-shot classification and retrieval -------------------------------------------
    def get_audio_features(
        self,
        audio_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        audio_embeds: torch.Tensor | None = None,
        audio_embeds_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L2-normalised ALC features of the queries: `(batch, num_queries, embed_dim)`."""
        audio_embeds, audio_embeds_mask = self._audio_states(audio_values, audio_attention_mask, audio_embeds,
                                                             audio_embeds_mask)
        queries = self._queries(audio_embeds, audio_embeds_mask).last_hidden_state
        return F.normalize(self.audio_projection(queries), dim=-1)

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised ALC feature of each text's [CLS] output (text-only pass): `(batch, embed_dim)`."""
        text = self.qformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return F.normalize(self.text_projection(text[:, 0]), dim=-1)

    @staticmethod
    def similarity(audio_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of every audio with every text, the best over the queries: `(num_audio, num_text)`."""
        return torch.einsum("aqd,td->atq", audio_features, text_features).amax(dim=-1)

    def alm_scores(
        self, audio_embeds: torch.Tensor, audio_embeds_mask: torch.Tensor | None, input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None, audio_index: torch.LongTensor | None = None,
    ) -> torch.Tensor:
        """ALM logit margin (matched minus unmatched) of each pair: `(batch,)`, `batch = input_ids.shape[0]`.
        Pair r is (audio_embeds[r], text r), or (audio_embeds[audio_index[r]], text r) when `audio_index` is given
        (each audio's cross-attention keys/values are then computed once however many texts it is paired with)."""
        audio_embeds, audio_embeds_mask = self._audio_states(None, None, audio_embeds, audio_embeds_mask)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        rows = audio_embeds.shape[0] if audio_index is None else audio_index.shape[0]
        if rows != input_ids.shape[0]:
            raise ValueError(f"{rows} audio rows but {input_ids.shape[0]} texts: ALM scores pairs (use audio_index "
                             f"to pair one audio with several texts)")
        logits = self._alm_logits(audio_embeds, audio_embeds_mask, input_ids, attention_mask, audio_index)
        return logits[:, 1] - logits[:, 0]

    def _alm_logits(self, audio_embeds, audio_embeds_mask, input_ids, attention_mask, audio_index=None):
        joint = self._queries(audio_embeds, audio_embeds_mask, input_ids, attention_mask, "bidirectional",
                              audio_index=audio_index)
        num_queries = self.config.num_query_tokens
        return self.alm_head(joint.last_hidden_state[:, :num_queries]).mean(dim=1)

    # ----- stage-1 training -----------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        audio_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        audio_embeds: torch.Tensor | None = None,
        audio_embeds_mask: torch.Tensor | None = None,
        pair_ids: torch.LongTensor | None = None,
        return_dict: bool | None = None,
    ) -> MintForPreTrainingOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, text_length)`): the captions in the Q-Former's
                tokenizer, `[CLS]` first (at most `config.max_text_length` tokens).
            attention_mask (`torch.Tensor` of shape `(batch_size, text_length)`, *optional*): 1 on real tokens.
            audio_values (`torch.Tensor`, *optional*): the audio encoder's input (e.g. YAMNet's
                `(batch_size, num_patches, 96, 64)` patches); or give `audio_embeds`.
            audio_attention_mask (`torch.Tensor`, *optional*): its mask (YAMNet's `patch_mask`).
            audio_embeds (`torch.FloatTensor` of shape `(batch_size, audio_length, encoder_hidden_size)`,
                *optional*): the frozen encoder's output, cached (`get_audio_hidden_states`).
            audio_embeds_mask (`torch.Tensor` of shape `(batch_size, audio_length)`, *optional*): its mask.
            pair_ids (`torch.LongTensor` of shape `(batch_size,)`, *optional*): pairs with the same id (e.g. the
                same caption) count as positives of each other in ALC and are never ALM negatives. Default: all
                distinct.

        Returns:
            [`MintForPreTrainingOutput`].
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        config = self.config
        if input_ids.ndim != 2 or input_ids.shape[1] == 0:
            raise ValueError(f"input_ids must have shape (batch_size, text_length >= 1), got {tuple(input_ids.shape)}")
        if input_ids.shape[1] > config.max_text_length:
            raise ValueError(f"input_ids hold {input_ids.shape[1]} tokens, more than config.max_text_length="
                             f"{config.max_text_length}: truncate the text (the processor does)")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        audio_embeds, audio_embeds_mask = self._audio_states(audio_values, audio_attention_mask, audio_embeds,
                                                             audio_embeds_mask)
        batch = input_ids.shape[0]
        if audio_embeds.shape[0] != batch:
            raise ValueError(f"{audio_embeds.shape[0]} audio clips but {batch} texts: stage 1 takes pairs")
        if pair_ids is None:
            pair_ids = torch.arange(batch, device=input_ids.device)

        query_pass = self._queries(audio_embeds, audio_embeds_mask, use_cache=config.use_atg)
        query_output = query_pass.last_hidden_state
        losses: dict[str, torch.Tensor] = {}
        similarity = alm_logits = atg_logits = None

        if config.use_alc:
            audio_features = F.normalize(self.audio_projection(query_output), dim=-1)  # (B, Q, D)
            text_output = self.qformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            text_features = F.normalize(self.text_projection(text_output[:, 0]), dim=-1)  # (B, D)
            all_audio, offset = _gather_with_grad(audio_features)
            all_text, _ = _gather_with_grad(text_features)
            all_ids, _ = _gather_with_grad(pair_ids)
            temperature = self.temperature.clamp(0.001, 0.5)
            similarity = self.similarity(audio_features, all_text) / temperature  # (B, B_all)
            text_to_audio = self.similarity(all_audio, text_features).T / temperature  # (B, B_all)
            positives = (pair_ids[:, None] == all_ids[None, :]).to(similarity.dtype)
            targets = positives / positives.sum(dim=1, keepdim=True)
            alc = -(targets * similarity.log_softmax(dim=1)).sum(1).mean()
            alc = (alc - (targets * text_to_audio.log_softmax(dim=1)).sum(1).mean()) / 2
            losses["alc_loss"] = alc

            if config.use_alm:
                local = slice(offset, offset + batch)
                alm_logits, alm_labels = self._alm_pairs(
                    audio_embeds, audio_embeds_mask, input_ids, attention_mask,
                    similarity[:, local].detach(), text_to_audio[:, local].detach(), positives[:, local].bool())
                if alm_labels is not None:
                    losses["alm_loss"] = F.cross_entropy(alm_logits, alm_labels)

        if config.use_atg:
            decoder_ids = input_ids.clone()
            decoder_ids[:, 0] = config.qformer_config.bos_token_id
            text = self.qformer(input_ids=decoder_ids, attention_mask=attention_mask, mask_kind="unilm",
                                query_key_values=query_pass.query_key_values).last_hidden_state
            atg_logits = self.lm_head(text)
            labels = decoder_ids.masked_fill(attention_mask == 0, -100)
            losses["atg_loss"] = F.cross_entropy(
                atg_logits[:, :-1].reshape(-1, atg_logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
                ignore_index=-100, label_smoothing=config.atg_label_smoothing)

        loss = sum(losses.values())
        output = MintForPreTrainingOutput(
            loss=loss, alc_loss=losses.get("alc_loss"), alm_loss=losses.get("alm_loss"),
            atg_loss=losses.get("atg_loss"), similarity=similarity, alm_logits=alm_logits, atg_logits=atg_logits,
            query_output=query_output,
        )
        return output if return_dict else output.to_tuple()

    def _alm_pairs(self, audio_embeds, audio_embeds_mask, input_ids, attention_mask, audio_to_text, text_to_audio,
                   positives):
        """Positive pairs + one hard-negative text per audio + one hard-negative audio per text."""
        batch = input_ids.shape[0]
        negative_ok = ~positives  # (B, B), symmetric within the local batch
        rows = negative_ok.any(dim=1)
        if not rows.any():
            if not getattr(self, "_warned_no_negative", False):
                logger.warning("ALM skipped: no item in the batch has a negative (batch of one, or all captions "
                               "equal); use larger batches")
                self._warned_no_negative = True
            return None, None

        def draw(similarity: torch.Tensor) -> torch.Tensor:
            weights = similarity.float().softmax(dim=1).masked_fill(~negative_ok, 0.0)[rows]
            weights = weights + negative_ok[rows].float() * 1e-12  # a row whose softmax underflowed still draws
            return torch.multinomial(weights, 1).squeeze(1)

        index = rows.nonzero().squeeze(1)
        negative_text = draw(audio_to_text)  # for audio i: a text j that is not its positive
        negative_audio = draw(text_to_audio)  # for text i: an audio j that is not its positive
        everyone = torch.arange(batch, device=index.device)
        audio_index = torch.cat([everyone, index, negative_audio])
        ids = torch.cat([input_ids, input_ids[negative_text], input_ids[index]])
        mask = torch.cat([attention_mask, attention_mask[negative_text], attention_mask[index]])
        logits = self._alm_logits(audio_embeds, audio_embeds_mask, ids, mask, audio_index)
        labels = torch.cat([torch.ones(batch, dtype=torch.long), torch.zeros(2 * len(index), dtype=torch.long)])
        return logits, labels.to(logits.device)


class MintForConditionalGeneration(MintPreTrainedModel, GenerationMixin):
    """MINT stage 2: instruction-aware Q-Former -> linear projection -> soft prompt of a frozen LLM.

    The instruction enters the Q-Former after the queries (bidirectional mask), the query outputs are projected to
    the LLM's width and put before the LLM's own input: decoder-only LLMs read [soft prompt; prompt; response];
    encoder-decoder LLMs (FlanT5) encode [soft prompt; prompt] and decode the response. The audio encoder and the
    LLM are frozen; the queries, the Q-Former and the projection train.

    Inference: `generate` (captions, instruction following), `score_candidates` (vocabulary ranking: audio and prompt
    encoded once, every candidate scored by its log-likelihood, in chunks).
    """

    _frozen_modules = ("audio_encoder", "language_model")
    hub_auto_class = "AutoModelForSpeechSeq2Seq"

    _hub_stage = {  # the card's stage-specific fields
        "stage": "stage 2", "pipeline_tag": "audio-text-to-text",
        "stage_description": "the stage-2 model: audio encoder, Q-Former, projection and the frozen LLM, "
                             "instruction-tuned; it captions, answers and ranks labels by their likelihood",
        "usage": ('inputs = processor(audio=["clip.wav"], text=["Generate audio caption:"])\n'
                  'tokens = model.generate(**inputs, max_new_tokens=32)\n'
                  'print(processor.batch_decode(tokens))'),
    }

    def _report_row(self) -> str:
        return "stage 1+2 (vocabulary ranking)"

    def __init__(self, config: MintConfig, language_model: PreTrainedModel | None = None):
        super().__init__(config)
        if config.text_config is None:
            raise ValueError("MintForConditionalGeneration needs config.text_config (the frozen LLM)")
        self._build_bridge(config)
        self.language_projection = nn.Linear(config.qformer_config.hidden_size, config.text_config.hidden_size)
        if language_model is None:  # from_pretrained fills it; from_stage1 passes the loaded LLM (no throwaway copy)
            auto = AutoModelForCausalLM if config.use_decoder_only_language_model else AutoModelForSeq2SeqLM
            language_model = auto.from_config(config.text_config)
        else:
            for module in language_model.modules():
                module._is_hf_initialized = True  # pretrained: post_init must not re-initialise it
        self.language_model = language_model
        self.language_model.requires_grad_(False).eval()
        self.post_init()

    @classmethod
    def from_stage1(
        cls, stage1: MintForPreTraining | str, language_model: PreTrainedModel | str, **kwargs: Any
    ) -> MintForConditionalGeneration:
        """Stage 2 from a stage-1 model (or its folder) and a pretrained LLM (model or folder / Hub id; `kwargs`
        go to its `from_pretrained`). Audio encoder, queries and Q-Former come from stage 1; the projection is new."""
        if isinstance(stage1, (str, bytes)) or hasattr(stage1, "__fspath__"):
            stage1 = MintForPreTraining.from_pretrained(stage1)
        if isinstance(language_model, PreTrainedModel):
            llm = language_model
        else:
            from transformers import AutoConfig

            llm_config = AutoConfig.from_pretrained(language_model)
            auto = AutoModelForSeq2SeqLM if llm_config.is_encoder_decoder else AutoModelForCausalLM
            llm = auto.from_pretrained(language_model, **kwargs)
        config = copy.deepcopy(stage1.config)
        config.text_config = llm.config
        config.architectures = None
        model = cls(config, language_model=llm)
        own = model.state_dict()
        with torch.no_grad():
            for name, tensor in stage1.state_dict().items():
                if name in own and name.split(".")[0] in ("audio_encoder", "query_tokens", "qformer"):
                    own[name].copy_(tensor)
        return model.to(llm.dtype) if llm.dtype != torch.float32 else model

    def get_input_embeddings(self) -> nn.Embedding:
        return self.language_model.get_input_embeddings()

    def _soft_prompt(self, audio_values, audio_attention_mask, audio_embeds, audio_embeds_mask, qformer_input_ids,
                     qformer_attention_mask) -> tuple[torch.Tensor, torch.Tensor]:
        audio_embeds, audio_embeds_mask = self._audio_states(audio_values, audio_attention_mask, audio_embeds,
                                                             audio_embeds_mask)
        if qformer_input_ids is not None and qformer_input_ids.shape[1] > self.config.max_text_length:
            raise ValueError(f"the instruction holds {qformer_input_ids.shape[1]} Q-Former tokens, more than "
                             f"config.max_text_length={self.config.max_text_length}")
        out = self._queries(audio_embeds, audio_embeds_mask, qformer_input_ids, qformer_attention_mask,
                            "bidirectional")
        query_output = out.last_hidden_state[:, : self.config.num_query_tokens]
        soft = self.language_projection(query_output).to(self.language_model.dtype)
        return query_output, soft

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        audio_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        audio_embeds: torch.Tensor | None = None,
        audio_embeds_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        return_dict: bool | None = None,
    ) -> MintForConditionalGenerationOutput | tuple:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, length)`): LLM tokens. Decoder-only: prompt and
                response (right-padded); encoder-decoder: the prompt.
            attention_mask (`torch.Tensor` of shape `(batch_size, length)`, *optional*).
            qformer_input_ids, qformer_attention_mask (`(batch_size, instruction_length)`, *optional*): the
                instruction in the Q-Former's tokenizer (at most `config.max_text_length` tokens).
            audio_values, audio_attention_mask, audio_embeds, audio_embeds_mask: the audio (see
                [`MintForPreTraining.forward`]).
            labels (`torch.LongTensor`, *optional*): decoder-only: `(batch_size, length)` aligned with `input_ids`,
                -100 off the response; encoder-decoder: the response tokens `(batch_size, response_length)`.

        Returns:
            [`MintForConditionalGenerationOutput`].
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        query_output, soft = self._soft_prompt(audio_values, audio_attention_mask, audio_embeds, audio_embeds_mask,
                                               qformer_input_ids, qformer_attention_mask)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs, mask = self._with_soft_prompt(soft, input_ids, attention_mask)
        if self.config.use_decoder_only_language_model:
            out = self.language_model(inputs_embeds=inputs, attention_mask=mask)
            logits = out.logits
            loss = None
            if labels is not None:
                full = torch.cat([labels.new_full(soft.shape[:2], -100), labels], dim=1)
                loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                       full[:, 1:].reshape(-1), ignore_index=-100)
        else:
            out = self.language_model(inputs_embeds=inputs, attention_mask=mask, labels=labels)
            logits, loss = out.logits, out.loss
        output = MintForConditionalGenerationOutput(loss=loss, logits=logits, query_output=query_output,
                                                    language_model_inputs=soft)
        return output if return_dict else output.to_tuple()

    def _with_soft_prompt(self, soft: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """The LLM's input embeddings [soft prompt; text] and their attention mask (the soft prompt is all real)."""
        text = self.language_model.get_input_embeddings()(input_ids)
        inputs = torch.cat([soft, text], dim=1)
        return inputs, torch.cat([attention_mask.new_ones(soft.shape[:2]), attention_mask], dim=1)

    def _prefix(self, soft: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """[soft prompt; prompt] with each row's padding moved to the left (so that the next token follows the
        prompt directly), and its attention mask."""
        inputs, mask = self._with_soft_prompt(soft, input_ids, attention_mask)
        order = torch.sort(mask, dim=1, stable=True).indices  # zeros (padding) first, order kept otherwise
        inputs = torch.gather(inputs, 1, order[..., None].expand_as(inputs))
        return inputs, torch.gather(mask, 1, order)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        audio_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        audio_embeds: torch.Tensor | None = None,
        audio_embeds_mask: torch.Tensor | None = None,
        **generate_kwargs: Any,
    ) -> torch.LongTensor:
        """Captions / answers: the LLM's `generate` on [soft prompt; prompt]. Returns the new tokens only
        `(batch_size, new_tokens)` (decode them with the processor's `batch_decode`)."""
        _, soft = self._soft_prompt(audio_values, audio_attention_mask, audio_embeds, audio_embeds_mask,
                                    qformer_input_ids, qformer_attention_mask)
        if input_ids is None:
            input_ids = torch.zeros(soft.shape[0], 0, dtype=torch.long, device=soft.device)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs, mask = self._prefix(soft, input_ids, attention_mask)
        generated = self.language_model.generate(inputs_embeds=inputs, attention_mask=mask, **generate_kwargs)
        # a decoder-only LLM given only embeddings returns the new tokens; an encoder-decoder one starts with
        # its decoder start token, which is not generated text
        return generated if self.config.use_decoder_only_language_model else generated[:, 1:]

    @torch.no_grad()
    def score_candidates(
        self,
        candidate_ids: Sequence[Sequence[int]],
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        audio_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        audio_embeds: torch.Tensor | None = None,
        audio_embeds_mask: torch.Tensor | None = None,
        chunk_size: int = 64,
        length_normalize: bool = False,
    ) -> torch.Tensor:
        """Vocabulary ranking: the log-likelihood of every candidate response for every clip.

        The audio, the Q-Former and the prompt run once per clip (decoder-only: the prompt's key/value cache;
        encoder-decoder: the encoder output); the candidates are then scored `chunk_size` at a time against that.

        Args:
            candidate_ids (`Sequence[Sequence[int]]`): each candidate's LLM tokens (the processor's
                `candidate_ids`: the response as in training, end-of-sequence included). Not empty.
            input_ids, attention_mask: the prompt in LLM tokens (batch_size, length); may be empty.
            qformer_input_ids, qformer_attention_mask, audio_*: as in `forward`.
            chunk_size (`int`, *optional*, defaults to 64): candidates per LLM call (per clip).
            length_normalize (`bool`, *optional*): mean instead of sum of the token log-probabilities.

        Returns:
            `torch.FloatTensor` of shape `(batch_size, num_candidates)`: log-likelihoods (higher is better); use the
            argmax for single-label and the scores themselves for multi-label ranking (mAP, ROC-AUC).
        """
        if not candidate_ids:
            raise ValueError("score_candidates needs at least one candidate (candidate_ids is empty)")
        if any(len(c) == 0 for c in candidate_ids):
            raise ValueError("every candidate needs at least one token; got an empty one")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        _, soft = self._soft_prompt(audio_values, audio_attention_mask, audio_embeds, audio_embeds_mask,
                                    qformer_input_ids, qformer_attention_mask)
        batch, device = soft.shape[0], soft.device
        if input_ids is None:
            input_ids = torch.zeros(batch, 0, dtype=torch.long, device=device)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs, mask = self._prefix(soft, input_ids, attention_mask)
        llm = self.language_model
        scores = torch.empty(batch, len(candidate_ids), device=device)
        if self.config.use_decoder_only_language_model:
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
            prefix = llm(inputs_embeds=inputs, attention_mask=mask, position_ids=positions, use_cache=True)
            first_log_probs = prefix.logits[:, -1].float().log_softmax(-1)  # predicts each candidate's 1st token
            next_position = positions[:, -1] + 1
        else:
            encoder_outputs = llm.get_encoder()(inputs_embeds=inputs, attention_mask=mask)
        for start in range(0, len(candidate_ids), chunk_size):
            chunk = candidate_ids[start: start + chunk_size]
            k, longest = len(chunk), max(len(c) for c in chunk)
            ids = torch.full((k, longest), 0, dtype=torch.long, device=device)
            real = torch.zeros(k, longest, dtype=torch.bool, device=device)
            for row, candidate in enumerate(chunk):
                ids[row, : len(candidate)] = torch.as_tensor(list(candidate), device=device)
                real[row, : len(candidate)] = True
            ids_bk, real_bk = ids.repeat(batch, 1), real.repeat(batch, 1)  # (batch * k, longest), clip-major
            if self.config.use_decoder_only_language_model:
                cache = copy.deepcopy(prefix.cache)
                cache.batch_repeat_interleave(k)
                full_mask = torch.cat([mask.repeat_interleave(k, 0), real_bk.to(mask.dtype)], dim=1)
                steps = next_position.repeat_interleave(k)[:, None] + torch.arange(longest, device=device)
                logits = llm(input_ids=ids_bk, attention_mask=full_mask, position_ids=steps,
                             cache=cache, use_cache=True).logits.float()
                log_probs = torch.cat([first_log_probs.repeat_interleave(k, 0)[:, None],
                                       logits[:, :-1].log_softmax(-1)], dim=1)
            else:
                expanded = encoder_outputs.last_hidden_state.repeat_interleave(k, 0)
                decoder_input = llm._shift_right(ids_bk.masked_fill(~real_bk, llm.config.pad_token_id))
                logits = llm(encoder_outputs=(expanded,), attention_mask=mask.repeat_interleave(k, 0),
                             decoder_input_ids=decoder_input).logits.float()
                log_probs = logits.log_softmax(-1)
            token = log_probs.gather(-1, ids_bk[..., None]).squeeze(-1) * real_bk
            total = token.sum(-1)
            if length_normalize:
                total = total / real_bk.sum(-1)
            scores[:, start: start + k] = total.view(batch, k)
        return scores


def load_bert_into_qformer(
    qformer: MintQFormerModel, bert: PreTrainedModel | dict[str, torch.Tensor], lm_head: MintQFormerLMHead | None = None
) -> dict[str, list[str]]:
    """Copy a BERT checkpoint into the Q-Former (BLIP-2's initialisation): embeddings, self-attention and feed-forward
    of every layer; each layer's query feed-forward starts as a copy of its text feed-forward; cross-attention stays
    fresh. BERT's token-type-0 embedding is added to the position embeddings (the Q-Former has no token types; text
    then embeds exactly as in BERT). Extra vocabulary rows (`[DEC]`) keep their init. With `lm_head`, BERT's MLM
    transform is copied too when the checkpoint has one.

    Args:
        qformer: the Q-Former to fill (as many or fewer layers than BERT: the first ones are used).
        bert: a `BertModel` / `BertForPreTraining` (or any BERT-layout model) or its state dict.

    Returns:
        `dict` with `"copied"` (Q-Former parameter names filled) and `"fresh"` (the ones left as initialised).
    """
    state = bert.state_dict() if isinstance(bert, nn.Module) else dict(bert)
    state = {name.removeprefix("bert."): tensor for name, tensor in state.items()}
    config = qformer.config
    bert_layers = {int(name.split(".")[2]) for name in state if name.startswith("encoder.layer.")}
    if not bert_layers:
        raise ValueError("the BERT state dict has no encoder.layer.* weights")
    if config.num_hidden_layers > len(bert_layers):
        raise ValueError(f"the Q-Former has {config.num_hidden_layers} layers but BERT only {len(bert_layers)}")
    width = state["embeddings.word_embeddings.weight"].shape[1]
    if width != config.hidden_size:
        raise ValueError(f"BERT's hidden size is {width} but the Q-Former's is {config.hidden_size}")

    mapping: dict[str, torch.Tensor] = {}
    words = state["embeddings.word_embeddings.weight"]
    if words.shape[0] > config.vocab_size:
        raise ValueError(f"BERT's vocabulary ({words.shape[0]}) is larger than the Q-Former's ({config.vocab_size})")
    positions = state["embeddings.position_embeddings.weight"].clone()
    if "embeddings.token_type_embeddings.weight" in state:
        positions += state["embeddings.token_type_embeddings.weight"][0]
    mapping["embeddings.position_embeddings.weight"] = positions[: config.max_position_embeddings]
    mapping["embeddings.layernorm.weight"] = state["embeddings.LayerNorm.weight"]
    mapping["embeddings.layernorm.bias"] = state["embeddings.LayerNorm.bias"]
    for index in range(config.num_hidden_layers):
        source, target = f"encoder.layer.{index}.", f"encoder.layer.{index}."
        for part in ("query", "key", "value"):
            for kind in ("weight", "bias"):
                mapping[f"{target}attention.attention.{part}.{kind}"] = state[f"{source}attention.self.{part}.{kind}"]
        for kind in ("weight", "bias"):
            mapping[f"{target}attention.output.dense.{kind}"] = state[f"{source}attention.output.dense.{kind}"]
            mapping[f"{target}attention.output.LayerNorm.{kind}"] = state[f"{source}attention.output.LayerNorm.{kind}"]
            for suffix in ("", "_query"):
                mapping[f"{target}intermediate{suffix}.dense.{kind}"] = state[f"{source}intermediate.dense.{kind}"]
                mapping[f"{target}output{suffix}.dense.{kind}"] = state[f"{source}output.dense.{kind}"]
                mapping[f"{target}output{suffix}.LayerNorm.{kind}"] = state[f"{source}output.LayerNorm.{kind}"]
    own = qformer.state_dict()
    with torch.no_grad():
        for name, tensor in mapping.items():
            if own[name].shape != tensor.shape:
                raise ValueError(f"{name}: BERT gives shape {tuple(tensor.shape)}, the Q-Former has "
                                 f"{tuple(own[name].shape)}")
            own[name].copy_(tensor)
        own["embeddings.word_embeddings.weight"][: words.shape[0]].copy_(words)
        copied = [*mapping, "embeddings.word_embeddings.weight"]
        if lm_head is not None and "cls.predictions.transform.dense.weight" in state:
            head = {"dense.weight": "transform.dense.weight", "dense.bias": "transform.dense.bias",
                    "LayerNorm.weight": "transform.LayerNorm.weight", "LayerNorm.bias": "transform.LayerNorm.bias"}
            head_state = lm_head.state_dict()
            for ours, theirs in head.items():
                head_state[ours].copy_(state[f"cls.predictions.{theirs}"])
            bias = state["cls.predictions.bias"]
            head_state["bias"][: bias.shape[0]].copy_(bias)
            copied += [f"lm_head.{name}" for name in (*head, "bias")]
    fresh = [name for name in own if name not in mapping and name != "embeddings.word_embeddings.weight"
             and not name.startswith("embeddings.position_ids")]
    return {"copied": copied, "fresh": fresh}


def build_mint_for_pretraining(
    audio_encoder: PreTrainedModel,
    bert: PreTrainedModel | None = None,
    qformer_config: MintQFormerConfig | dict | None = None,
    **config_kwargs: Any,
) -> MintForPreTraining:
    """A stage-1 model around a pretrained audio encoder, its Q-Former initialised from `bert` (paper: BERT-base;
    here all-MiniLM-L6-v2 works) with one `[DEC]` row added, or from `qformer_config` when no BERT is given.

    Args:
        audio_encoder: the frozen encoder (e.g. `load_pretrained_yamnet()[0]`, `Data2VecAudioModel`).
        bert: a BERT model whose config gives the Q-Former's sizes (`num_hidden_layers` may be lowered in
            `qformer_config`) and whose weights fill it.
        qformer_config: overrides of the Q-Former's config.
        config_kwargs: `MintConfig` arguments (`num_query_tokens`, `embed_dim`, `use_alc`, ...).
    """
    from .configuration_mint import audio_hidden_size

    known = set(inspect.signature(MintQFormerConfig.__init__).parameters) - {"self", "kwargs"}
    if isinstance(qformer_config, PretrainedConfig):
        overrides = {k: v for k, v in qformer_config.to_dict().items() if k in known}
    else:
        overrides = dict(qformer_config or {})
    if bert is not None:
        bert_config = bert.config
        sizes = {name: getattr(bert_config, name) for name in (
            "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
            "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "layer_norm_eps",
            "pad_token_id")}
        sizes["vocab_size"] = bert_config.vocab_size + 1
        sizes["bos_token_id"] = bert_config.vocab_size  # [DEC], appended after BERT's vocabulary
        overrides = {**sizes, **overrides}
    overrides["encoder_hidden_size"] = audio_hidden_size(audio_encoder.config)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"qformer_config: unknown key(s) {unknown}; known: {sorted(known)}")
    config = MintConfig(audio_config=audio_encoder.config, qformer_config=MintQFormerConfig(**overrides),
                        **config_kwargs)
    model = MintForPreTraining(config)
    model.audio_encoder.load_state_dict(audio_encoder.state_dict())
    if bert is not None:
        load_bert_into_qformer(model.qformer, bert, model.lm_head)
    return model


__all__ = [
    "MASK_KINDS",
    "MintForConditionalGeneration",
    "MintForConditionalGenerationOutput",
    "MintForPreTraining",
    "MintForPreTrainingOutput",
    "MintPreTrainedModel",
    "MintQFormerLMHead",
    "MintQFormerModel",
    "MintQFormerOutput",
    "MintQFormerPreTrainedModel",
    "build_mint_for_pretraining",
    "encode_audio",
    "encode_audio_rows",
    "load_bert_into_qformer",
    "mint_attention_mask",
]
