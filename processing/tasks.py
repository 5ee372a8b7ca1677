# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""Task builders: pure functions that turn one data row into one training example for LM-MSN or MINT.

Nothing here touches a tokenizer, a model or a file besides the two shipped JSON templates; the functions
take plain Python values (sound-tokenizer codes as a sequence of ints, captions, labels, instructions) and
return plain values, so they can run inside `datasets.Dataset.map` with any `num_proc`.

Decisions

* **Segments, not strings.** An LM-MSN example is a `TaskExample`: a tuple of `Segment`s, each of kind
  `"text"`, `"audio"` or `"eos"`. User text must never turn into audio tokens by accident: a caption that
  contains the literal string `"<soa>"` or `"<a_17>"` stays inside a text segment, and the token-id processor
  tokenises text segments as text and maps audio segments straight to token ids (it never parses audio tokens
  out of a string). `TaskExample.render()` joins the segments into one string for display and tests only;
  that string is ambiguous by construction and must not be fed to a tokenizer. Text segments are kept apart
  (the system prompt, the user prompt and `" ASSISTANT: "` are separate segments) so that the processor can
  tell which tokens carry the loss; merging or splitting them for tokenisation is the processor's business.
* **Loss targets.** `Segment.is_target` marks the segments whose tokens the LM loss is computed on. Stage 1
  (`lm_msn_pretraining_example`) is plain next-token pretraining on the caption pair, so by default every
  segment is a target (`targets="all"`); `targets="second"` restricts the loss to the generated half
  (the audio of a text-to-audio pair, the caption of an audio-to-text pair) for ablations. Stage 2
  (`lm_msn_chat_example`) follows FastChat: the loss covers the assistant turn and its `</s>` only.
* **Stage-1 order.** The paper presents each caption pair "randomly" as <text, audio> or <audio, text>; here
  that is exactly one `rng.random() < 0.5` draw per example (True: text first, task `"text_to_audio"`). No
  separator text is inserted: `<soa>` / `<eoa>` already delimit the audio.
* **Vicuna v1.1 chat template** (FastChat `"vicuna_v1.1"`, the template of Vicuna-7B v1.5): the fixed
  system prompt, roles `USER` / `ASSISTANT`, separator `" "` after the user turn and `"</s>"` after the
  assistant turn: `f"{system} USER: {user} ASSISTANT: {assistant}</s>"`. A generation prompt (no assistant
  message) ends in `" ASSISTANT:"` with no trailing space, as FastChat renders an empty message. Audio is
  placed first in the user turn, then `"\\n"` and the instruction, as LLaVA-style models do.
* **Prompt phrasings** for stage 2 ship in `templates/lm_msn_prompts.json` (2-4 per task); one is drawn with
  `rng.choice` per example. The paper does not list its phrasings, so these are ours.
* **Randomness.** Every random choice takes an explicit `random.Random`. `row_rng(seed, key)` gives one
  generator per row, seeded from the global seed and the row's stable key (string seeding hashes with
  SHA-512, independent of `PYTHONHASHSEED`), so a row's draws do not depend on row order, sharding or
  `num_proc`, and a re-run with the same seed rebuilds the same dataset.
* **Text fields** (captions, labels, instructions, responses) must be `str`; they are stripped of leading and
  trailing whitespace and must not be empty after that. A label may also be a list of strings (multi-label
  data), joined with `", "`.
* **Codes** are checked for being a non-empty 1-D sequence of non-negative Python or NumPy integers (not
  bools). The upper bound depends on the codebook size and is checked by the processor, which knows it.
* **MINT stage 2 instructions.** The twelve templates of the MINT paper's Table 1 ship in
  `templates/mint_instructions.json`, one per dataset. The paper's table could not be read offline: the
  wording is the paper's (`"wording": "paper"`) only for `"This is a sound of"` (AudioSet, VGGSound,
  FSD50K) and `"Generate audio caption:"` (WavCaps, FreeSound, Clotho); the genre (FMA, Music4All, GTZAN),
  instrument (OpenMIC, NSynth) and key (Music4All) instructions are short instructions written in the same
  style and are marked `"wording": "ours"`. `MintInstructionTemplates` loads, extends and saves the set.
