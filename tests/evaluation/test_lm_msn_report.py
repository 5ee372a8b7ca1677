"""The LM-MSN report end to end on real clips with tiny models: captions, label guessing, text-to-audio WAVs."""

from __future__ import annotations

import csv
import json

import pytest
import soundfile as sf
import torch
from helpers import save_tiny_audio_llm, tiny_config_kwargs

from soundlm.evaluation.lm_msn_report import (
    answer_nll,
    changed_share,
    label_ranking,
    lm_msn_report,
    nearest_code_histogram_labels,
    paired_comparison,
    sign_test_p,
    swapped_audio,
)
from soundlm.processing.audio_datasets import load_audio_dataset
from soundlm.processing.pretokenized import pretokenize


def test_report_on_held_out_clips(tmp_path, real_clips):
    from soundlm import MSNTokenizerConfig, MSNTokenizerModel

    torch.manual_seed(0)
    sound = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs(codebook_size=16))).eval()
    sound.save_pretrained(tmp_path / "sound")
    data = tmp_path / "data"
    data.mkdir()
    rows = []
    captions = ["a voice says front left", "a voice says front right", "a voice says centre", "a noise"]
    for index, clip in enumerate(real_clips):
        sf.write(data / f"clip{index}.wav", clip, 8000)
        rows.append({"path": f"clip{index}.wav", "caption": captions[index], "label": f"class{index % 2}",
                     "split": "test" if index >= 2 else "train"})
    with open(data / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    pretokenize(load_audio_dataset(data / "manifest.csv", window_seconds=1.0), sound, tmp_path / "pretok",
                progress=False)

    adapter, base, _ = save_tiny_audio_llm(tmp_path, codebook_size=16)
    result = lm_msn_report(str(adapter), str(tmp_path / "pretok"), str(tmp_path / "sound"), str(tmp_path / "out"),
                           base_model=str(base), num_sounds=2, num_steps=1)
    assert result["clips"] == 2
    assert [c["reference"] for c in result["captions"]] == captions[2:]
    assert "sentence_similarity" in result["caption_scores"]
    guess = result["label_guessing"]
    assert guess["chance"] == 0.5 and len(guess["outputs"]) == 2
    assert len(result["sounds"]) == 2
    for sound_item in result["sounds"]:
        audio, rate = sf.read(sound_item["wav"])
        assert rate == 8000 and len(audio) == sound_item["codes"] * sound.config.hop_length
        assert 1 <= sound_item["codes"] <= 63  # capped at the 1-s decoder window
    control = result["listening_control"]
    assert set(control) == {"captions", "labels"} and 0 <= control["labels"]["changed"] <= 1
    assert "sentence_similarity" in control["captions"]
    for key in ("captions", "labels"):
        paired = control[key]["paired"]
        assert paired["own_better"] + paired["swapped_better"] <= 1 and 0 < paired["sign_test_p"] <= 1
        nll = control[key]["answer_nll"]
        assert nll["own"] > 0 and nll["swapped"] > 0 and 0 <= nll["own_lower"] <= 1 and 0 < nll["sign_test_p"] <= 1
    assert 0 <= guess["code_histogram_1nn"] <= 1
    ranking = result["label_ranking"]
    assert ranking["candidates"] == 2 and set(ranking["scales"]) == {"1", "2"}
    assert ranking["floors"] == {"top1": guess["majority_accuracy"], "top5": 1.0}  # two labels: both in the top 5
    for entry in ranking["scales"].values():  # two candidates: each label is in every clip's top 5
        assert entry["top5_accuracy"] == 1.0 and 0 <= entry["accuracy"] <= 1 and 0 <= entry["swapped_accuracy"] <= 1
        assert entry["most_frequent"] in ("class0", "class1") and "paired" in entry
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Label guessing" in report and "Text to audio" in report and "Listening control" in report
    assert "teacher-forced loss" in report and "what the codes alone tell" in report and "| own better |" in report
    assert "Label ranking (a closed-set choice among the 2 training labels" in report
    assert "floors from the training prior alone" in report
    assert json.loads((tmp_path / "out" / "report.json").read_text())["clips"] == 2
    assert "plain_greedy" not in result and guess["distinct"] in (1, 2) and result["caption_answers"]["distinct"]

    # with audio guidance: the guided answers, and the plain greedy ones scored beside them (the same as above)
    guided = lm_msn_report(str(adapter), str(tmp_path / "pretok"), None, str(tmp_path / "guided"),
                           base_model=str(base), num_sounds=0, listening_control=False, audio_guidance_scale=3.0)
    plain = guided["plain_greedy"]
    assert plain["labels"]["accuracy"] == guess["accuracy"]
    assert plain["labels"]["distinct"] == guess["distinct"]
    assert plain["captions"]["sentence_similarity"] == pytest.approx(result["caption_scores"]["sentence_similarity"])
    assert guided["audio_guidance_scale"] == 3.0 and "listening_control" not in guided
    assert set(guided["label_ranking"]["scales"]) == {"1", "2", "3"}
    assert "swapped_accuracy" not in guided["label_ranking"]["scales"]["3"]  # no listening control asked for
    report = (tmp_path / "guided" / "report.md").read_text()
    assert "greedy with audio guidance w = 3" in report and "| plain greedy |" in report


def test_swapped_audio_gives_no_clip_its_own_codes_and_changed_share_counts_changes():
    rows = [{"codes": [i], "caption": f"c{i}"} for i in range(5)]
    swapped = swapped_audio(rows)
    assert [r["caption"] for r in swapped] == [r["caption"] for r in rows]
    assert all(s["codes"] != r["codes"] for s, r in zip(swapped, rows))
    assert sorted(s["codes"][0] for s in swapped) == list(range(5))
    assert changed_share(["a dog", "Rain ", "x"], ["a dog", "rain", "y"]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="same length"):
        changed_share(["a"], [])


def test_answer_nll_is_the_causal_lm_loss_of_each_answer_alone(tmp_path):
    from soundlm.modeling.lm_msn import load_audio_llm
    from soundlm.processing.tasks import TaskExample, audio_segment, text_segment

    adapter, base, _ = save_tiny_audio_llm(tmp_path, codebook_size=16)
    model, processor = load_audio_llm(str(adapter), base_model=str(base))
    model.eval()
    rows = [{"codes": [1, 2, 3, 4, 5]}, {"codes": [7, 7]}, {"codes": [0, 15, 3]}]
    references = ["a dog barks twice", "rain", "a short tone"]
    batched = answer_nll(model, processor, rows, "What is it?", references, batch_size=2)  # padded batches
    for row, reference, value in zip(rows, references, batched):
        example = TaskExample("answer", processor.chat_segments(
            [audio_segment(row["codes"]), text_segment("\nWhat is it?")], [text_segment(reference)]))
        batch = processor([example])
        with torch.no_grad():
            expected = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             labels=batch["labels"]).loss
        assert value == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="same length"):
        answer_nll(model, processor, rows, "What is it?", references[:2], batch_size=2)


