"""training/build_task_data.py: the four training sets from a pre-tokenised folder, extra MINT templates, refusal."""

from __future__ import annotations

import json

import datasets
import pytest
import soundfile as sf
import torch
from helpers import tiny_config_kwargs

from soundlm import MSNTokenizerConfig, MSNTokenizerModel
from soundlm.processing.audio_datasets import load_audio_dataset
from soundlm.training.build_task_data import _short, main
from soundlm.training.pretokenize import pretokenize


def test_builds_all_sets_with_category_templates(tmp_path, real_clips, capsys):
    for index, clip in enumerate(real_clips):
        sf.write(tmp_path / f"c{index}.wav", clip, 8000, subtype="FLOAT")
    (tmp_path / "m.csv").write_text(
        "path,caption,label,category\nc0.wav,a voice,front,speech\nc1.wav,a voice,left,speech\n"
        "c2.wav,,bell,environmental\nc3.wav,,x,unknown\n"
    )
    torch.manual_seed(0)
    model = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval()
    model.save_pretrained(tmp_path / "tok")
    pretokenize(load_audio_dataset(tmp_path / "m.csv", window_seconds=1.0), model, tmp_path / "pt", progress=False)
    templates = [
        {"dataset": "speech", "task": "captioning", "instruction": "Transcribe:", "target_field": "caption"},
        {"dataset": "environmental", "task": "classification", "instruction": "This is a sound of",
         "target_field": "label"},
    ]
    (tmp_path / "t.json").write_text(json.dumps(templates))
    counts = main(["--pretokenized", str(tmp_path / "pt"), "--output", str(tmp_path / "tasks"),
                   "--tokenizer", str(tmp_path / "tok"), "--dataset_column", "category",
                   "--mint_templates", str(tmp_path / "t.json")])
    # stage 2: 2 captioned rows x (captioning, classification, text_to_audio) + 2 label-only rows
    assert counts == {"lm_msn_stage1": 2, "lm_msn_stage2": 8, "mint_stage1": 2, "mint_stage2": 3}
    mint2 = datasets.load_from_disk(str(tmp_path / "tasks" / "mint_stage2"))
    assert mint2["instruction"] == ["Transcribe:", "Transcribe:", "This is a sound of"]
    assert mint2["response"] == ["a voice", "a voice", "bell"]
    printed = capsys.readouterr().out
    assert "| lm_msn_stage2 | 8 |" in printed and "more)<eoa>" in printed

    other = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs(codebook_size=32)))
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="codebook_size=64 .* codebook_size=32"):
        main(["--pretokenized", str(tmp_path / "pt"), "--output", str(tmp_path / "t2"), "--tokenizer",
              str(tmp_path / "other")])


def test_short_keeps_text_and_shortens_long_audio():
    text = "a cat<soa>" + "".join(f"<a_{i}>" for i in range(10)) + "<eoa> <soa><a_1><eoa>"
    assert _short(text) == "a cat<soa><a_0><a_1><a_2><a_3><a_4><a_5>...(4 more)<eoa> <soa><a_1><eoa>"