"""

from __future__ import annotations

import json
import numbers
import os
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from typing import Any

__all__ = [
    "EOA_TOKEN",
    "EOS_TOKEN",
    "LM_MSN_CHAT_TASKS",
    "LM_MSN_PRETRAINING_TASKS",
    "MINT_TASKS",
    "SEGMENT_KINDS",
    "SOA_TOKEN",
    "VICUNA_V11_SYSTEM",
    "MintInstructionTemplate",
    "MintInstructionTemplates",
    "Segment",
    "TaskExample",
    "audio_segment",
    "audio_token",
    "eos_segment",
    "lm_msn_chat_example",
    "lm_msn_chat_tasks",
    "lm_msn_pretraining_example",
    "load_lm_msn_prompts",
    "mint_caption_pair",
    "mint_instruction_example",
    "row_rng",
    "text_segment",
    "vicuna_v11_prompt",
]

SOA_TOKEN = "<soa>"
EOA_TOKEN = "<eoa>"
EOS_TOKEN = "</s>"

SEGMENT_KINDS = ("text", "audio", "eos")

LM_MSN_PRETRAINING_TASKS = ("text_to_audio", "audio_to_text")
# The order of `lm_msn_chat_tasks`'s answer.
LM_MSN_CHAT_TASKS = ("captioning", "question_answering", "classification", "text_to_audio")
# Tasks whose user prompt is drawn from the prompt file (question answering brings its own instruction).
_PROMPTED_TASKS = ("captioning", "classification", "text_to_audio")

MINT_TASKS = ("classification", "captioning", "question_answering")
_MINT_WORDINGS = ("paper", "ours")
_MINT_TEMPLATE_KEYS = ("dataset", "display_name", "task", "instruction", "target_field", "wording")

VICUNA_V11_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
_VICUNA_USER = " USER: "
_VICUNA_ASSISTANT = " ASSISTANT: "

_TEMPLATES_PACKAGE = "soundlm.processing"
_PROMPTS_FILE = "lm_msn_prompts.json"
_MINT_FILE = "mint_instructions.json"


def audio_token(code: int) -> str:
    """The vocabulary string of one sound-tokenizer code.

    Args:
        code (`int`): a codebook index, `>= 0`.

    Returns:
        `str`: `"<a_{code}>"`, e.g. `audio_token(17) == "<a_17>"`.
    """
    return f"<a_{_check_code(code, 'code')}>"


# ----------------------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------------------


def _check_code(value: Any, name: str) -> int:
    # bool is an Integral, but True as a code is always a bug upstream.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int (a codebook index), got {value!r} of type {type(value).__name__}.")
    value = int(value)
    if value < 0:
        raise ValueError(f"`{name}` must be a non-negative codebook index, got {value}.")
    return value


def _check_codes(codes: Any, name: str = "codes") -> tuple[int, ...]:
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
    checked = tuple(_check_code(code, f"{name}[{i}]") for i, code in enumerate(codes))
    if not checked:
        raise ValueError(f"`{name}` must hold at least one code, got an empty sequence.")
    return checked


def _check_text(value: Any, name: str) -> str:
    if value is None:
        raise ValueError(f"`{name}` is required: a non-empty string, got None.")
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a str, got {type(value).__name__}: {value!r:.80}.")
    stripped = value.strip()
    if not stripped:
        raise ValueError(f"`{name}` must be a non-empty string, got {value!r}.")
    return stripped


def _check_label(value: Any, name: str = "label") -> str:
    """A label string, or a list of label strings joined with `", "` (multi-label data)."""
    if isinstance(value, str) or value is None:
        return _check_text(value, name)
    if not isinstance(value, Sequence) and not hasattr(value, "tolist"):
        raise TypeError(f"`{name}` must be a str or a list of str, got {type(value).__name__}: {value!r:.80}.")
    items = value.tolist() if hasattr(value, "tolist") else list(value)
    if not items:
        raise ValueError(f"`{name}` must hold at least one label, got an empty list.")
    return ", ".join(_check_text(item, f"{name}[{i}]") for i, item in enumerate(items))


def _check_rng(rng: Any) -> random.Random:
    if not isinstance(rng, random.Random):
        raise TypeError(
            f"`rng` must be a random.Random (e.g. from `row_rng(seed, key)`), got {type(rng).__name__}: {rng!r:.80}."
        )
    return rng


def _check_choice(value: Any, name: str, allowed: Sequence[str]) -> str:
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
        kind (`str`): `"text"`, `"audio"` or `"eos"`.
        text (`str`, *optional*, defaults to `""`): the text of a `"text"` segment (non-empty, kept verbatim,
            even if it looks like audio tokens); must be empty for the other kinds.
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
        _check_choice(self.kind, "kind", SEGMENT_KINDS)
        if not isinstance(self.text, str):
            raise TypeError(f"`text` must be a str, got {type(self.text).__name__}: {self.text!r:.80}.")
        if not isinstance(self.is_target, bool):
            raise TypeError(f"`is_target` must be a bool, got {type(self.is_target).__name__}: {self.is_target!r}.")
        if self.kind == "audio":
            # frozen: normalise arrays / lists to a hashable tuple of Python ints once, here.
            object.__setattr__(self, "codes", _check_codes(self.codes))
            if self.text:
                raise ValueError(f"An audio segment carries no text, got text={self.text!r:.80}.")
            return
        if self.codes is not None and len(self.codes) != 0:
            raise ValueError(f"Only audio segments carry codes; a {self.kind!r} segment got codes={self.codes!r:.80}.")
        object.__setattr__(self, "codes", ())
        if self.kind == "text" and not self.text:
            raise ValueError("A text segment must hold non-empty text, got ''.")
        if self.kind == "eos" and self.text:
            raise ValueError(f"An eos segment carries no text, got text={self.text!r:.80}.")

    def render(self) -> str:
        """Display string: text as is, audio as `"<soa><a_3><a_1><eoa>"`, eos as `"</s>"`."""
        if self.kind == "text":
            return self.text
        if self.kind == "audio":
            return SOA_TOKEN + "".join(f"<a_{code}>" for code in self.codes) + EOA_TOKEN
        return EOS_TOKEN


def text_segment(text: str, is_target: bool = False) -> Segment:
    """A `"text"` segment; `text` is kept verbatim (not stripped), so separators such as `"\\n"` survive."""
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a str, got {type(text).__name__}: {text!r:.80}.")
    return Segment("text", text=text, is_target=is_target)


def audio_segment(codes: Sequence[int], is_target: bool = False) -> Segment:
    """An `"audio"` segment from `codes` of shape `(num_frames,)` (list, tuple, 1-D array or tensor of ints)."""
    return Segment("audio", codes=codes, is_target=is_target)


def eos_segment(is_target: bool = True) -> Segment:
    """The `</s>` segment that ends an assistant turn; a loss target by default, as in FastChat."""
    return Segment("eos", is_target=is_target)


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
        segments = tuple(self.segments)
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


# ----------------------------------------------------------------------------------------------------------
# LM-MSN stage 1: caption pairs
# ----------------------------------------------------------------------------------------------------------


def lm_msn_pretraining_example(
    codes: Sequence[int], caption: str, rng: random.Random, targets: str = "all"
) -> TaskExample:
    """LM-MSN stage-1 example: a caption pair presented in a random order.

    One `rng.random()` draw: below 0.5 the order is <text, audio> (task `"text_to_audio"`), else <audio, text>
    (task `"audio_to_text"`). No separator is added between the two: `"a dog barks<soa><a_3><a_1><eoa>"`.

    Args:
        codes (`Sequence[int]` of shape `(num_frames,)`): the clip's sound-tokenizer codes.
        caption (`str`): the clip's caption (stripped; must not be empty).
        rng (`random.Random`): the row's generator, e.g. `row_rng(seed, key)`.
        targets (`str`, *optional*, defaults to `"all"`): `"all"` marks both segments as loss targets (plain
            next-token pretraining on the whole pair); `"second"` marks only the second one.

    Returns:
        `TaskExample` with two segments.
    """
    codes = _check_codes(codes)
    caption = _check_text(caption, "caption")
    _check_rng(rng)
    _check_choice(targets, "targets", ("all", "second"))
    first_is_target = targets == "all"
    if rng.random() < 0.5:
        return TaskExample(
            "text_to_audio", (text_segment(caption, first_is_target), audio_segment(codes, is_target=True))
        )
    return TaskExample("audio_to_text", (audio_segment(codes, first_is_target), text_segment(caption, is_target=True)))


# ----------------------------------------------------------------------------------------------------------
# LM-MSN stage 2: Vicuna v1.1 chat
# ----------------------------------------------------------------------------------------------------------


def load_lm_msn_prompts(path: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """Read and validate a stage-2 prompt file.

    Args:
        path (`str` or `os.PathLike`, *optional*): a JSON file `{"captioning": [...], "classification": [...],
            "text_to_audio": [...]}`; defaults to the shipped `templates/lm_msn_prompts.json`. Every
            `"text_to_audio"` prompt must contain `"{caption}"`.

    Returns:
        `dict[str, list[str]]`: prompt phrasings per task.
    """
    if path is None:
        text = resources.files(_TEMPLATES_PACKAGE).joinpath("templates", _PROMPTS_FILE).read_text(encoding="utf-8")
        source = f"the shipped {_PROMPTS_FILE}"
    else:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        source = os.fspath(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"Prompt file {source} is not valid JSON: {error}.") from error
    return _check_prompts(data, f"prompts (from {source})")


def _check_prompts(prompts: Any, name: str = "prompts") -> dict[str, list[str]]:
    if not isinstance(prompts, Mapping):
        raise TypeError(f"`{name}` must map task names to lists of prompts, got {type(prompts).__name__}.")
    checked = {}
    for task, phrasings in prompts.items():
        _check_choice(task, f"{name} key", _PROMPTED_TASKS)
        if isinstance(phrasings, str) or not isinstance(phrasings, Sequence) or not phrasings:
            raise ValueError(f"`{name}[{task!r}]` must be a non-empty list of strings, got {phrasings!r:.80}.")
        checked[task] = [_check_text(p, f"{name}[{task!r}][{i}]") for i, p in enumerate(phrasings)]
        if task == "text_to_audio":
            for i, prompt in enumerate(checked[task]):
                try:
                    filled = prompt.format(caption="\0")
                except (KeyError, IndexError, ValueError) as error:
                    raise ValueError(
                        f"`{name}['text_to_audio'][{i}]` must be a format string whose only field is "
                        f"'{{caption}}', got {prompt!r} ({type(error).__name__}: {error})."
                    ) from error
                if "\0" not in filled:
                    raise ValueError(f"`{name}['text_to_audio'][{i}]` must contain '{{caption}}', got {prompt!r}.")
    return checked


_DEFAULT_PROMPTS: dict[str, list[str]] | None = None


def _default_prompts() -> dict[str, list[str]]:
    global _DEFAULT_PROMPTS
    if _DEFAULT_PROMPTS is None:
        _DEFAULT_PROMPTS = load_lm_msn_prompts()
    return _DEFAULT_PROMPTS


def vicuna_v11_prompt(
    user_segments: Sequence[Segment],
    assistant_segments: Sequence[Segment] | None = None,
    system: str = VICUNA_V11_SYSTEM,
) -> tuple[Segment, ...]:
    """Wrap one user turn (and optionally the assistant's answer) in the Vicuna v1.1 chat template.

    Renders as `f"{system} USER: {user} ASSISTANT: {assistant}</s>"`, or `f"{system} USER: {user} ASSISTANT:"`
    when `assistant_segments` is None (a generation prompt). The `is_target` flags of the given segments are
    overwritten: the loss covers the assistant segments and the closing `</s>` only.

    Args:
        user_segments (`Sequence[Segment]`): the user message, non-empty.
        assistant_segments (`Sequence[Segment]`, *optional*): the assistant message, non-empty if given.
        system (`str`, *optional*, defaults to `VICUNA_V11_SYSTEM`): the system prompt.

    Returns:
        `tuple[Segment, ...]`
    """
    user = _check_segments(user_segments, "user_segments")
    system = _check_text(system, "system")
    head = (text_segment(system + _VICUNA_USER), *(replace(s, is_target=False) for s in user))
    if assistant_segments is None:
        return (*head, text_segment(_VICUNA_ASSISTANT.rstrip()))
    assistant = _check_segments(assistant_segments, "assistant_segments")
    return (
        *head,
        text_segment(_VICUNA_ASSISTANT),
        *(replace(s, is_target=True) for s in assistant),
        eos_segment(is_target=True),
    )


def _check_segments(segments: Any, name: str) -> tuple[Segment, ...]:
    if isinstance(segments, (str, bytes, Segment)) or not isinstance(segments, Iterable):
        raise TypeError(f"`{name}` must be a sequence of Segment, got {type(segments).__name__}: {segments!r:.80}.")
    segments = tuple(segments)
    for i, segment in enumerate(segments):
        if not isinstance(segment, Segment):
            raise TypeError(f"`{name}[{i}]` must be a Segment, got {type(segment).__name__}: {segment!r:.80}.")
        if segment.kind == "eos":
            raise ValueError(f"`{name}[{i}]` is an eos segment; the template adds '</s>' itself.")
    if not segments:
        raise ValueError(f"`{name}` must hold at least one segment, got none.")
    return segments


def lm_msn_chat_example(
    task: str,
    codes: Sequence[int] | None = None,
    *,
    caption: str | None = None,
    label: str | Sequence[str] | None = None,
    instruction: str | None = None,
    response: str | None = None,
    rng: random.Random,
    prompts: Mapping[str, Sequence[str]] | None = None,
) -> TaskExample:
    """LM-MSN stage-2 example: one task in the Vicuna v1.1 chat template with the audio inside.

    | task                   | user turn                      | assistant turn | needs                        |
    |------------------------|--------------------------------|----------------|------------------------------|
    | `"captioning"`         | audio, `"\\n" + prompt`        | caption        | codes, caption               |
    | `"question_answering"` | audio, `"\\n" + instruction`   | response       | codes, instruction, response |
    | `"classification"`     | audio, `"\\n" + prompt`        | label          | codes, label                 |
    | `"text_to_audio"`      | `prompt.format(caption=...)`   | audio          | codes, caption               |

    Arguments a task does not need are ignored, so a whole row can be passed for every task it supports.

    Args:
        task (`str`): one of `LM_MSN_CHAT_TASKS`.
        codes (`Sequence[int]` of shape `(num_frames,)`): the clip's sound-tokenizer codes.
        caption (`str`, *optional*): the clip's caption.
        label (`str` or `list[str]`, *optional*): the class label(s); a list is joined with `", "`.
        instruction (`str`, *optional*): the question of a question-answering row.
        response (`str`, *optional*): the answer of a question-answering row.
        rng (`random.Random`): the row's generator; one `rng.choice` picks the prompt phrasing (no draw for
            question answering).
        prompts (`Mapping[str, Sequence[str]]`, *optional*): phrasings per task; tasks it does not name use
            the shipped `templates/lm_msn_prompts.json`.

    Returns:
        `TaskExample` whose `task` is `task`; only the assistant turn and `</s>` are loss targets.
    """
    _check_choice(task, "task", LM_MSN_CHAT_TASKS)
    codes = _check_codes(codes)
    _check_rng(rng)
    phrasings = dict(_default_prompts())
    if prompts is not None:
        phrasings.update(_check_prompts(prompts))

    if task == "question_answering":
        instruction = _check_text(instruction, "instruction")
        answer = _check_text(response, "response")
        user = [audio_segment(codes), text_segment("\n" + instruction)]
        assistant = [text_segment(answer)]
    elif task == "text_to_audio":
        caption = _check_text(caption, "caption")
        user = [text_segment(rng.choice(phrasings[task]).format(caption=caption))]
        assistant = [audio_segment(codes)]
    else:
        answer = _check_text(caption, "caption") if task == "captioning" else _check_label(label)
        user = [audio_segment(codes), text_segment("\n" + rng.choice(phrasings[task]))]
        assistant = [text_segment(answer)]
    return TaskExample(task, vicuna_v11_prompt(user, assistant))


def _present(value: Any, name: str) -> bool:
    """Whether a row field holds usable text; None / "" / [] are absent, a wrong type is an error."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if name == "label" and (isinstance(value, Sequence) or hasattr(value, "tolist")):
        items = value.tolist() if hasattr(value, "tolist") else list(value)
        return any(_present(item, f"{name} item") for item in items)
    expected = "a str or a list of str" if name == "label" else "a str"
    raise TypeError(f"Row field `{name}` must be {expected}, got {type(value).__name__}: {value!r:.80}.")


