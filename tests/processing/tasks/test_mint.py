"""processing/tasks/mint.py: the shipped templates, their JSON round trip, instruction examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soundlm.processing import tasks
from soundlm.processing.tasks import (
    MintInstructionTemplate,
    MintInstructionTemplates,
    mint_caption_pair,
    mint_instruction_example,
)
from soundlm.processing.tasks import mint as mint_module

EXPECTED_MINT_DATASETS = [
    "audioset",
    "vggsound",
    "fsd50k",
    "openmic",
    "fma",
    "music4all",
    "gtzan",
    "nsynth",
    "music4all_key",
    "wavcaps",
    "freesound",
    "clotho",
]


# ------------------------------------------------------------------------------------------------------------
# MINT
# ------------------------------------------------------------------------------------------------------------


def test_mint_caption_pair():
    assert mint_caption_pair("  a dog barks \n") == {"text": "a dog barks"}
    with pytest.raises(ValueError, match="`caption` must be a non-empty string"):
        mint_caption_pair("")
    with pytest.raises(TypeError, match="`caption` must be a str"):
        mint_caption_pair(["a dog"])


def test_mint_default_templates():
    templates = MintInstructionTemplates.default()
    assert len(templates) == 12
    assert templates.names() == EXPECTED_MINT_DATASETS
    by_instruction = {}
    for template in templates:
        by_instruction.setdefault(template.instruction, []).append(template.dataset)
    assert by_instruction["This is a sound of"] == ["audioset", "vggsound", "fsd50k"]
    assert by_instruction["Generate audio caption:"] == ["wavcaps", "freesound", "clotho"]
    assert all(t.wording == "paper" for t in templates)  # Table 1 of the MINT paper, word for word
    assert templates.get("openmic").instruction == "Identify the instruments in this segment of music:"
    assert templates.get("nsynth").instruction == "The most prominent instrument in this music is"
    assert templates.get("gtzan").instruction == "The genre of this music is"
    assert templates.get("music4all_key").instruction == "The key of this music is"
    genre = templates.get("fma").instruction
    assert templates.get("music4all").instruction == templates.get("gtzan").instruction == genre
    assert templates.get("nsynth").instruction != genre
    for template in templates:
        expected = (
            ("captioning", "caption")
            if template.dataset in {"wavcaps", "freesound", "clotho"}
            else ("classification", "label")
        )
        assert (template.task, template.target_field) == expected
    assert templates.get("Music4All_Key").display_name == "Music4All (key)"
    # Each call is a fresh copy.
    templates.add("esc50", "This is a sound of", "label")
    assert len(MintInstructionTemplates.default()) == 12


def test_mint_templates_get_add_and_errors():
    templates = MintInstructionTemplates.default()
    assert templates.get("AudioSet") is templates.get(" audioset ")
    with pytest.raises(ValueError, match=r"Unknown MINT dataset 'esc50'; known datasets: \['audioset', .*'clotho'\]"):
        templates.get("esc50")
    added = templates.add("ESC50", "This is a sound of", "label")
    assert added == MintInstructionTemplate("esc50", "ESC50", "classification", "This is a sound of", "label", "ours")
    assert len(templates) == 13 and templates.names()[-1] == "esc50" and "Esc50" in templates
    with pytest.raises(ValueError, match="'esc50' already has a template .*overwrite=True"):
        templates.add("esc50", "Another", "label")
    templates.add("esc50", "Another", "label", overwrite=True)
    assert templates.get("esc50").instruction == "Another" and len(templates) == 13
    assert templates.add("audiocaps", "Generate audio caption:", "caption").task == "captioning"
    with pytest.raises(ValueError, match="`task` is required when `target_field` is 'answer'"):
        templates.add("clothoaqa", "Answer:", "answer")
    assert templates.add("clothoaqa", "Answer:", "answer", task="question_answering").target_field == "answer"
    with pytest.raises(ValueError, match="`task` must be one of"):
        templates.add("x", "y", "label", task="retrieval")
    with pytest.raises(ValueError, match="`instruction` must be a non-empty string"):
        templates.add("x", " ", "label")
    with pytest.raises(ValueError, match="twice"):
        MintInstructionTemplates([templates.get("fma"), templates.get("fma")])


def test_mint_templates_json_round_trip(tmp_path):
    templates = MintInstructionTemplates.default()
    shipped = tmp_path / "shipped.json"
    templates.to_json(shipped)
    # to_json writes the shipped layout, so the shipped file is exactly what the class would write.
    assert shipped.read_text() == (Path(tasks.__file__).parents[1] / "templates" / "mint_instructions.json").read_text()
    templates.add("esc50", "This is a sound of", "label", display_name="ESC-50")
    path = tmp_path / "templates.json"
    templates.to_json(path)
    restored = MintInstructionTemplates.from_json(path)
    assert restored == templates
    assert restored.get("esc50").display_name == "ESC-50"
    path.write_text(json.dumps([{"dataset": "a", "task": "captioning", "instruction": "i", "target_field": "caption"}]))
    minimal = MintInstructionTemplates.from_json(path).get("a")
    assert (minimal.display_name, minimal.wording) == ("a", "ours")
    path.write_text(json.dumps([{"dataset": "a", "instruction": "i", "target_field": "caption", "extra": 1}]))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['extra'\] / missing key\(s\) \['task'\]"):
        MintInstructionTemplates.from_json(path)
    path.write_text(json.dumps({"dataset": "a"}))
    with pytest.raises(ValueError, match="JSON list"):
        MintInstructionTemplates.from_json(path)


def test_mint_instruction_example():
    assert mint_instruction_example({"dataset": "AudioSet", "label": ["Dog", "Bark"], "audio": "a.wav"}) == {
        "task": "classification",
        "dataset": "audioset",
        "instruction": "This is a sound of",
        "response": "Dog, Bark",
    }
    assert mint_instruction_example({"dataset": "clotho", "caption": " Rain falls. "}) == {
        "task": "captioning",
        "dataset": "clotho",
        "instruction": "Generate audio caption:",
        "response": "Rain falls.",
    }
    custom = MintInstructionTemplates()
    custom.add("esc50", "Name the sound:", "label")
    assert mint_instruction_example({"dataset": "esc50", "label": "dog"}, custom)["instruction"] == "Name the sound:"
    with pytest.raises(ValueError, match=r"Unknown MINT dataset 'audioset'; known datasets: \['esc50'\]"):
        mint_instruction_example({"dataset": "audioset", "label": "dog"}, custom)


def test_mint_instruction_example_errors():
    with pytest.raises(ValueError, match=r"Unknown MINT dataset 'esc50'; known datasets: \['audioset'"):
        mint_instruction_example({"dataset": "esc50", "label": "dog"})
    with pytest.raises(ValueError, match="no 'dataset' field"):
        mint_instruction_example({"label": "dog"})
    with pytest.raises(ValueError, match="dataset 'gtzan' has no 'label' field"):
        mint_instruction_example({"dataset": "gtzan", "caption": "jazz"})
    with pytest.raises(ValueError, match="dataset 'clotho' has no 'caption' field"):
        mint_instruction_example({"dataset": "clotho", "caption": None})
    with pytest.raises(TypeError, match=r"`row\['caption'\]` must be a str, got list"):
        mint_instruction_example({"dataset": "clotho", "caption": ["one", "two"]})
    with pytest.raises(ValueError, match=r"`row\['label'\]` must be a non-empty string"):
        mint_instruction_example({"dataset": "fma", "label": ""})
    with pytest.raises(TypeError, match="`templates` must be a MintInstructionTemplates"):
        mint_instruction_example({"dataset": "fma", "label": "rock"}, templates={"fma": "x"})


def test_docstring_examples_run():
    import doctest

    results = doctest.testmod(mint_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert results.attempted >= 3 and results.failed == 0
