# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""MINT task builders: stage-1 (audio, caption) pairs and stage-2 instruction examples.

* **MINT stage 2 instructions.** The twelve templates of the MINT paper's Table 1 ship in
  `templates/mint_instructions.json`, one per dataset, in the paper's exact wording (`"wording": "paper"`):
  "This is a sound of" (AudioSet, VGGSound, FSD50K), "Identify the instruments in this segment of music:"
  (OpenMIC), "The genre of this music is" (FMA, Music4All genre, GTZAN), "The most prominent instrument in this
  music is" (NSynth), "The key of this music is" (Music4All key), "Generate audio caption:" (WavCaps, FreeSound,
  Clotho). Templates added for other data say `"wording": "ours"` unless they reuse the paper's words.
  `MintInstructionTemplates` loads, extends and saves the set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from .examples import check_choice, check_label, check_text

__all__ = [
    "MINT_TASKS",
    "MintInstructionTemplate",
    "MintInstructionTemplates",
    "mint_caption_pair",
    "mint_instruction_example",
]

MINT_TASKS = ("classification", "captioning", "question_answering")
_MINT_WORDINGS = ("paper", "ours")
_MINT_TEMPLATE_KEYS = ("dataset", "display_name", "task", "instruction", "target_field", "wording")

_TEMPLATES_PACKAGE = "soundlm.processing"
_MINT_FILE = "mint_instructions.json"


def mint_caption_pair(caption: str) -> dict[str, str]:
    """MINT stage-1 text of an audio-caption pair (the row itself references the audio).

    Args:
        caption (`str`): the caption; stripped, must not be empty.

    Returns:
        `dict`: `{"text": caption}`.
    """
    return {"text": check_text(caption, "caption")}


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
        dataset = check_text(self.dataset, "dataset").lower()
        object.__setattr__(self, "dataset", dataset)
        object.__setattr__(self, "display_name", check_text(self.display_name, "display_name"))
        check_choice(self.task, "task", MINT_TASKS)
        object.__setattr__(self, "instruction", check_text(self.instruction, "instruction"))
        object.__setattr__(self, "target_field", check_text(self.target_field, "target_field"))
        check_choice(self.wording, "wording", _MINT_WORDINGS)


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
    template = templates.get(check_text(row["dataset"], "row['dataset']"))
    field_name = template.target_field
    if field_name not in row or row[field_name] is None:
        raise ValueError(
            f"`row` of dataset {template.dataset!r} has no {field_name!r} field (the response of a "
            f"{template.task} template); got keys {sorted(row)}."
        )
    # Only class labels may be lists (multi-label data); a list of captions has no single right answer.
    check = check_label if template.task == "classification" else check_text
    response = check(row[field_name], f"row[{field_name!r}]")
    return {
        "task": template.task,
        "dataset": template.dataset,
        "instruction": template.instruction,
        "response": response,
    }
