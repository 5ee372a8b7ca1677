"""training/pretokenize.py: two CPU processes (gloo) shard the rows; the result equals a one-process run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from helpers import pretokenize_corpus, tiny_config_kwargs

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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = Path(__file__).resolve().parents[2] / "training" / "pretokenize.py"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(port), str(script), "--tokenizer", str(tmp_path / "tok"),
               "--data", str(manifest), "--output", str(tmp_path / "two"), "--batch_size", "2"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "7 kept (7 encoded now, 0 reused), 0 rejected" in result.stdout
    parts = sorted(p.name.split("-")[1] for p in (tmp_path / "two" / "parts").glob("part-*.arrow"))
    assert set(parts) == {"000", "001"}  # both processes encoded a share
    reloaded = MSNTokenizerModel.from_pretrained(tmp_path / "tok").eval()
    pretokenize(load_audio_dataset(manifest, window_seconds=1.0, min_window_seconds=1 / 62.5), reloaded,
                tmp_path / "one", progress=False)
    assert _codes(tmp_path / "two") == _codes(tmp_path / "one")
