# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""Training examples as segments: the types every task builder returns, and the checks they share.

* **Segments, not strings.** An LM-MSN example is a `TaskExample`: a tuple of `Segment`s, each of kind
  `"text"`, `"control"`, `"audio"` or `"eos"`. User text must never turn into audio tokens by accident: a caption that
  contains the literal string `"<soa>"` or `"<a_17>"` stays inside a text segment, and the token-id processor
  tokenises text segments as text and maps audio segments straight to token ids (it never parses audio tokens
  out of a string). `TaskExample.render()` joins the segments into one string for display and tests only;
  that string is ambiguous by construction and must not be fed to a tokenizer. Text segments are kept apart
  (the system prompt, the user prompt and `" ASSISTANT: "` are separate segments) so that the processor can
  tell which tokens carry the loss; merging or splitting them for tokenisation is the processor's business.
* **Loss targets.** `Segment.is_target` marks the segments whose tokens the LM loss is computed on.
* **Randomness.** Every random choice takes an explicit `random.Random`. `row_rng(seed, key)` gives one
  generator per row, seeded from the global seed and the row's stable key (string seeding hashes with
  SHA-512, independent of `PYTHONHASHSEED`), so a row's draws do not depend on row order, sharding or
  `num_proc`, and a re-run with the same seed rebuilds the same dataset.
* **Text fields** (captions, labels, instructions, responses) must be `str`; they are stripped of leading and
  trailing whitespace and must not be empty after that. A label may also be a list of strings (multi-label
  data), joined with `", "`.
* **Codes** are checked for being a non-empty 1-D sequence of non-negative Python or NumPy integers (not
  bools). The upper bound depends on the codebook size and is checked by the processor, which knows it.
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, is_dataclass
from typing import Any

from ..audio_tokens import check_code, render_audio

__all__ = [
    "EOS_TOKEN",
    "SEGMENT_KINDS",
    "Segment",
    "TaskExample",
    "audio_question",
    "audio_segment",
    "control_segment",
    "eos_segment",
    "row_rng",
    "text_segment",
]

# How an "eos" segment is displayed by `render()` (Vicuna's spelling). The LLM processor uses its own
# tokenizer's end-of-sequence token, whatever its spelling.
EOS_TOKEN = "</s>"

SEGMENT_KINDS = ("text", "control", "audio", "eos")


# ----------------------------------------------------------------------------------------------------------
# Validation helpers, shared by the task builders of every family
# ----------------------------------------------------------------------------------------------------------


def check_codes(codes: Any, name: str = "codes") -> tuple[int, ...]:
    if codes is None:
        raise ValueError(f"`{name}` is required: a non-empty sequence of sound-tokenizer codes, got None.")
    if isinstance(codes, (str, bytes)) or not isinstance(codes, Iterable):
        raise TypeError(f"`{name}` must be a 1-D sequence of ints, got {type(codes).__name__}: {codes!r:.80}.")
    ndim = getattr(codes, "ndim", 1)
    if ndim != 1:
        shape = tuple(getattr(codes, "shape", ()))
        raise ValueError(f"`{name}` must be 1-D (one code per latent frame), got an array of shape {shape}.")
    if hasattr(codes, "tolist"):  # NumPy arrays and torch tensors: one C-level conversion instead of 0-d scalars
        codes = codes.tolist()
    checked = tuple(check_code(code, f"{name}[{i}]") for i, code in enumerate(codes))
    if not checked:
        raise ValueError(f"`{name}` must hold at least one code, got an empty sequence.")
    return checked


def check_text(value: Any, name: str) -> str:
    if value is None:
        raise ValueError(f"`{name}` is required: a non-empty string, got None.")
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a str, got {type(value).__name__}: {value!r:.80}.")
    stripped = value.strip()
    if not stripped:
        raise ValueError(f"`{name}` must be a non-empty string, got {value!r}.")
    return stripped


def check_label(value: Any, name: str = "label") -> str:
    """A label string, or a list of label strings joined with `", "` (multi-label data)."""
    if isinstance(value, str) or value is None:
        return check_text(value, name)
    if not isinstance(value, Sequence) and not hasattr(value, "tolist"):
        raise TypeError(f"`{name}` must be a str or a list of str, got {type(value).__name__}: {value!r:.80}.")
    items = value.tolist() if hasattr(value, "tolist") else list(value)
    if not items:
        raise ValueError(f"`{name}` must hold at least one label, got an empty list.")
    return ", ".join(check_text(item, f"{name}[{i}]") for i, item in enumerate(items))


def check_rng(rng: Any) -> random.Random:
    if not isinstance(rng, random.Random):
        raise TypeError(
            f"`rng` must be a random.Random (e.g. from `row_rng(seed, key)`), got {type(rng).__name__}: {rng!r:.80}."
        )
    return rng


