"""The LM-MSN report end to end on real clips with tiny models: captions, label guessing, text-to-audio WAVs."""

from __future__ import annotations

import csv
import json

import pytest
import soundfile as sf
import torch
from helpers import save_tiny_audio_llm, tiny_config_kwargs

from soundlm.evaluation.lm_msn_report import changed_share, lm_msn_report, swapped_audio
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
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Label guessing" in report and "Text to audio" in report and "Listening control" in report
    assert json.loads((tmp_path / "out" / "report.json").read_text())["clips"] == 2


def test_swapped_audio_gives_no_clip_its_own_codes_and_changed_share_counts_changes():
    rows = [{"codes": [i], "caption": f"c{i}"} for i in range(5)]
    swapped = swapped_audio(rows)
    assert [r["caption"] for r in swapped] == [r["caption"] for r in rows]
    assert all(s["codes"] != r["codes"] for s, r in zip(swapped, rows))
    assert sorted(s["codes"][0] for s in swapped) == list(range(5))
    assert changed_share(["a dog", "Rain ", "x"], ["a dog", "rain", "y"]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="same length"):
        changed_share(["a"], [])
