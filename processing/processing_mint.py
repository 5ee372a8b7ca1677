# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""MINT processor: the audio encoder's feature extractor, the Q-Former's tokenizer and the LLM's tokenizer.

* **Audio.** Whatever the feature extractor returns is renamed to the model's two audio arguments:
  `audio_values` (its main input: YAMNet's log-mel patches, a waveform for data2vec or the MSN tokenizer) and
  `audio_attention_mask` (its mask: `patch_mask`, `attention_mask` or `padding_mask`).
* **Q-Former text.** Captions (stage 1) and instructions (stage 2) in the Q-Former's BERT tokenizer, `[CLS]` first,
  at most `max_text_length` tokens (the paper keeps text to at most 30 tokens; `[CLS]` and `[SEP]` make 32). Longer
  captions are cut (with a logged count); a longer instruction is refused, since cutting it would drop the question.
  The tokenizer gets `[DEC]`, the token that starts ATG, as its `bos_token`, idempotently.
* **LLM text.** Decoder-only LLMs read the instruction as the prompt (with the tokenizer's own special tokens) and
  then the response as `" " + response` plus the end-of-sequence token (labels -100 on the prompt); encoder-decoder
  LLMs (FlanT5) encode the prompt and decode the response. `candidate_ids` spells candidates exactly as responses,
  so that vocabulary ranking scores what training taught.

A stage-1 model has no LLM: its processor passes the Q-Former tokenizer as `tokenizer` too (transformers'
`ProcessorMixin` requires every declared part); `is_stage1` tells the two apart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

DEC_TOKEN = "[DEC]"


class MintProcessor(ProcessorMixin):
    r"""
    Constructs a MINT processor.

    Args:
        feature_extractor: the audio encoder's feature extractor (e.g. [`YamnetFeatureExtractor`]).
        qformer_tokenizer: the Q-Former's BERT tokenizer; `[DEC]` is added as its `bos_token` if missing.
        tokenizer: the frozen LLM's tokenizer (stage 2), or the Q-Former tokenizer again (stage 1).
        max_text_length (`int`, *optional*, defaults to 32): Q-Former tokens per text, `[CLS]`/`[SEP]` included.
        decoder_only (`bool`, *optional*, defaults to `True`): the LLM is a causal LM (False: encoder-decoder).

    Example:

    ```python
    >>> processor = MintProcessor(YamnetFeatureExtractor(), bert_tokenizer, llm_tokenizer)
    >>> batch = processor(audio=[clip_a, clip_b], sampling_rate=16000, text=["This is a sound of"] * 2,
    ...                   response=["dog bark", "rain"])   # everything MintForConditionalGeneration.forward takes
    ```
    """

    def __init__(self, feature_extractor, qformer_tokenizer, tokenizer, max_text_length: int = 32,
                 decoder_only: bool = True):
        for name, value in (("qformer_tokenizer", qformer_tokenizer), ("tokenizer", tokenizer)):
            if not isinstance(value, PreTrainedTokenizerBase):
                raise TypeError(f"{name} must be a transformers tokenizer, got {type(value).__name__}")
        if not isinstance(max_text_length, int) or max_text_length < 2:
            raise ValueError(f"max_text_length must be an int >= 2 ([CLS] and [SEP]), got {max_text_length!r}")
        if qformer_tokenizer.bos_token != DEC_TOKEN:
            qformer_tokenizer.add_special_tokens({"bos_token": DEC_TOKEN})
        self.max_text_length = max_text_length
        self.decoder_only = bool(decoder_only)
        super().__init__(feature_extractor, qformer_tokenizer, tokenizer)
        names = list(feature_extractor.model_input_names)
        self._audio_keys = (names[0], names[1] if len(names) > 1 else None)
        self._truncated_warned = False
        # the same object when built, two equal copies after save/load
        self._is_stage1 = tokenizer is qformer_tokenizer or (
            type(tokenizer) is type(qformer_tokenizer) and tokenizer.get_vocab() == qformer_tokenizer.get_vocab())

    @property
    def is_stage1(self) -> bool:
        """True when there is no LLM tokenizer (it is the Q-Former's)."""
        return self._is_stage1

    @property
    def dec_token_id(self) -> int:
        """Id of `[DEC]` in the Q-Former tokenizer (the Q-Former config's `bos_token_id`)."""
        return self.qformer_tokenizer.convert_tokens_to_ids(DEC_TOKEN)

    # ----- audio ----------------------------------------------------------------------------------------
    def audio_inputs(self, audio: Any, sampling_rate: int | None = None) -> dict[str, torch.Tensor]:
        """Audio (arrays, tensors, paths, `{"array", "sampling_rate"}` dicts; one or a list) -> `audio_values`
        and `audio_attention_mask` for the model."""
        features = self.feature_extractor(audio, sampling_rate=sampling_rate, return_tensors="pt")
        main, mask = self._audio_keys
        out = {"audio_values": features[main]}
        if mask is not None and mask in features:
            out["audio_attention_mask"] = features[mask]
        return out

    # ----- Q-Former text --------------------------------------------------------------------------------
    def qformer_text(self, texts: str | Sequence[str], truncate: bool = True) -> dict[str, torch.Tensor]:
        """Captions or instructions in the Q-Former's tokenizer, right-padded: `input_ids` and `attention_mask`,
        `(batch, length)`. Longer than `max_text_length` tokens: cut (captions, `truncate=True`, logged once) or
        refused (`truncate=False`: instructions, whose end carries the question)."""
        texts = _texts(texts, "texts")
        full = self.qformer_tokenizer(texts, add_special_tokens=True)["input_ids"]
        too_long = [index for index, ids in enumerate(full) if len(ids) > self.max_text_length]
        if too_long and not truncate:
            index = too_long[0]
            raise ValueError(f"instruction {index} ({texts[index]!r:.80}) is {len(full[index])} Q-Former tokens long, "
                             f"more than max_text_length={self.max_text_length}; shorten it")
        cut = len(too_long)
        if cut and not self._truncated_warned:
            logger.info("%d of %d texts are longer than max_text_length=%d Q-Former tokens and were cut (the paper "
                        "keeps text to at most 30 tokens)", cut, len(texts), self.max_text_length)
            self._truncated_warned = True
        encoded = self.qformer_tokenizer(texts, padding="longest", truncation=True, max_length=self.max_text_length,
                                         return_tensors="pt", return_token_type_ids=False)
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    # ----- LLM text -------------------------------------------------------------------------------------
    def _require_llm(self) -> None:
        if self.is_stage1:
            raise ValueError("this is a stage-1 MintProcessor (no LLM tokenizer): build it with the LLM's tokenizer")

    def response_ids(self, response: str) -> list[int]:
        """A response (or ranking candidate) as the LLM is trained to produce it, end-of-sequence included."""
        self._require_llm()
        if not isinstance(response, str) or not response.strip():
            raise ValueError(f"a response must be a non-empty str, got {response!r}")
        if self.decoder_only:
            ids = self.tokenizer(" " + response.strip(), add_special_tokens=False)["input_ids"]
            eos = self.tokenizer.eos_token_id
            return ids + ([eos] if eos is not None else [])
        ids = self.tokenizer(response.strip(), add_special_tokens=True)["input_ids"]
        eos = self.tokenizer.eos_token_id
        return ids + [eos] if eos is not None and (not ids or ids[-1] != eos) else ids

    def candidate_ids(self, candidates: Sequence[str]) -> list[list[int]]:
        """Token ids of each candidate label, spelled as a response (for `score_candidates`)."""
        candidates = list(candidates) if not isinstance(candidates, str) else [candidates]
        if not candidates:
            raise ValueError("candidates is empty: give at least one candidate label")
        return [self.response_ids(candidate) for candidate in candidates]

    def prompt_ids(self, instruction: str) -> list[int]:
        """The instruction as the LLM's prompt tokens."""
        self._require_llm()
        return self.tokenizer(instruction, add_special_tokens=True)["input_ids"]

    @staticmethod
    def _pad(rows: Sequence[Sequence[int]], value: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Token rows padded with `value` on `side` to the longest, and the attention mask (1 on real tokens)."""
        longest = max(len(row) for row in rows)
        out = torch.full((len(rows), longest), value, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for index, row in enumerate(rows):
            if row:
                span = slice(longest - len(row), longest) if side == "left" else slice(0, len(row))
                out[index, span] = torch.as_tensor(row)
                mask[index, span] = 1
        return out, mask

    def llm_text(self, instructions: str | Sequence[str], responses: str | Sequence[str] | None = None,
                 padding_side: str | None = None) -> dict[str, torch.Tensor]:
        """LLM tokens for instructions (and responses, for training).

        Returns: decoder-only: `input_ids`/`attention_mask` of prompt + response and `labels` (-100 off the
        response), right-padded; without responses, the prompts left-padded (for `generate`/`score_candidates`).
        Encoder-decoder: the prompts as `input_ids`/`attention_mask` and the responses as `labels` (pad = -100).
        """
        self._require_llm()
        instructions = _texts(instructions, "instructions")
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        prompts = [self.prompt_ids(text) for text in instructions]
        if responses is None:
            ids, mask = self._pad(prompts, pad, padding_side or ("left" if self.decoder_only else "right"))
            return {"input_ids": ids, "attention_mask": mask}
        responses = _texts(responses, "responses")
        if len(responses) != len(instructions):
            raise ValueError(f"{len(instructions)} instructions but {len(responses)} responses")
        targets = [self.response_ids(text) for text in responses]
        if self.decoder_only:
            side = padding_side or "right"
            ids, mask = self._pad([p + t for p, t in zip(prompts, targets)], pad, side)
            labels, _ = self._pad([[-100] * len(p) + t for p, t in zip(prompts, targets)], -100, side)
            return {"input_ids": ids, "attention_mask": mask, "labels": labels}
        ids, mask = self._pad(prompts, pad, "right")
        return {"input_ids": ids, "attention_mask": mask, "labels": self._pad(targets, -100, "right")[0]}

    # ----- everything at once ---------------------------------------------------------------------------
    def __call__(self, audio: Any = None, text: str | Sequence[str] | None = None,
                 response: str | Sequence[str] | None = None, sampling_rate: int | None = None,
                 padding_side: str | None = None, **kwargs: Any) -> BatchFeature:
        """Model inputs. Stage 1: `audio` and captions (`text`) -> `audio_values`, `audio_attention_mask`,
        `input_ids`, `attention_mask`. Stage 2: `audio`, instructions (`text`) and optionally `response` -> also
        `qformer_input_ids`, `qformer_attention_mask` (and `labels` with responses)."""
        if kwargs:
            raise TypeError(f"MintProcessor got unexpected argument(s) {sorted(kwargs)}")
        if audio is None and text is None:
            raise ValueError("MintProcessor needs audio, text or both")
        data: dict[str, torch.Tensor] = {}
        if audio is not None:
            data.update(self.audio_inputs(audio, sampling_rate))
        if text is not None:
            qformer = self.qformer_text(text, truncate=self.is_stage1)
            if self.is_stage1:
                if response is not None:
                    raise ValueError("a stage-1 processor takes captions as text, no response")
                data.update(qformer)
            else:
                data["qformer_input_ids"] = qformer["input_ids"]
                data["qformer_attention_mask"] = qformer["attention_mask"]
                data.update(self.llm_text(text, response, padding_side))
        return BatchFeature(data)

    def batch_decode(self, token_ids: torch.Tensor | Sequence[Sequence[int]], **kwargs: Any) -> list[str]:
        """Generated LLM tokens -> stripped text (special tokens skipped)."""
        kwargs.setdefault("skip_special_tokens", True)
        return [text.strip() for text in self.tokenizer.batch_decode(token_ids, **kwargs)]


def pad_audio_embeds(embeds: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached encoder outputs, one `(length, hidden)` array per clip -> `audio_embeds` `(batch, longest, hidden)`
    float32 and `audio_embeds_mask` `(batch, longest)` bool, for the model's `audio_embeds` arguments."""
    arrays = [np.asarray(embed, dtype=np.float32) for embed in embeds]
    arrays = [array if array.ndim == 2 else np.stack(list(array)) for array in arrays]  # Arrow's nested lists
    if not arrays:
        raise ValueError("pad_audio_embeds needs at least one clip")
    longest = max(array.shape[0] for array in arrays)
    out = torch.zeros(len(arrays), longest, arrays[0].shape[1])
    mask = torch.zeros(len(arrays), longest, dtype=torch.bool)
    for index, array in enumerate(arrays):
        out[index, : array.shape[0]] = torch.from_numpy(array)
        mask[index, : array.shape[0]] = True
    return out, mask


def _texts(value: str | Sequence[str], name: str) -> list[str]:
    texts = [value] if isinstance(value, str) else list(value)
    if not texts:
        raise ValueError(f"{name} is empty")
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name}[{index}] must be a non-empty str, got {text!r}")
    return texts


__all__ = ["DEC_TOKEN", "MintProcessor", "pad_audio_embeds"]
