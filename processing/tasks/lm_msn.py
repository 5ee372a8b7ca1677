# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""LM-MSN task builders: stage-1 caption pairs and stage-2 chat tasks in Vicuna v1.1's template.

Pure functions: plain Python values in (codes as a sequence of ints, captions, labels, instructions), a
`TaskExample` out, so they run inside `datasets.Dataset.map` with any `num_proc`.

* **Loss targets.** Stage 1 (`lm_msn_pretraining_example`) is plain next-token pretraining on the caption pair,
  so by default every segment is a target (`targets="all"`); `targets="second"` restricts the loss to the
  generated half (the audio of a text-to-audio pair, the caption of an audio-to-text pair) for ablations.
  Stage 2 (`lm_msn_chat_example`) follows FastChat: the loss covers the assistant turn and its `</s>` only.
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
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from importlib import resources
from typing import Any

from .examples import (
    Segment,
    TaskExample,
    audio_question,
    audio_segment,
    check_choice,
    check_codes,
    check_label,
    check_rng,
    check_text,
    eos_segment,
    text_segment,
)

__all__ = [
    "LM_MSN_CHAT_TASKS",
    "LM_MSN_PRETRAINING_TASKS",
    "VICUNA_V11_SYSTEM",
    "check_lm_msn_prompts",
    "lm_msn_chat_example",
    "lm_msn_chat_tasks",
    "lm_msn_pretraining_example",
    "load_lm_msn_prompts",
    "vicuna_v11_prompt",
]

LM_MSN_PRETRAINING_TASKS = ("text_to_audio", "audio_to_text")
# The order of `lm_msn_chat_tasks`'s answer.
LM_MSN_CHAT_TASKS = ("captioning", "question_answering", "classification", "text_to_audio")
# Tasks whose user prompt is drawn from the prompt file (question answering brings its own instruction).
_PROMPTED_TASKS = ("captioning", "classification", "text_to_audio")

VICUNA_V11_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
_VICUNA_USER = " USER: "
_VICUNA_ASSISTANT = " ASSISTANT: "

ChatTemplate = Callable[[Sequence[Segment], "Sequence[Segment] | None"], Sequence[Segment]]
"""`(user_segments, assistant_segments or None) -> segments`: a chat template over segments."""

_TEMPLATES_PACKAGE = "soundlm.processing"
_PROMPTS_FILE = "lm_msn_prompts.json"


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
    codes = check_codes(codes)
    caption = check_text(caption, "caption")
    check_rng(rng)
    check_choice(targets, "targets", ("all", "second"))
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
    return check_lm_msn_prompts(data, f"prompts (from {source})")


def check_lm_msn_prompts(prompts: Any, name: str = "prompts", complete: bool = False) -> dict[str, list[str]]:
    """`prompts` checked (task names, non-empty phrasings, `{caption}` in text-to-audio ones) and copied; with
    `complete`, every prompted task (`"captioning"`, `"classification"`, `"text_to_audio"`) must be there."""
    if not isinstance(prompts, Mapping):
        raise TypeError(f"`{name}` must map task names to lists of prompts, got {type(prompts).__name__}.")
    checked = {}
    for task, phrasings in prompts.items():
        check_choice(task, f"{name} key", _PROMPTED_TASKS)
        if isinstance(phrasings, str) or not isinstance(phrasings, Sequence) or not phrasings:
            raise ValueError(f"`{name}[{task!r}]` must be a non-empty list of strings, got {phrasings!r:.80}.")
        checked[task] = [check_text(p, f"{name}[{task!r}][{i}]") for i, p in enumerate(phrasings)]
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
    missing = [task for task in _PROMPTED_TASKS if task not in checked]
    if complete and missing:
        raise ValueError(f"`{name}` must give phrasings for {list(_PROMPTED_TASKS)}; missing {missing}.")
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
    system = check_text(system, "system")
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
    chat_template: ChatTemplate | None = None,
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
        chat_template (`Callable`, *optional*, defaults to `vicuna_v11_prompt`): wraps the user and assistant
            segments in a chat template, `chat_template(user_segments, assistant_segments) -> tuple[Segment]`;
            pass `AudioTokenProcessor.chat_segments` to render through an LLM tokenizer's own template.

    Returns:
        `TaskExample` whose `task` is `task`; only the assistant turn and its end-of-turn token are loss targets.
    """
    check_choice(task, "task", LM_MSN_CHAT_TASKS)
    codes = check_codes(codes)
    check_rng(rng)
    phrasings = dict(_default_prompts())
    if prompts is not None:
        phrasings.update(check_lm_msn_prompts(prompts))

    if task == "question_answering":
        instruction = check_text(instruction, "instruction")
        answer = check_text(response, "response")
        user = audio_question(codes, instruction)
        assistant = [text_segment(answer)]
    elif task == "text_to_audio":
        caption = check_text(caption, "caption")
        user = [text_segment(rng.choice(phrasings[task]).format(caption=caption))]
        assistant = [audio_segment(codes)]
    else:
        answer = check_text(caption, "caption") if task == "captioning" else check_label(label)
        user = audio_question(codes, rng.choice(phrasings[task]))
        assistant = [text_segment(answer)]
    wrap = vicuna_v11_prompt if chat_template is None else chat_template
    return TaskExample(task, tuple(wrap(user, assistant)))


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