def test_label_ranking_picks_the_argmax_of_score_answers_at_each_guidance_scale(tmp_path):
    from soundlm.modeling.lm_msn import load_audio_llm, score_answers
    from soundlm.processing.tasks import audio_segment, text_segment

    torch.manual_seed(0)
    adapter, base, _ = save_tiny_audio_llm(tmp_path, codebook_size=16)
    model, processor = load_audio_llm(str(adapter), base_model=str(base))
    model.eval()
    candidates = ["dog", "rain", "a short tone", "engine"]
    rows = [{"codes": [1, 2, 3, 4, 5], "label": "rain"}, {"codes": [7, 7], "label": "dog"},
            {"codes": [0, 15, 3], "label": "engine"}, {"codes": [9], "label": "not a candidate"}]
    questions = [[audio_segment(row["codes"]), text_segment("\nWhat is it?")] for row in rows]
    result = label_ranking(model, processor, rows, "What is it?", candidates, scales=(1.0, 2.5))
    for scale in (1.0, 2.5):
        picks = score_answers(model, processor, questions, candidates, audio_guidance_scale=scale).argmax(-1)
        entry = result["scales"][f"{scale:g}"]
        expected = [candidates[int(i)] for i in picks]
        assert entry["picks"] == expected and entry["distinct"] == len(set(expected))
        assert entry["accuracy"] == sum(pick == row["label"] for pick, row in zip(expected, rows)) / 4
        assert entry["top5_accuracy"] == 0.75  # four candidates: every label that is one is in the top 5
        assert "swapped_accuracy" not in entry


def test_nearest_code_histogram_labels_by_cosine():
    train = [[0, 0, 0, 1], [2, 2, 3, 3], [3, 3, 3, 3]]
    labels = ["zeros", "twos and threes", "threes"]
    # [0, 0, 1, 1]: cosine 0.89 with "zeros", 0 with the others; [3, 3, 3, 2]: 0.95 with "threes", 0.89 with
    # "twos and threes"; [2, 3]: 1.0 with "twos and threes"
    assert nearest_code_histogram_labels(train, labels, [[0, 0, 1, 1], [3, 3, 3, 2], [2, 3]], codebook_size=4) == [
        "zeros", "threes", "twos and threes"]
    with pytest.raises(ValueError, match="same length"):
        nearest_code_histogram_labels(train, labels[:2], [[0]], codebook_size=4)


def test_sign_test_p_against_hand_values():
    assert sign_test_p(3, 0) == pytest.approx(2 / 8)  # 3 of 3 one way: 2 x (1/2)^3
    assert sign_test_p(0, 3) == pytest.approx(2 / 8)
    assert sign_test_p(2, 1) == 1.0  # 2 x (3 + 1) / 8, capped
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(34, 13) == pytest.approx(0.0030877, rel=1e-4)  # 34 of 47 clips
    with pytest.raises(ValueError, match=">= 0"):
        sign_test_p(-1, 3)


def test_paired_comparison_counts_clips_each_way_and_leaves_ties_out():
    result = paired_comparison([0.5, 0.2, 0.9, 0.4], [0.1, 0.3, 0.9, 0.2])
    assert result == {"own_better": 0.5, "swapped_better": 0.25, "sign_test_p": sign_test_p(2, 1)}
    named = paired_comparison([True, True, False, True], [False, True, True, False])  # the label named or not
    assert named["own_better"] == 0.5 and named["swapped_better"] == 0.25
    with pytest.raises(ValueError, match="same length"):
        paired_comparison([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-empty"):
        paired_comparison([], [])
