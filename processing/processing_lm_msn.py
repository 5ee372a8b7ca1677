# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""`AudioTokenProcessor`: a causal-LM text tokenizer that also reads and writes sound-tokenizer codes.

* **Vocabulary.** `<soa>`, `<eoa>` and `<a_0>` ... `<a_{codebook_size-1}>` (the spelling of
  `processing/audio_tokens.py`) are added once, as special tokens, in one contiguous id block: code `c` is id
  `audio_token_offset + c`. Adding is idempotent: a tokenizer that already carries the block (a saved
  processor) is checked, not extended. The codebook size comes from the caller (an int, the sound tokenizer's
  config or model, or its folder) or from the tokens already in the tokenizer, never from a default; if both
  are given they must agree.
* **Segments to ids.** A `TaskExample` is tokenised segment by segment kind: audio segments map straight to
  ids; runs of adjacent `"text"` segments are tokenised as one string with *every* special token split into
  plain text (`split_special_tokens=True`), so a caption reading `"<soa><a_12></s>"` stays text (the injection
  case); `"control"` segments (chat-template scaffolding) are tokenised with special tokens recognised; `"eos"`
  is the tokenizer's `eos_token_id`. A run of text is tokenised in one piece, and a token is a loss target when
  its characters overlap a target segment (offset mapping), so the ids are those of the joined string, as at
  inference.
* **Labels and weights.** `labels` is `input_ids` on target tokens and -100 elsewhere (transformers shifts them
  inside the model). `loss_weights` is 0 off target, `audio_loss_weight` (10, the paper's) on the codes and the
  `<eoa>` of a target audio span (the audio itself and its length), and 1 on every other target token, `<soa>`
  included. `<soa>` is the choice to answer with audio rather than text; weighted 10x it taught every assistant
  turn to open with audio (measured in the demo: after 35 stage-2 steps each captioning answer began with
  `<soa>`), so it weighs as text does.
* **Chat templates.** A tokenizer without a chat template gets Vicuna v1.1's (the paper's base model), so
  `tokenizer.apply_chat_template` renders exactly `vicuna_v11_prompt`. A tokenizer with its own template
  (SmolLM2's ChatML) keeps it; `chat_segments` renders user and assistant segments through whichever template
  the tokenizer has, and `lm_msn_task_dataset(..., chat_template=processor.chat_segments)` builds stage-2 data
  with it.
* **Padding.** Right padding for training, left padding for generation (`padding_side`). The pad id is the
  tokenizer's pad token, else its eos token (masked out by `attention_mask` either way).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import BatchEncoding, PreTrainedTokenizerBase, ProcessorMixin

from .audio_tokens import EOA_TOKEN, SOA_TOKEN, audio_token_code, audio_vocabulary
from .tasks.examples import Segment, TaskExample, control_segment
from .tasks.lm_msn import VICUNA_V11_SYSTEM, check_lm_msn_prompts, load_lm_msn_prompts

__all__ = ["VICUNA_V11_CHAT_TEMPLATE", "AudioTextOutput", "AudioTokenProcessor"]

# FastChat "vicuna_v1.1": sep " " after the system prompt and each user turn, sep2 "</s>" (eos) after each
# assistant turn, generation prompt "ASSISTANT:" without a trailing space.
VICUNA_V11_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' -%}{%- set system = messages[0]['content'] -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set system = \"" + VICUNA_V11_SYSTEM + "\" -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{{ system + ' ' }}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' -%}{{ 'USER: ' + message['content'] + ' ' }}"
    "{%- elif message['role'] == 'assistant' -%}{{ 'ASSISTANT: ' + message['content'] + eos_token }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"
)

# Placeholders for the chat-template split: characters no tokenizer template emits on its own.
_USER_MARK = "\ue000soundlm-user\ue000"
_ASSISTANT_MARK = "\ue000soundlm-assistant\ue000"


@dataclass
class AudioTextOutput:
    """Generated ids read back: the text and the audio spans.

    Args:
        text (`str`): the text tokens decoded (special tokens skipped); each audio span is left out.
        audio_codes (`list[list[int]]`): one code sequence per audio span, in order. A span still open at the end
            (no `<eoa>`) is kept; see `complete`.
        complete (`list[bool]`): per span, whether it was closed by `<eoa>`.
    """

    text: str
    audio_codes: list[list[int]] = field(default_factory=list)
    complete: list[bool] = field(default_factory=list)


