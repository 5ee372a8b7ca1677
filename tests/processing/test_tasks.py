"""Tests of the task builders: exact renders for fixed seeds, loss-target flags, templates, round trips, bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from soundlm.processing import tasks
from soundlm.processing.tasks import (
    EOS_TOKEN,
    LM_MSN_CHAT_TASKS,
    VICUNA_V11_SYSTEM,
    MintInstructionTemplate,
    MintInstructionTemplates,
    Segment,
    TaskExample,
    audio_segment,
    audio_token,
    eos_segment,
    lm_msn_chat_example,
    lm_msn_chat_tasks,
    lm_msn_pretraining_example,
    load_lm_msn_prompts,
    mint_caption_pair,
    mint_instruction_example,
    row_rng,
    text_segment,
    vicuna_v11_prompt,
)

SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
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


def flags(example: TaskExample) -> list[tuple[str, bool]]:
    return [(segment.kind, segment.is_target) for segment in example.segments]


# ------------------------------------------------------------------------------------------------------------
# Segments and examples
# ------------------------------------------------------------------------------------------------------------


def test_audio_token_and_segment_render():
    assert audio_token(17) == "<a_17>"
    assert audio_segment([3, 1]).render() == "<soa><a_3><a_1><eoa>"
    assert text_segment("hi ").render() == "hi "
    assert eos_segment().render() == EOS_TOKEN == "</s>"


def test_codes_from_arrays_and_tensors_become_python_int_tuples():
    for codes in ([4, 0, 8195], (4, 0, 8195), np.array([4, 0, 8195], dtype=np.int64), torch.tensor([4, 0, 8195])):
        segment = audio_segment(codes)
        assert segment.codes == (4, 0, 8195)
        assert all(type(code) is int for code in segment.codes)
    assert audio_segment([np.int32(5)]).codes == (5,)


def test_caption_that_looks_like_audio_tokens_stays_text():
    caption = "<soa><a_17>"
    example = lm_msn_pretraining_example([2], caption, row_rng(0, "clip1"))
    text_segments = [s for s in example.segments if s.kind == "text"]
    audio_segments = [s for s in example.segments if s.kind == "audio"]
    assert [s.text for s in text_segments] == ["<soa><a_17>"]
    assert [s.codes for s in audio_segments] == [(2,)]
    chat = lm_msn_chat_example("captioning", [2], caption=caption, rng=row_rng(0, "clip1"))
    assert [s.codes for s in chat.segments if s.kind == "audio"] == [(2,)]
    assert chat.segments[-2] == Segment("text", text="<soa><a_17>", is_target=True)
    round_tripped = TaskExample.from_dict(json.loads(json.dumps(chat.to_dict())))
    assert [s.codes for s in round_tripped.segments if s.kind == "audio"] == [(2,)]


def test_task_example_dict_round_trip_through_json():
    example = lm_msn_chat_example(
        "classification", np.array([7, 0, 7]), label=["dog", "bark"], rng=row_rng(3, "x"), prompts=None
    )
    data = example.to_dict()
    assert data["task"] == "classification"
    assert [set(s) for s in data["segments"]] == [{"kind", "text", "codes", "is_target"}] * len(data["segments"])
    assert data["segments"][1] == {"kind": "audio", "text": "", "codes": [7, 0, 7], "is_target": False}
    restored = TaskExample.from_dict(json.loads(json.dumps(data)))
    assert restored == example
    assert restored.render() == example.render()


def test_from_dict_accepts_arrow_nulls_and_rejects_bad_segments():
    restored = TaskExample.from_dict(
        {"task": "t", "segments": [{"kind": "text", "text": "a", "codes": None}, {"kind": "eos", "text": None}]}
    )
    assert restored.segments == (Segment("text", text="a"), Segment("eos"))
    with pytest.raises(ValueError, match="missing key"):
        TaskExample.from_dict({"segments": []})
    with pytest.raises(ValueError, match="'colour'"):
        TaskExample.from_dict({"task": "t", "segments": [{"kind": "text", "text": "a", "colour": 1}]})
    with pytest.raises(ValueError, match="`kind` must be one of"):
        TaskExample.from_dict({"task": "t", "segments": [{"kind": "image"}]})


def test_segment_validation():
    with pytest.raises(ValueError, match="Only audio segments carry codes"):
        Segment("text", text="a", codes=(1,))
    with pytest.raises(ValueError, match="non-empty text"):
        Segment("text", text="")
    with pytest.raises(ValueError, match="audio segment carries no text"):
        Segment("audio", text="a", codes=(1,))
    with pytest.raises(TypeError, match="`is_target` must be a bool"):
        Segment("eos", is_target=1)
    with pytest.raises(ValueError, match="at least one segment"):
        TaskExample("t", ())
    with pytest.raises(TypeError, match=r"segments\[0\]"):
        TaskExample("t", ("text",))


@pytest.mark.parametrize(
    ("codes", "error", "message"),
    [
        ([], ValueError, "at least one code"),
        (np.array([], dtype=np.int64), ValueError, "at least one code"),
        ([3, -1], ValueError, r"`codes\[1\]` must be a non-negative codebook index, got -1"),
        ([3, 1.0], TypeError, r"`codes\[1\]` must be an int .* float"),
        ([True], TypeError, r"`codes\[0\]` must be an int .* bool"),
        ("12", TypeError, "1-D sequence of ints"),
        (np.zeros((2, 3), dtype=np.int64), ValueError, r"1-D .* shape \(2, 3\)"),
        (None, ValueError, "`codes` is required"),
    ],
)
def test_bad_codes(codes, error, message):
    with pytest.raises(error, match=message):
        lm_msn_pretraining_example(codes, "a dog barks", random.Random(0))
    with pytest.raises(error, match=message):
        lm_msn_chat_example("captioning", codes, caption="a dog barks", rng=random.Random(0))


# ------------------------------------------------------------------------------------------------------------
# Randomness
# ------------------------------------------------------------------------------------------------------------


def test_row_rng_depends_only_on_seed_and_key():
    keys = [f"clip{i}" for i in range(20)]
    forward = {key: row_rng(7, key).random() for key in keys}
    backward = {key: row_rng(7, key).random() for key in reversed(keys)}
    assert forward == backward
    assert forward["clip0"] == random.Random("7:clip0").random()
    assert len(set(forward.values())) == len(keys)
    assert row_rng(8, "clip0").random() != forward["clip0"]
    with pytest.raises(TypeError, match="`seed` must be an int"):
        row_rng("7", "clip0")
    with pytest.raises(TypeError, match="`key` must be a str"):
        row_rng(7, 3)
    with pytest.raises(ValueError, match="`key` must be a non-empty"):
        row_rng(7, "")


def test_row_rng_draws_do_not_depend_on_row_order():
    rows = [(f"clip{i}", [i, i + 1], f"caption {i}") for i in range(16)]

    def build(order):
        return {key: lm_msn_pretraining_example(codes, cap, row_rng(0, key)).render() for key, codes, cap in order}

    assert build(rows) == build(list(reversed(rows)))


# ------------------------------------------------------------------------------------------------------------
# LM-MSN stage 1
# ------------------------------------------------------------------------------------------------------------


def test_pretraining_exact_renders_for_fixed_seeds():
    # row_rng(seed, "clip1").random(): 0 -> >= 0.5, 1 -> < 0.5 (computed once and fixed here).
    audio_first = lm_msn_pretraining_example([3, 1], "a dog barks", row_rng(0, "clip1"))
    assert audio_first.task == "audio_to_text"
    assert audio_first.render() == "<soa><a_3><a_1><eoa>a dog barks"
    text_first = lm_msn_pretraining_example([3, 1], "a dog barks", row_rng(1, "clip1"))
    assert text_first.task == "text_to_audio"
    assert text_first.render() == "a dog barks<soa><a_3><a_1><eoa>"


def test_pretraining_uses_one_draw_with_threshold_half():
    class FixedRandom(random.Random):
        def __init__(self, value):
            super().__init__(0)
            self.value = value
            self.calls = 0

        def random(self):
            self.calls += 1
            return self.value

    for value, task in [(0.0, "text_to_audio"), (0.4999, "text_to_audio"), (0.5, "audio_to_text")]:
        rng = FixedRandom(value)
        assert lm_msn_pretraining_example([1], "x", rng).task == task
        assert rng.calls == 1


def test_pretraining_both_orders_appear_and_are_balanced():
    tasks_drawn = [lm_msn_pretraining_example([1], "x", row_rng(seed, "clip")).task for seed in range(400)]
    assert set(tasks_drawn) == {"text_to_audio", "audio_to_text"}
    assert 150 < tasks_drawn.count("text_to_audio") < 250


def test_pretraining_targets():
    text_first = lm_msn_pretraining_example([3], " a dog barks ", row_rng(1, "clip1"))
    assert flags(text_first) == [("text", True), ("audio", True)]
    assert text_first.segments[0].text == "a dog barks"  # stripped
    second = lm_msn_pretraining_example([3], "a dog barks", row_rng(1, "clip1"), targets="second")
    assert flags(second) == [("text", False), ("audio", True)]
    second = lm_msn_pretraining_example([3], "a dog barks", row_rng(0, "clip1"), targets="second")
    assert flags(second) == [("audio", False), ("text", True)]
    with pytest.raises(ValueError, match=r"`targets` must be one of \['all', 'second'\], got 'first'"):
        lm_msn_pretraining_example([3], "a dog barks", random.Random(0), targets="first")


@pytest.mark.parametrize(
    ("caption", "error", "message"),
    [
        ("", ValueError, "`caption` must be a non-empty string"),
        ("   ", ValueError, "`caption` must be a non-empty string"),
        (None, ValueError, "`caption` is required"),
        (3, TypeError, "`caption` must be a str, got int"),
    ],
)
def test_pretraining_bad_caption(caption, error, message):
    with pytest.raises(error, match=message):
        lm_msn_pretraining_example([1], caption, random.Random(0))


def test_pretraining_rejects_a_non_random_rng():
    with pytest.raises(TypeError, match="`rng` must be a random.Random"):
        lm_msn_pretraining_example([1], "x", np.random.default_rng(0))


# ------------------------------------------------------------------------------------------------------------
# LM-MSN stage 2
# ------------------------------------------------------------------------------------------------------------


def test_vicuna_system_prompt_is_fastchat_v11():
    assert VICUNA_V11_SYSTEM == SYSTEM


def test_vicuna_captioning_render_exact():
    example = lm_msn_chat_example(
        "captioning",
        [1, 2],
        caption="a dog barks",
        rng=random.Random(0),
        prompts={"captioning": ["Describe this sound."]},
    )
    assert example.task == "captioning"
    assert example.render() == (f"{SYSTEM} USER: <soa><a_1><a_2><eoa>\nDescribe this sound. ASSISTANT: a dog barks</s>")
    assert flags(example) == [
        ("text", False),
        ("audio", False),
        ("text", False),
        ("text", False),
        ("text", True),
        ("eos", True),
    ]
    assert example.segments[2].text == "\nDescribe this sound."
    assert example.segments[3].text == " ASSISTANT: "


def test_chat_exact_renders_with_shipped_prompts_for_fixed_seed():
    # Which phrasing each task draws from row_rng(0, "clip1"), computed once and fixed here.
    def build(task):
        return lm_msn_chat_example(
            task,
            [1, 2],
            caption="a dog barks",
            label=["dog", "bark"],
            instruction="What animal is it?",
            response="A dog.",
            rng=row_rng(0, "clip1"),
        ).render()

    head = f"{SYSTEM} USER: "
    assert build("captioning") == (
        head + "<soa><a_1><a_2><eoa>\nWrite a short caption for this audio. ASSISTANT: a dog barks</s>"
    )
    assert build("classification") == (
        head + "<soa><a_1><a_2><eoa>\nWhat is the label of this sound? Answer with the label only."
        " ASSISTANT: dog, bark</s>"
    )
    assert build("text_to_audio") == (
        head + "Generate a sound that matches this description: a dog barks ASSISTANT: <soa><a_1><a_2><eoa></s>"
    )
    assert build("question_answering") == (head + "<soa><a_1><a_2><eoa>\nWhat animal is it? ASSISTANT: A dog.</s>")


def test_chat_prompt_is_drawn_with_rng_choice():
    phrasings = ["P0", "P1", "P2", "P3"]
    for seed in range(10):
        expected = random.Random(seed).choice(phrasings)
        example = lm_msn_chat_example(
            "captioning", [1], caption="c", rng=random.Random(seed), prompts={"captioning": phrasings}
        )
        assert example.segments[2].text == "\n" + expected
    drawn = {
        lm_msn_chat_example("captioning", [1], caption="c", rng=row_rng(s, "k"), prompts={"captioning": phrasings})
        .segments[2]
        .text
        for s in range(50)
    }
    assert drawn == {"\n" + p for p in phrasings}


def test_chat_target_flags_per_task():
    common = dict(caption="a cat", label="cat", instruction="Which animal?", response="A cat.", rng=random.Random(1))
    expected = {
        "captioning": [("text", False), ("audio", False), ("text", False), ("text", False), ("text", True)],
        "question_answering": [("text", False), ("audio", False), ("text", False), ("text", False), ("text", True)],
        "classification": [("text", False), ("audio", False), ("text", False), ("text", False), ("text", True)],
        "text_to_audio": [("text", False), ("text", False), ("text", False), ("audio", True)],
    }
    for task in LM_MSN_CHAT_TASKS:
        example = lm_msn_chat_example(task, [5, 6], **common)
        assert flags(example) == expected[task] + [("eos", True)], task
        assert example.task == task
        targets = "".join(s.render() for s in example.segments if s.is_target)
        assert (
            targets
            == {
                "captioning": "a cat</s>",
                "question_answering": "A cat.</s>",
                "classification": "cat</s>",
                "text_to_audio": "<soa><a_5><a_6><eoa></s>",
            }[task]
        )


def test_text_to_audio_prompt_keeps_braces_in_caption():
    example = lm_msn_chat_example(
        "text_to_audio",
        [1],
        caption="a {loud} bang",
        rng=random.Random(0),
        prompts={"text_to_audio": ["Make {caption}"]},
    )
    assert example.segments[1].text == "Make a {loud} bang"


def test_chat_validation():
    with pytest.raises(ValueError, match=r"`task` must be one of \['captioning', .*got 'translation'"):
        lm_msn_chat_example("translation", [1], caption="c", rng=random.Random(0))
    with pytest.raises(ValueError, match="`caption` is required"):
        lm_msn_chat_example("captioning", [1], label="dog", rng=random.Random(0))
    with pytest.raises(ValueError, match="`caption` is required"):
        lm_msn_chat_example("text_to_audio", [1], rng=random.Random(0))
    with pytest.raises(ValueError, match="`label` is required"):
        lm_msn_chat_example("classification", [1], caption="c", rng=random.Random(0))
    with pytest.raises(ValueError, match="`response` is required"):
        lm_msn_chat_example("question_answering", [1], instruction="q?", rng=random.Random(0))
    with pytest.raises(ValueError, match="`instruction` must be a non-empty string"):
        lm_msn_chat_example("question_answering", [1], instruction=" ", response="a", rng=random.Random(0))
    with pytest.raises(ValueError, match=r"`label\[1\]` must be a non-empty string"):
        lm_msn_chat_example("classification", [1], label=["dog", ""], rng=random.Random(0))
    with pytest.raises(ValueError, match="at least one label"):
        lm_msn_chat_example("classification", [1], label=[], rng=random.Random(0))
    with pytest.raises(ValueError, match="`codes` is required"):
        lm_msn_chat_example("captioning", caption="c", rng=random.Random(0))
    with pytest.raises(TypeError, match="rng"):
        lm_msn_chat_example("captioning", [1], caption="c")


def test_bad_prompts():
    with pytest.raises(ValueError, match=r"must contain '\{caption\}'"):
        lm_msn_chat_example(
            "text_to_audio", [1], caption="c", rng=random.Random(0), prompts={"text_to_audio": ["Make a sound"]}
        )
    with pytest.raises(ValueError, match="only field is '{caption}'"):
        lm_msn_chat_example(
            "text_to_audio", [1], caption="c", rng=random.Random(0), prompts={"text_to_audio": ["{caption} {x}"]}
        )
    with pytest.raises(ValueError, match="prompts key"):
        lm_msn_chat_example("captioning", [1], caption="c", rng=random.Random(0), prompts={"captions": ["x"]})
    with pytest.raises(ValueError, match="non-empty list of strings"):
        lm_msn_chat_example("captioning", [1], caption="c", rng=random.Random(0), prompts={"captioning": []})


def test_shipped_prompts_file():
    prompts = load_lm_msn_prompts()
    assert set(prompts) == {"captioning", "classification", "text_to_audio"}
    for phrasings in prompts.values():
        assert 2 <= len(phrasings) <= 4
    assert prompts["captioning"][0] == "Describe this sound."
    assert all("{caption}" in p for p in prompts["text_to_audio"])


def test_load_prompts_from_file(tmp_path):
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps({"captioning": ["Caption it."]}))
    assert load_lm_msn_prompts(path) == {"captioning": ["Caption it."]}
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_lm_msn_prompts(path)


def test_vicuna_generation_prompt_ends_without_trailing_space():
    segments = vicuna_v11_prompt([audio_segment([4], is_target=True), text_segment("\nDescribe this sound.")])
    rendered = "".join(s.render() for s in segments)
    assert rendered == f"{SYSTEM} USER: <soa><a_4><eoa>\nDescribe this sound. ASSISTANT:"
    assert not any(s.is_target for s in segments)
    with pytest.raises(ValueError, match="`user_segments` must hold at least one segment"):
        vicuna_v11_prompt([])
    with pytest.raises(ValueError, match="eos segment"):
        vicuna_v11_prompt([text_segment("hi")], [text_segment("a"), eos_segment()])


def test_lm_msn_chat_tasks():
    assert lm_msn_chat_tasks({"caption": "a dog"}) == ["captioning", "text_to_audio"]
    assert lm_msn_chat_tasks({"label": ["dog"]}) == ["classification"]
    assert lm_msn_chat_tasks({"instruction": "q?", "response": "a"}) == ["question_answering"]
    assert lm_msn_chat_tasks({"instruction": "q?"}) == []
    full = {"caption": "c", "label": "l", "instruction": "q?", "response": "a", "codes": [1]}
    assert lm_msn_chat_tasks(full) == ["captioning", "question_answering", "classification", "text_to_audio"]
    assert lm_msn_chat_tasks({"caption": "  ", "label": [], "instruction": None, "response": "a"}) == []
    with pytest.raises(TypeError, match="Row field `caption` must be a str, got int"):
        lm_msn_chat_tasks({"caption": 3})
    with pytest.raises(TypeError, match="`row` must be a mapping"):
        lm_msn_chat_tasks(["caption"])
    # Every task it names can be built from the same row.
    for task in lm_msn_chat_tasks(full):
        fields = {k: full[k] for k in ("caption", "label", "instruction", "response")}
        assert lm_msn_chat_example(task, full["codes"], **fields, rng=random.Random(0)).task == task


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
    assert {t.dataset for t in templates if t.wording == "paper"} == {
        "audioset",
        "vggsound",
        "fsd50k",
        "wavcaps",
        "freesound",
        "clotho",
    }
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
    assert shipped.read_text() == (Path(tasks.__file__).parent / "templates" / "mint_instructions.json").read_text()
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

    results = doctest.testmod(tasks, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert results.attempted >= 3 and results.failed == 0
