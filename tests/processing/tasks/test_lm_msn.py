"""processing/tasks/lm_msn.py: exact renders for fixed seeds, loss-target flags, prompts, bad input."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from soundlm.processing.tasks import (
    LM_MSN_CHAT_TASKS,
    VICUNA_V11_SYSTEM,
    TaskExample,
    audio_segment,
    eos_segment,
    lm_msn_chat_example,
    lm_msn_chat_tasks,
    lm_msn_pretraining_example,
    load_lm_msn_prompts,
    row_rng,
    text_segment,
    vicuna_v11_prompt,
)

SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


def flags(example: TaskExample) -> list[tuple[str, bool]]:
    return [(segment.kind, segment.is_target) for segment in example.segments]


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