def check_choice(value: Any, name: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {list(allowed)}, got {value!r}.")
    return value


# ----------------------------------------------------------------------------------------------------------
# Segments and examples
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One piece of a training example: text, audio codes, or the end-of-sequence token.

    Args:
        kind (`str`): `"text"`, `"control"`, `"audio"` or `"eos"`. `"text"` is content (captions, prompts,
            answers): the LLM processor tokenises it with every special token split into plain text, so nothing
            a user wrote can become `<soa>`, `<a_17>` or an end-of-turn token. `"control"` is trusted chat-template
            scaffolding (e.g. `"<|im_start|>assistant\n"`), tokenised with the tokenizer's special tokens
            recognised; only templates make it.
        text (`str`, *optional*, defaults to `""`): the text of a `"text"` or `"control"` segment (non-empty,
            kept verbatim, even if it looks like audio tokens); must be empty for the other kinds.
        codes (`tuple[int, ...]`, *optional*, defaults to `()`): for an `"audio"` segment, the sound-tokenizer
            codes, one per latent frame, shape `(num_frames,)`; any 1-D integer sequence is accepted and
            stored as a tuple of Python ints. Must be empty for the other kinds.
        is_target (`bool`, *optional*, defaults to `False`): whether the LM loss is computed on this segment's
            tokens.
    """

    kind: str
    text: str = ""
    codes: tuple[int, ...] = field(default=())
    is_target: bool = False

    def __post_init__(self) -> None:
        check_choice(self.kind, "kind", SEGMENT_KINDS)
        if not isinstance(self.text, str):
            raise TypeError(f"`text` must be a str, got {type(self.text).__name__}: {self.text!r:.80}.")
        if not isinstance(self.is_target, bool):
            raise TypeError(f"`is_target` must be a bool, got {type(self.is_target).__name__}: {self.is_target!r}.")
        if self.kind == "audio":
            # frozen: normalise arrays / lists to a hashable tuple of Python ints once, here.
            object.__setattr__(self, "codes", check_codes(self.codes))
            if self.text:
                raise ValueError(f"An audio segment carries no text, got text={self.text!r:.80}.")
            return
        if self.codes is not None and len(self.codes) != 0:
            raise ValueError(f"Only audio segments carry codes; a {self.kind!r} segment got codes={self.codes!r:.80}.")
        object.__setattr__(self, "codes", ())
        if self.kind in ("text", "control") and not self.text:
            raise ValueError(f"A {self.kind} segment must hold non-empty text, got ''.")
        if self.kind == "eos" and self.text:
            raise ValueError(f"An eos segment carries no text, got text={self.text!r:.80}.")

    def render(self) -> str:
        """Display string: text and control as is, audio as `"<soa><a_3><a_1><eoa>"`, eos as `"</s>"`."""
        if self.kind in ("text", "control"):
            return self.text
        if self.kind == "audio":
            return render_audio(self.codes)
        return EOS_TOKEN


def text_segment(text: str, is_target: bool = False) -> Segment:
    """A `"text"` segment; `text` is kept verbatim (not stripped), so separators such as `"\\n"` survive."""
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a str, got {type(text).__name__}: {text!r:.80}.")
    return Segment("text", text=text, is_target=is_target)


def control_segment(text: str, is_target: bool = False) -> Segment:
    """A `"control"` segment: chat-template scaffolding tokenised with special tokens recognised (see `Segment`)."""
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a str, got {type(text).__name__}: {text!r:.80}.")
    return Segment("control", text=text, is_target=is_target)


def audio_segment(codes: Sequence[int], is_target: bool = False) -> Segment:
    """An `"audio"` segment from `codes` of shape `(num_frames,)` (list, tuple, 1-D array or tensor of ints)."""
    return Segment("audio", codes=codes, is_target=is_target)


def audio_question(codes: Sequence[int], prompt: str) -> list[Segment]:
    """The LM-MSN stage-2 user turn about a clip: its codes, then `prompt` on a new line. Training
    (`lm_msn_chat_example`), the report and the pipelines all ask this way, so a question at inference reads as it
    did in training."""
    return [audio_segment(codes), text_segment("\n" + prompt)]


def eos_segment(is_target: bool = True) -> Segment:
    """The `</s>` segment that ends an assistant turn; a loss target by default, as in FastChat."""
    return Segment("eos", is_target=is_target)


def _own_segment(segment: Any) -> Any:
    """A `Segment` made by another copy of this module as one of this copy's (anything else unchanged): an exported
    folder run as remote code loads one copy of this file per class it maps (processor, pipeline), and a pipeline
    hands its segments to the processor's."""
    if not isinstance(segment, Segment) and type(segment).__name__ == "Segment" and is_dataclass(segment):
        return Segment(segment.kind, segment.text, segment.codes, segment.is_target)
    return segment


@dataclass(frozen=True)
class TaskExample:
    """One training example: the task name and its ordered segments.

    Args:
        task (`str`): the task that built it, e.g. `"text_to_audio"` or `"captioning"`.
        segments (`tuple[Segment, ...]`): the example in order; a list is accepted and stored as a tuple.
    """

    task: str
    segments: tuple[Segment, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or not self.task:
            raise ValueError(f"`task` must be a non-empty str, got {self.task!r}.")
        if isinstance(self.segments, (str, bytes)) or not isinstance(self.segments, Iterable):
            raise TypeError(f"`segments` must be a sequence of Segment, got {type(self.segments).__name__}.")
        segments = tuple(_own_segment(segment) for segment in self.segments)
        for i, segment in enumerate(segments):
            if not isinstance(segment, Segment):
                raise TypeError(f"`segments[{i}]` must be a Segment, got {type(segment).__name__}: {segment!r:.80}.")
        if not segments:
            raise ValueError("`segments` must hold at least one segment, got none.")
        object.__setattr__(self, "segments", segments)

    def render(self) -> str:
        """The example as one string, for display and tests only (never tokenise it: see the module docstring).

        Returns:
            `str`: e.g. `"a dog barks<soa><a_3><a_1><eoa>"`.
        """
        return "".join(segment.render() for segment in self.segments)

    def to_dict(self) -> dict[str, Any]:
        """Arrow-friendly form with a fixed schema: every segment has all four keys.

        Returns:
            `dict`: `{"task": str, "segments": [{"kind": str, "text": str, "codes": list[int],
            "is_target": bool}, ...]}`.
        """
        return {
            "task": self.task,
            "segments": [
                {"kind": s.kind, "text": s.text, "codes": list(s.codes), "is_target": s.is_target}
                for s in self.segments
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskExample:
        """Inverse of `to_dict`; validates every segment.

        Args:
            data (`Mapping`): `{"task": str, "segments": [{"kind", "text", "codes", "is_target"}, ...]}`;
                `text`, `codes` and `is_target` may be omitted (defaults `""`, `[]`, `False`).
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"`data` must be a mapping with keys 'task' and 'segments', got {type(data).__name__}.")
        missing = [key for key in ("task", "segments") if key not in data]
        if missing:
            raise ValueError(f"`data` is missing key(s) {missing}; got keys {sorted(data)}.")
        raw_segments = data["segments"]
        if isinstance(raw_segments, (str, bytes, Mapping)) or not isinstance(raw_segments, Iterable):
            raise TypeError(f"`data['segments']` must be a list of mappings, got {type(raw_segments).__name__}.")
        segments = []
        for i, raw in enumerate(raw_segments):
            if not isinstance(raw, Mapping):
                raise TypeError(f"`data['segments'][{i}]` must be a mapping, got {type(raw).__name__}.")
            unknown = sorted(set(raw) - {"kind", "text", "codes", "is_target"})
            if unknown or "kind" not in raw:
                raise ValueError(
                    f"`data['segments'][{i}]` must have key 'kind' and only 'kind', 'text', 'codes', 'is_target'; "
                    f"got keys {sorted(raw)}."
                )
            # Arrow stores missing text/codes as None in some writers.
            text = raw.get("text") or ""
            codes = raw.get("codes")
            codes = () if codes is None else codes
            segments.append(Segment(raw["kind"], text=text, codes=codes, is_target=raw.get("is_target", False)))
        return cls(task=data["task"], segments=tuple(segments))


# ----------------------------------------------------------------------------------------------------------
# Randomness
# ----------------------------------------------------------------------------------------------------------


def row_rng(seed: int, key: str) -> random.Random:
    """One random generator per row, keyed by the row's stable key.

    The generator is `random.Random(f"{seed}:{key}")`: string seeds are hashed with SHA-512, so the result is
    the same in every process and under any `PYTHONHASHSEED`, and a row's draws depend only on `(seed, key)`,
    never on row order, sharding or `num_proc`.

    Args:
        seed (`int`): the run's global seed.
        key (`str`): a stable, unique key of the row (e.g. its audio path or id).

    Returns:
        `random.Random`
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"`seed` must be an int, got {type(seed).__name__}: {seed!r:.80}.")
    if not isinstance(key, str):
        raise TypeError(f"`key` must be a str (a stable row key such as the audio path), got {type(key).__name__}.")
    if not key:
        raise ValueError("`key` must be a non-empty string: an empty key would give every such row the same draws.")
    return random.Random(f"{int(seed)}:{key}")