def lm_msn_chat_tasks(row: Mapping[str, Any]) -> list[str]:
    """Which stage-2 tasks a row supports, in the fixed order of `LM_MSN_CHAT_TASKS`.

    A non-empty `"caption"` gives `"captioning"` and `"text_to_audio"`, a `"label"` gives `"classification"`,
    an `"instruction"` with a `"response"` gives `"question_answering"`. Missing keys, None, empty or
    whitespace-only strings and empty lists count as absent; other types raise `TypeError` so a broken column
    is not dropped silently.

    Args:
        row (`Mapping[str, Any]`): one data row.

    Returns:
        `list[str]`
    """
    if not isinstance(row, Mapping):
        raise TypeError(f"`row` must be a mapping (one data row), got {type(row).__name__}.")
    has = {name: _present(row.get(name), name) for name in ("caption", "label", "instruction", "response")}
    supported = {
        "captioning": has["caption"],
        "question_answering": has["instruction"] and has["response"],
        "classification": has["label"],
        "text_to_audio": has["caption"],
    }
    return [task for task in LM_MSN_CHAT_TASKS if supported[task]]


# ----------------------------------------------------------------------------------------------------------
# MINT
# ----------------------------------------------------------------------------------------------------------


def mint_caption_pair(caption: str) -> dict[str, str]:
    """MINT stage-1 text of an audio-caption pair (the row itself references the audio).

    Args:
        caption (`str`): the caption; stripped, must not be empty.

    Returns:
        `dict`: `{"text": caption}`.
    """
    return {"text": _check_text(caption, "caption")}


