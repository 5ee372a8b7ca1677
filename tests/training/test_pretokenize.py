"""training/pretokenize.py: two CPU processes (gloo) shard the rows; the result equals a one-process run."""

from __future__ import annotations

from pathlib import Path

import torch
from helpers import launch_two_processes, pretokenize_corpus, tiny_config_kwargs

from soundlm import MSNTokenizerConfig, MSNTokenizerModel
from soundlm.processing.audio_datasets import load_audio_dataset
from soundlm.processing.pretokenized import load_pretokenized, pretokenize


def _codes(output) -> dict[str, list[int]]:
    data = load_pretokenized(output)
    return dict(zip(data["key"], data["codes"], strict=True))


def test_two_processes_with_accelerate_launch(tmp_path, real_clips):
    torch.manual_seed(0)
    model = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval()
    manifest = pretokenize_corpus(tmp_path / "data", real_clips)
    model.save_pretrained(tmp_path / "tok")
    script = Path(__file__).resolve().parents[2] / "training" / "pretokenize.py"
    result = launch_two_processes([script, "--tokenizer", tmp_path / "tok", "--data", manifest,
                                   "--output", tmp_path / "two", "--batch_size", "2"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "7 kept (7 encoded now, 0 reused), 0 rejected" in result.stdout
    parts = sorted(p.name.split("-")[1] for p in (tmp_path / "two" / "parts").glob("part-*.arrow"))
    assert set(parts) == {"000", "001"}  # both processes encoded a share
    reloaded = MSNTokenizerModel.from_pretrained(tmp_path / "tok").eval()
    pretokenize(load_audio_dataset(manifest, window_seconds=1.0, min_window_seconds=1 / 62.5), reloaded,
                tmp_path / "one", progress=False)
    assert _codes(tmp_path / "two") == _codes(tmp_path / "one")