def _resolve_codebook_size(value: Any) -> int:
    """An int from an int, an object with `codebook_size` (config or model), or a folder with a config."""
    if isinstance(value, (str, os.PathLike)):
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(value)
        if not hasattr(config, "codebook_size"):
            raise ValueError(f"codebook_size: the config in {os.fspath(value)!r} has no `codebook_size` "
                             f"(model_type {getattr(config, 'model_type', None)!r}); pass the sound tokenizer's.")
        value = config.codebook_size
    elif not isinstance(value, numbers.Integral) and hasattr(value, "codebook_size"):
        value = value.codebook_size
    elif not isinstance(value, numbers.Integral) and hasattr(value, "config"):
        value = getattr(value.config, "codebook_size", value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"codebook_size must be a positive int (or a sound tokenizer, its config or folder), "
                         f"got {value!r}.")
    return int(value)


class AudioTokenProcessor(ProcessorMixin):
    """Text tokenizer + audio tokens for the LM-MSN audio LLM.

    Args:
        tokenizer (`PreTrainedTokenizerBase`): the causal LM's tokenizer (paper: Vicuna-7B v1.5's). It is
            extended in place with the audio tokens unless it already has them.
        codebook_size (`int`, sound tokenizer, its config or folder, *optional*): the sound tokenizer's codebook
            size; read from the tokenizer's audio tokens when omitted.
        audio_loss_weight (`float`, *optional*, defaults to 10.0): loss weight of target audio tokens (the
            paper's 10x); other target tokens weigh 1.
        prompts (`dict[str, list[str]]`, *optional*): the stage-2 prompt phrasings per task (`"captioning"`,
            `"classification"`, `"text_to_audio"`) that the pipelines default to (the first of each); None reads
            the shipped `lm_msn_prompts.json` when asked. Saved with the processor: an exported folder carries them,
            because its remote code cannot read the package's JSON.

    Example:

    ```python
    >>> processor = AudioTokenProcessor(AutoTokenizer.from_pretrained(llm_path), codebook_size=tokenizer_path)
    >>> batch = processor([example_1, example_2])  # input_ids, attention_mask, labels, loss_weights
    >>> processor.decode(generated_ids).audio_codes  # one list of codes per audio span
    ```
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, codebook_size: Any = None,
                 audio_loss_weight: float = 10.0, prompts: Mapping[str, Sequence[str]] | None = None):
        if not isinstance(tokenizer, PreTrainedTokenizerBase):
            raise TypeError(f"tokenizer must be a transformers PreTrainedTokenizerBase, got "
                            f"{type(tokenizer).__name__}.")
        if isinstance(audio_loss_weight, bool) or not isinstance(audio_loss_weight, numbers.Real) \
                or not audio_loss_weight > 0:
            raise ValueError(f"audio_loss_weight must be a positive number, got {audio_loss_weight!r}.")
        self.codebook_size = self._add_audio_tokens(tokenizer, codebook_size)
        self.audio_loss_weight = float(audio_loss_weight)
        self.prompts = None if prompts is None else check_lm_msn_prompts(prompts, complete=True)
        if tokenizer.chat_template is None:
            tokenizer.chat_template = VICUNA_V11_CHAT_TEMPLATE
        super().__init__(tokenizer)
        self.chat_template = None  # the tokenizer carries the template; one copy on disk, not two
        self.soa_token_id = tokenizer.convert_tokens_to_ids(SOA_TOKEN)
        self.eoa_token_id = tokenizer.convert_tokens_to_ids(EOA_TOKEN)
        self.audio_token_offset = tokenizer.convert_tokens_to_ids("<a_0>")
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._bos_prefix: list[int] | None = None

    # ------------------------------------------------------------------ vocabulary

    @staticmethod
    def _add_audio_tokens(tokenizer: PreTrainedTokenizerBase, codebook_size: Any) -> int:
        vocab = tokenizer.get_vocab()
        present = sorted(code for token in vocab if (code := audio_token_code(token)) is not None)
        requested = None if codebook_size is None else _resolve_codebook_size(codebook_size)
        if present:
            found = len(present)
            if present != list(range(found)) or SOA_TOKEN not in vocab or EOA_TOKEN not in vocab:
                raise ValueError(
                    f"The tokenizer carries a partial audio vocabulary ({found} `<a_N>` tokens, codes "
                    f"{present[0]}..{present[-1]}, soa {'present' if SOA_TOKEN in vocab else 'missing'}, "
                    f"eoa {'present' if EOA_TOKEN in vocab else 'missing'}); expected <soa>, <eoa> and <a_0>.."
                    f"<a_{found - 1}> from one AudioTokenProcessor."
                )
            if requested is not None and requested != found:
                raise ValueError(f"The tokenizer's audio tokens cover a codebook of {found} codes but codebook_size "
                                 f"is {requested}: the LLM and the sound tokenizer disagree.")
            size = found
        else:
            if requested is None:
                raise ValueError("codebook_size is required for a tokenizer without audio tokens: pass the sound "
                                 "tokenizer's (an int, MSNTokenizerConfig, MSNTokenizerModel or its folder).")
            size = requested
            tokenizer.add_tokens(audio_vocabulary(size), special_tokens=True)
        ids = tokenizer.convert_tokens_to_ids(audio_vocabulary(size))
        if ids != list(range(ids[0], ids[0] + size + 2)):
            raise ValueError("The audio tokens <soa>, <eoa>, <a_0>..<a_N> do not have contiguous ids in this "
                             "tokenizer; build the processor from the LLM's own tokenizer before adding other tokens "
                             "in between.")
        return size

    @property
    def stage2_prompts(self) -> dict[str, list[str]]:
        """The stage-2 prompt phrasings per task: the processor's own, else the shipped `lm_msn_prompts.json`."""
        return self.prompts if self.prompts is not None else load_lm_msn_prompts()

    @property
    def vocab_size(self) -> int:
        """Number of ids the LLM's embedding matrices must hold (text + audio tokens)."""
        return len(self.tokenizer)

    @property
    def audio_token_ids(self) -> list[int]:
        """Ids of `<soa>`, `<eoa>` and every `<a_N>`: the rows the audio LLM adds and trains."""
        return [self.soa_token_id, self.eoa_token_id,
                *range(self.audio_token_offset, self.audio_token_offset + self.codebook_size)]

    @property
    def audio_id_range(self) -> tuple[int, int]:
        """`[first, end)` of the audio token ids (`<soa>`, `<eoa>`, `<a_0>` ... are one contiguous block)."""
        return min(self.soa_token_id, self.eoa_token_id), self.audio_token_offset + self.codebook_size

    def codes_to_ids(self, codes: Iterable[int]) -> list[int]:
        """Token ids of codes `(num_frames,)`; refuses codes outside the codebook, naming both numbers."""
        if hasattr(codes, "tolist"):
            codes = codes.tolist()
        ids = []
        for index, code in enumerate(codes):
            if isinstance(code, bool) or not isinstance(code, numbers.Integral):
                raise TypeError(f"codes[{index}] must be an int, got {type(code).__name__}: {code!r}.")
            if not 0 <= code < self.codebook_size:
                raise ValueError(f"codes[{index}] = {int(code)} is outside the codebook of {self.codebook_size} "
                                 f"codes (0..{self.codebook_size - 1}).")
            ids.append(self.audio_token_offset + int(code))
        return ids

    def is_audio_code_id(self, token_id: int) -> bool:
        return self.audio_token_offset <= token_id < self.audio_token_offset + self.codebook_size

    # ------------------------------------------------------------------ examples -> ids

    def _bos(self) -> list[int]:
        """The ids the tokenizer itself puts before a text (Llama: `<s>`; SmolLM2: none)."""
        if self._bos_prefix is None:
            with_special = self.tokenizer("a", add_special_tokens=True)["input_ids"]
            plain = self.tokenizer("a", add_special_tokens=False)["input_ids"]
            prefix = with_special[: len(with_special) - len(plain)] if with_special[-len(plain):] == plain else []
            self._bos_prefix = [i for i in prefix if i == self.tokenizer.bos_token_id]
        return self._bos_prefix

    def _encode_text_run(self, segments: Sequence[Segment], split_special: bool) -> tuple[list[int], list[bool]]:
        text = "".join(s.text for s in segments)
        bounds, start = [], 0
        for s in segments:
            bounds.append((start, start + len(s.text), s.is_target))
            start += len(s.text)
        if all(s.is_target == segments[0].is_target for s in segments):
            ids = self.tokenizer(text, add_special_tokens=False, split_special_tokens=split_special)["input_ids"]
            return ids, [segments[0].is_target] * len(ids)
        encoded = self.tokenizer(text, add_special_tokens=False, split_special_tokens=split_special,
                                 return_offsets_mapping=True)
        targets = []
        for begin, end in encoded["offset_mapping"]:
            end = max(end, begin + 1)  # zero-width tokens count at their position
            targets.append(any(is_target and begin < b_end and end > b_start
                               for b_start, b_end, is_target in bounds))
        return encoded["input_ids"], targets

    def encode_example(self, example: TaskExample | Mapping[str, Any], max_length: int | None = None
                       ) -> dict[str, list]:
        """One example as `{"input_ids", "labels", "loss_weights"}` lists of equal length (no padding).

        Args:
            example (`TaskExample` or its `to_dict()` form, e.g. a row of `lm_msn_task_dataset`).
            max_length (`int`, *optional*): keep the first `max_length` tokens.
        """
        if isinstance(example, Mapping):
            example = TaskExample.from_dict(example)
        elif not isinstance(example, TaskExample) and type(example).__name__ == "TaskExample":
            # made by another copy of the module: remote code loads one copy per class it maps
            example = TaskExample(example.task, example.segments)
        if not isinstance(example, TaskExample):
            raise TypeError(f"example must be a TaskExample or its dict form, got {type(example).__name__}.")
        ids: list[int] = list(self._bos())
        targets: list[bool] = [False] * len(ids)
        is_audio: list[bool] = [False] * len(ids)
        segments = example.segments
        index = 0
        while index < len(segments):
            segment = segments[index]
            if segment.kind in ("text", "control"):
                end = index
                while end < len(segments) and segments[end].kind == segment.kind:
                    end += 1
                run_ids, run_targets = self._encode_text_run(segments[index:end], segment.kind == "text")
                ids += run_ids
                targets += run_targets
                is_audio += [False] * len(run_ids)
                index = end
                continue
            if segment.kind == "audio":
                if not segment.codes:
                    raise ValueError("An audio segment must hold at least one code, got none.")
                span = [self.soa_token_id, *self.codes_to_ids(segment.codes), self.eoa_token_id]
                audio = [False] + [True] * (len(span) - 1)  # <soa> weighs as text (module docstring)
            else:  # eos
                if self.tokenizer.eos_token_id is None:
                    raise ValueError("The example has an eos segment but the tokenizer has no eos_token.")
                span, audio = [self.tokenizer.eos_token_id], [False]
            ids += span
            targets += [segment.is_target] * len(span)
            is_audio += audio
            index += 1
        if max_length is not None:
            ids, targets, is_audio = ids[:max_length], targets[:max_length], is_audio[:max_length]
        labels = [token if target else -100 for token, target in zip(ids, targets)]
        weights = [(self.audio_loss_weight if audio else 1.0) if target else 0.0
                   for target, audio in zip(targets, is_audio)]
        return {"input_ids": ids, "labels": labels, "loss_weights": weights}

    def pad(self, features: Sequence[Mapping[str, Sequence]], padding_side: str = "right",
            return_tensors: str | None = "pt") -> BatchEncoding:
        """Pad encoded examples (`input_ids` and optionally `labels`, `loss_weights`) into a batch with an
        `attention_mask`; usable as a Trainer data collator. `padding_side`: `"right"` (training) or `"left"`
        (generation)."""
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
        if not features:
            raise ValueError("features must hold at least one encoded example, got none.")
        if self.pad_token_id is None:
            raise ValueError("The tokenizer has neither a pad nor an eos token to pad with.")
        width = max(len(f["input_ids"]) for f in features)
        fills = {"input_ids": self.pad_token_id, "attention_mask": 0, "labels": -100, "loss_weights": 0.0}
        batch: dict[str, list] = {name: [] for name in fills if name == "input_ids" or name == "attention_mask"
                                  or name in features[0]}
        for feature in features:
            length = len(feature["input_ids"])
            row = {name: list(feature[name]) for name in batch if name != "attention_mask"}
            row["attention_mask"] = [1] * length
            for name, values in row.items():
                padding = [fills[name]] * (width - length)
                batch[name].append(values + padding if padding_side == "right" else padding + values)
        if return_tensors == "pt":
            dtypes = {"loss_weights": torch.float32}
            return BatchEncoding({name: torch.tensor(values, dtype=dtypes.get(name, torch.long))
                                  for name, values in batch.items()})
        if return_tensors is not None:
            raise ValueError(f"return_tensors must be 'pt' or None, got {return_tensors!r}.")
        return BatchEncoding(batch)

    def __call__(self, examples: TaskExample | Mapping | Sequence[TaskExample | Mapping], padding_side: str = "right",
                 max_length: int | None = None, return_tensors: str | None = "pt") -> BatchEncoding:
        """Encode and pad one example or a list: `input_ids`, `attention_mask`, `labels`, `loss_weights`, each
        `(batch, seq_len)`."""
        if isinstance(examples, (TaskExample, Mapping)):
            examples = [examples]
        return self.pad([self.encode_example(e, max_length) for e in examples], padding_side, return_tensors)

    # ------------------------------------------------------------------ chat template

    def chat_segments(self, user_segments: Sequence[Segment], assistant_segments: Sequence[Segment] | None = None,
                      system: str | None = None) -> tuple[Segment, ...]:
        """Wrap a user turn (and the assistant's answer) in the tokenizer's chat template, as segments.

        The template is rendered once with placeholders for the two turns; the scaffolding around them becomes
        `"control"` segments. The assistant segments and everything the template writes after them (its
        end-of-turn token) are loss targets; nothing else is. Without `assistant_segments` the result is a
        generation prompt (`add_generation_prompt=True`). With Vicuna v1.1's template this gives the same string
        as `vicuna_v11_prompt`.
        """
        if not user_segments:
            raise ValueError("user_segments must hold at least one segment, got none.")
        messages = [] if system is None else [{"role": "system", "content": system}]
        messages.append({"role": "user", "content": _USER_MARK})
        if assistant_segments is not None:
            if not assistant_segments:
                raise ValueError("assistant_segments must hold at least one segment, got none.")
            messages.append({"role": "assistant", "content": _ASSISTANT_MARK})
        rendered = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                      add_generation_prompt=assistant_segments is None)
        head, _, rest = rendered.partition(_USER_MARK)
        bos = self.tokenizer.bos_token
        if bos and head.startswith(bos) and self._bos():
            head = head[len(bos):]  # encode_example adds the tokenizer's own bos
        user = tuple(Segment(s.kind, text=s.text, codes=s.codes, is_target=False) for s in user_segments)
        out: list[Segment] = ([control_segment(head)] if head else []) + list(user)
        if assistant_segments is None:
            return tuple(out + ([control_segment(rest)] if rest else []))
        middle, _, tail = rest.partition(_ASSISTANT_MARK)
        assistant = tuple(Segment(s.kind, text=s.text, codes=s.codes, is_target=True) for s in assistant_segments)
        out += ([control_segment(middle)] if middle else []) + list(assistant)
        return tuple(out + ([control_segment(tail, is_target=True)] if tail else []))

    # ------------------------------------------------------------------ ids -> text and codes

    def decode(self, token_ids: Sequence[int] | torch.Tensor, skip_special_tokens: bool = True) -> AudioTextOutput:
        """Read generated ids back into text and audio spans (pad and eos are dropped with the special tokens).

        A `<soa>` opens a span, `<eoa>` closes it; codes outside a span, stray `<eoa>` and text tokens inside a
        span (a model that wrote words among its codes) are dropped, the span's codes kept. A span left open at
        the end is returned with `complete=False`.
        """
        if isinstance(token_ids, torch.Tensor):
            if token_ids.ndim != 1:
                raise ValueError(f"decode takes one sequence of ids, got shape {tuple(token_ids.shape)}; "
                                 "use batch_decode for a batch.")
            token_ids = token_ids.tolist()
        text_ids: list[int] = []
        spans: list[list[int]] = []
        complete: list[bool] = []
        inside = False
        for token in token_ids:
            if token == self.soa_token_id:
                spans.append([])
                complete.append(False)
                inside = True
            elif token == self.eoa_token_id:
                if inside:
                    complete[-1] = True
                inside = False
            elif self.is_audio_code_id(token):
                if inside:
                    spans[-1].append(token - self.audio_token_offset)
            elif not inside:
                text_ids.append(token)
        text = self.tokenizer.decode(text_ids, skip_special_tokens=skip_special_tokens)
        return AudioTextOutput(text=text, audio_codes=spans, complete=complete)

    def batch_decode(self, sequences: Sequence[Sequence[int]] | torch.Tensor, skip_special_tokens: bool = True
                     ) -> list[AudioTextOutput]:
        return [self.decode(list(s) if not isinstance(s, torch.Tensor) else s, skip_special_tokens)
                for s in sequences]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(tokenizer={type(self.tokenizer).__name__}, vocab_size={self.vocab_size}, "
                f"codebook_size={self.codebook_size}, audio_token_offset={self.audio_token_offset}, "
                f"audio_loss_weight={self.audio_loss_weight})")