@dataclass(frozen=True)
class MintInstructionTemplate:
    """One MINT stage-2 instruction template.

    Args:
        dataset (`str`): lower-case dataset id, e.g. `"audioset"`, `"music4all_key"`.
        display_name (`str`): the dataset's usual spelling, e.g. `"AudioSet"`.
        task (`str`): one of `MINT_TASKS`.
        instruction (`str`): the instruction text given to the Q-Former and the LLM.
        target_field (`str`): the row field whose value is the response, e.g. `"label"` or `"caption"`.
        wording (`str`): `"paper"` if the instruction is the MINT paper's wording, `"ours"` otherwise.
    """

    dataset: str
    display_name: str
    task: str
    instruction: str
    target_field: str
    wording: str = "ours"

    def __post_init__(self) -> None:
        dataset = _check_text(self.dataset, "dataset").lower()
        object.__setattr__(self, "dataset", dataset)
        object.__setattr__(self, "display_name", _check_text(self.display_name, "display_name"))
        _check_choice(self.task, "task", MINT_TASKS)
        object.__setattr__(self, "instruction", _check_text(self.instruction, "instruction"))
        object.__setattr__(self, "target_field", _check_text(self.target_field, "target_field"))
        _check_choice(self.wording, "wording", _MINT_WORDINGS)


