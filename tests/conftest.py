"""Shared fixtures: tiny configs, a few real clips, an offline Hugging Face cache inside the work tree."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_config_kwargs

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HOME", str(REPO / ".hf_home"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ALSA_SOUNDS = "/usr/share/sounds/alsa"


@pytest.fixture
def tiny_config():
    from soundlm import MSNTokenizerConfig

    return MSNTokenizerConfig(**tiny_config_kwargs())


@pytest.fixture(scope="session")
def real_clips() -> np.ndarray:
    """Four real recordings (alsa-utils' voice prompts: "Front Left", ...), 8 kHz mono, 1 s: (4, 8000).

    `scripts/test.sh` installs alsa-utils; without it the clips are synthesised chirps (said in the id).
    """
    import soundfile as sf
    import soxr

    files = sorted(glob.glob(f"{ALSA_SOUNDS}/*.wav"))[:4]
    clips = []
    if len(files) == 4:
        for path in files:
            audio, rate = sf.read(path, dtype="float32", always_2d=True)
            audio = soxr.resample(audio.mean(axis=1), rate, 8000)[:8000]
            clips.append(np.pad(audio, (0, 8000 - len(audio))))
    else:
        t = np.arange(8000) / 8000
        for k in range(4):
            clips.append(0.3 * np.sin(2 * np.pi * (200 + 150 * k) * t * (1 + t)).astype(np.float32))
    return np.stack(clips).astype(np.float32)


@pytest.fixture
def one_torch_thread():
    """One intra-op thread for tests of tiny models: a second OpenMP thread on a shared 2-core machine only waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
