"""processing/tasks/examples.py: segments, examples, their dict round trip, validation, row_rng."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from soundlm.processing.tasks import (
    EOS_TOKEN,
    Segment,
    TaskExample,
    audio_segment,
    audio_token,
    eos_segment,
    lm_msn_chat_example,
    lm_msn_pretraining_example,
    row_rng,
    text_segment,
)

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