class MintInstructionTemplates:
    """The set of MINT stage-2 instruction templates, one per dataset, keyed by lower-case dataset id.

    Args:
        templates (`Iterable[MintInstructionTemplate]`, *optional*): initial templates (no duplicate ids).

    Example:

    ```python
    >>> from soundlm.processing.tasks import MintInstructionTemplates
    >>> templates = MintInstructionTemplates.default()
    >>> len(templates), templates.get("AudioSet").instruction
    (12, 'This is a sound of')
    >>> _ = templates.add("esc50", "This is a sound of", "label")

    ```
    """

    def __init__(self, templates: Iterable[MintInstructionTemplate] = ()) -> None:
        self._templates: dict[str, MintInstructionTemplate] = {}
        for i, template in enumerate(templates):
            if not isinstance(template, MintInstructionTemplate):
                raise TypeError(f"`templates[{i}]` must be a MintInstructionTemplate, got {type(template).__name__}.")
            if template.dataset in self._templates:
                raise ValueError(f"`templates` holds dataset {template.dataset!r} twice (at index {i}).")
            self._templates[template.dataset] = template

    @classmethod
    def default(cls) -> MintInstructionTemplates:
        """A fresh copy of the twelve shipped templates (`templates/mint_instructions.json`)."""
        text = resources.files(_TEMPLATES_PACKAGE).joinpath("templates", _MINT_FILE).read_text(encoding="utf-8")
        return cls._from_text(text, f"the shipped {_MINT_FILE}")

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> MintInstructionTemplates:
        """Read templates from a JSON list of objects with keys `dataset`, `task`, `instruction`,
        `target_field` and optionally `display_name` (defaults to `dataset`) and `wording` (defaults to
        `"ours"`)."""
        with open(path, encoding="utf-8") as handle:
            return cls._from_text(handle.read(), os.fspath(path))

    @classmethod
    def _from_text(cls, text: str, source: str) -> MintInstructionTemplates:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"MINT template file {source} is not valid JSON: {error}.") from error
        if not isinstance(data, list):
            raise ValueError(
                f"MINT template file {source} must hold a JSON list of objects, got {type(data).__name__}."
            )
        templates = []
        for i, entry in enumerate(data):
            if not isinstance(entry, dict):
                raise ValueError(f"Entry {i} of {source} must be an object, got {entry!r:.80}.")
            unknown = sorted(set(entry) - set(_MINT_TEMPLATE_KEYS))
            missing = [key for key in ("dataset", "task", "instruction", "target_field") if key not in entry]
            if unknown or missing:
                raise ValueError(
                    f"Entry {i} of {source} has unknown key(s) {unknown} / missing key(s) {missing}; "
                    f"expected keys {list(_MINT_TEMPLATE_KEYS)}."
                )
            entry = {"display_name": entry["dataset"], **entry}
            templates.append(MintInstructionTemplate(**entry))
        return cls(templates)

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the templates in the shipped file's layout (one object per line), readable by `from_json`."""
        lines = [json.dumps(asdict(t), ensure_ascii=False) for t in self._templates.values()]
        body = ",\n".join(f"  {line}" for line in lines)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"[\n{body}\n]\n" if lines else "[]\n")

    def get(self, dataset: str) -> MintInstructionTemplate:
        """The template of `dataset` (case-insensitive id, e.g. `"AudioSet"` or `"audioset"`)."""
        if not isinstance(dataset, str):
            raise TypeError(f"`dataset` must be a str, got {type(dataset).__name__}: {dataset!r:.80}.")
        try:
            return self._templates[dataset.strip().lower()]
        except KeyError:
            raise ValueError(
                f"Unknown MINT dataset {dataset!r}; known datasets: {self.names()}. "
                "Add one with `MintInstructionTemplates.add(dataset, instruction, target_field)`."
            ) from None

    def add(
        self,
        dataset: str,
        instruction: str,
        target_field: str,
        task: str | None = None,
        display_name: str | None = None,
        wording: str = "ours",
        overwrite: bool = False,
    ) -> MintInstructionTemplate:
        """Add (or with `overwrite=True` replace) the template of one dataset.

        Args:
            dataset (`str`): dataset id, stored lower-case.
            instruction (`str`): the instruction text.
            target_field (`str`): the row field holding the response.
            task (`str`, *optional*): one of `MINT_TASKS`; inferred when `target_field` is `"label"`
                (classification) or `"caption"` (captioning), required otherwise.
            display_name (`str`, *optional*): defaults to `dataset` as given.
            wording (`str`, *optional*, defaults to `"ours"`): `"paper"` or `"ours"`.
            overwrite (`bool`, *optional*, defaults to `False`): replace an existing template of `dataset`.

        Returns:
            `MintInstructionTemplate`: the stored template.
        """
        if task is None:
            inferred = {"label": "classification", "caption": "captioning"}
            if target_field not in inferred:
                raise ValueError(
                    f"`task` is required when `target_field` is {target_field!r}; expected one of {list(MINT_TASKS)}."
                )
            task = inferred[target_field]
        template = MintInstructionTemplate(
            dataset=dataset,
            display_name=dataset if display_name is None else display_name,
            task=task,
            instruction=instruction,
            target_field=target_field,
            wording=wording,
        )
        if template.dataset in self._templates and not overwrite:
            raise ValueError(
                f"MINT dataset {template.dataset!r} already has a template "
                f"({self._templates[template.dataset].instruction!r}); pass overwrite=True to replace it."
            )
        self._templates[template.dataset] = template
        return template

    def names(self) -> list[str]:
        """The dataset ids, in insertion order."""
        return list(self._templates)

    def __len__(self) -> int:
        return len(self._templates)

    def __iter__(self) -> Iterator[MintInstructionTemplate]:
        return iter(self._templates.values())

    def __contains__(self, dataset: object) -> bool:
        return isinstance(dataset, str) and dataset.strip().lower() in self._templates

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MintInstructionTemplates):
            return NotImplemented
        return list(self) == list(other)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.names()})"


