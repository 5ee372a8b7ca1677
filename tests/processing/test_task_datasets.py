"""Whole-dataset task builders: exact examples for a fixed seed, independence from row order, MINT stages."""

from __future__ import annotations

import datasets
import pytest

from soundlm.processing.task_datasets import lm_msn_task_dataset, mint_task_dataset
from soundlm.processing.tasks import TaskExample

SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions."
)


def _rows() -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {
            "key": ["k0", "k1", "k2", "k3"],
            "source_id": ["m:2", "m:3", "m:4", "m:5"],
            "audio_path": ["/a/0.wav", "/a/1.wav", "/a/2.wav", "/a/3.wav"],
            "sampling_rate": [16000] * 4,
            "start": [0.0, 0.0, 10.0, 0.0],
            "end": [10.0, 4.0, 20.0, 1.0],
            "duration": [10.0, 4.0, 10.0, 1.0],
            "padded": [False, True, False, True],
            "codes": [[1, 2], [3], [4, 5, 6], [7]],
            "caption": ["a dog barks", None, "rain on a roof", None],
            "label": ["dog", "piano", None, None],
            "instruction": [None, None, "Is it raining?", None],
            "response": [None, None, "Yes.", None],
            "dataset": ["audioset", "nsynth", "clotho", "unknown"],
        }
    )


def test_lm_msn_stage1_exact_strings_for_a_fixed_seed():
    result = lm_msn_task_dataset(_rows(), stage=1, seed=0)
    assert result["key"] == ["k0", "k2"]  # rows without a caption are skipped
    rendered = [TaskExample.from_dict(row).render() for row in result]
    assert rendered == ["a dog barks<soa><a_1><a_2><eoa>", "rain on a roof<soa><a_4><a_5><a_6><eoa>"]
    assert result["task"] == ["text_to_audio", "text_to_audio"]  # random.Random("0:k0").random() = 0.498 < 0.5
    assert all(segment["is_target"] for row in result for segment in row["segments"])


def test_lm_msn_stage2_every_supported_task_in_the_vicuna_template():
    result = lm_msn_task_dataset(_rows(), stage=2, seed=0)
    assert list(zip(result["key"], result["task"], strict=True)) == [
        ("k0", "captioning"), ("k0", "classification"), ("k0", "text_to_audio"),
        ("k1", "classification"),
        ("k2", "captioning"), ("k2", "question_answering"), ("k2", "text_to_audio"),
    ]
    qa = TaskExample.from_dict(result[5])
    assert qa.render() == f"{SYSTEM} USER: <soa><a_4><a_5><a_6><eoa>\nIs it raining? ASSISTANT: Yes.</s>"
    assert [s.is_target for s in qa.segments] == [False, False, False, False, True, True]
    for row in result:
        assert TaskExample.from_dict(row).render().startswith(SYSTEM + " USER: ")


def test_examples_do_not_depend_on_row_order():
    rows = _rows()
    for stage in (1, 2):
        forward = lm_msn_task_dataset(rows, stage=stage, seed=3)
        backward = lm_msn_task_dataset(rows.select([3, 2, 1, 0]), stage=stage, seed=3)
        as_set = {(r["key"], r["task"], TaskExample.from_dict(r).render()) for r in forward}
        assert as_set == {(r["key"], r["task"], TaskExample.from_dict(r).render()) for r in backward}
    other_seed = {TaskExample.from_dict(r).render() for r in lm_msn_task_dataset(rows, stage=2, seed=4)}
    assert other_seed != {TaskExample.from_dict(r).render() for r in lm_msn_task_dataset(rows, stage=2, seed=3)}


def test_mint_stages_keep_the_audio_reference():
    stage1 = mint_task_dataset(_rows(), stage=1)
    assert stage1["key"] == ["k0", "k2"] and stage1["text"] == ["a dog barks", "rain on a roof"]
    assert stage1["audio_path"] == ["/a/0.wav", "/a/2.wav"] and stage1["start"] == [0.0, 10.0]
    assert "codes" not in stage1.column_names

    stage2 = mint_task_dataset(_rows(), stage=2)
    assert [(r["key"], r["dataset"], r["instruction"], r["response"]) for r in stage2] == [
        ("k0", "audioset", "This is a sound of", "dog"),
        ("k1", "nsynth", "The most prominent instrument in this music is", "piano"),
        ("k2", "clotho", "Generate audio caption:", "rain on a roof"),
    ]  # k3's dataset has no template: skipped


def test_errors():
    with pytest.raises(ValueError, match="stage must be 1 or 2"):
        lm_msn_task_dataset(_rows(), stage=3)
    with pytest.raises(ValueError, match="no 'codes' column"):
        lm_msn_task_dataset(_rows().remove_columns("codes"), stage=1)
    with pytest.raises(ValueError, match="stage must be 1 or 2"):
        mint_task_dataset(_rows(), stage=0)