_DEFAULT_MINT_TEMPLATES: MintInstructionTemplates | None = None


def mint_instruction_example(
    row: Mapping[str, Any], templates: MintInstructionTemplates | None = None
) -> dict[str, str]:
    """MINT stage-2 example: the dataset's instruction and the response taken from the row.

    Args:
        row (`Mapping[str, Any]`): one data row with a `"dataset"` id and the template's `target_field`
            (`"label"`: a str or a list of str joined with `", "`; `"caption"`: a str).
        templates (`MintInstructionTemplates`, *optional*): defaults to the twelve shipped templates.

    Returns:
        `dict`: `{"task": str, "dataset": str (canonical id), "instruction": str, "response": str}`.
    """
    global _DEFAULT_MINT_TEMPLATES
    if not isinstance(row, Mapping):
        raise TypeError(f"`row` must be a mapping (one data row), got {type(row).__name__}.")
    if templates is None:
        # A private instance that is never handed out, so user code cannot mutate the shared default.
        if _DEFAULT_MINT_TEMPLATES is None:
            _DEFAULT_MINT_TEMPLATES = MintInstructionTemplates.default()
        templates = _DEFAULT_MINT_TEMPLATES
    elif not isinstance(templates, MintInstructionTemplates):
        raise TypeError(f"`templates` must be a MintInstructionTemplates, got {type(templates).__name__}.")
    if "dataset" not in row:
        raise ValueError(f"`row` has no 'dataset' field (needed to pick the instruction); got keys {sorted(row)}.")
    template = templates.get(_check_text(row["dataset"], "row['dataset']"))
    field_name = template.target_field
    if field_name not in row or row[field_name] is None:
        raise ValueError(
            f"`row` of dataset {template.dataset!r} has no {field_name!r} field (the response of a "
            f"{template.task} template); got keys {sorted(row)}."
        )
    # Only class labels may be lists (multi-label data); a list of captions has no single right answer.
    check = _check_label if template.task == "classification" else _check_text
    response = check(row[field_name], f"row[{field_name!r}]")
    return {
        "task": template.task,
        "dataset": template.dataset,
        "instruction": template.instruction,
        "response": response,
    }
