"""processing/latent_cache.py: one way in (load_audio_dataset), keyed by content, incremental, bad rows counted."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from helpers import tiny_config_kwargs, write_manifest

from soundlm import MSNTokenizerConfig, MSNTokenizerModel
from soundlm.processing.latent_cache import build_latent_cache, frontend_signature


class CountingModel:
    """The tokenizer's latent path, counting front-end calls."""

    def __init__(self, model):
        self.model, self.calls = model, 0
        for name in ("sample_rate", "channels", "frame_rate", "config", "frontend"):
            setattr(self, name, getattr(model, name))

    def audio_to_latents(self, audio):
        self.calls += 1
        return self.model.audio_to_latents(audio)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return CountingModel(MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval())


def test_cache_encodes_once_skips_bad_files_and_keeps_metadata(tmp_path, real_clips, model):
    bad = [("broken.wav", b"RIFF....not audio"), ("empty.wav", b"")]
    manifest = write_manifest(tmp_path / "data", real_clips, bad_files=bad)
    cache = build_latent_cache(manifest, model, tmp_path / "cache")
    assert len(cache) == 4 and model.calls == 4
    assert [item["audio_path"].rsplit("/", 1)[-1] for item in cache.skipped] == ["broken.wav", "empty.wav"]
    assert [item["category"] for item in cache.skipped] == ["unreadable", "unreadable"]  # no header either
    assert cache.clip(0).shape == (63, 32)  # ceil(8000 / 128) frames
    assert cache.select(split="test") == [3]
    assert cache.rows[1]["category"] == "speech" and cache.rows[1]["num_frames"] == 63
    expected = model.model.audio_to_latents(torch.from_numpy(real_clips[2])[None, None])[0]
    assert torch.allclose(cache.clip(2), expected)

    again = build_latent_cache(manifest, model, tmp_path / "cache")
    assert model.calls == 4  # loaded, not recomputed
    assert torch.equal(again.latents, cache.latents) and again.rows == cache.rows

    mean, std = cache.statistics([0, 1])
    frames = torch.cat([cache.clip(0), cache.clip(1)])
    assert torch.allclose(mean, frames.mean(0), atol=1e-5) and torch.allclose(std, frames.std(0), atol=1e-4)


def test_renamed_or_touched_files_reuse_latents_and_new_files_alone_are_encoded(tmp_path, real_clips, model):
    manifest = write_manifest(tmp_path / "data", real_clips)
    first = build_latent_cache(manifest, model, tmp_path / "cache")
    assert model.calls == 4

    # rename one file, touch another, and list them in a JSONL manifest elsewhere: same content, same latents
    data = tmp_path / "data"
    shutil.move(data / "clip0.wav", data / "renamed.wav")
    os.utime(data / "clip1.wav", (1, 1))
    rows = [{"path": str(data / name), "split": split} for name, split in
            (("renamed.wav", "train"), ("clip1.wav", "train"), ("clip2.wav", "train"), ("clip3.wav", "test"))]
    (tmp_path / "other.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    moved = build_latent_cache(tmp_path / "other.jsonl", model, tmp_path / "cache")
    assert model.calls == 4  # nothing re-encoded
    assert torch.equal(moved.latents, first.latents)

    # a folder source with one new file: only that one goes through the front end
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("renamed.wav", "clip1.wav"):
        shutil.copy(data / name, folder / name)
    import soundfile as sf

    sf.write(folder / "new.wav", np.random.default_rng(0).normal(0, 0.1, 4000).astype(np.float32), 8000)
    from_folder = build_latent_cache(folder, model, tmp_path / "cache")
    assert model.calls == 5 and len(from_folder) == 3


def test_another_front_end_gets_another_store(tmp_path, real_clips, model):
    manifest = write_manifest(tmp_path / "data", real_clips)
    build_latent_cache(manifest, model, tmp_path / "cache")
    torch.manual_seed(0)
    other = CountingModel(MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs(
        frontend_config=dict(sampling_rate=8000, n_fft=256, stft_hop_length=64, frames_per_latent=2,
                             num_mel_bins=16, f_min=50.0)))).eval())
    assert frontend_signature(other) != frontend_signature(model)
    build_latent_cache(manifest, other, tmp_path / "cache")
    assert other.calls == 4 and len(list((tmp_path / "cache").glob("latents-*"))) == 2
    # the rest of the tokenizer (encoder, codebook...) is not part of the front end's signature
    torch.manual_seed(1)
    retrained = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval()
    assert frontend_signature(retrained) == frontend_signature(model)


def test_long_clips_are_cut_into_cached_windows(tmp_path, real_clips, model):
    manifest = write_manifest(tmp_path / "data", [np.concatenate(list(real_clips))])  # one 4-s clip
    cache = build_latent_cache(manifest, model, tmp_path / "cache", window_seconds=1.5)
    assert [row["window_index"] for row in cache.rows] == [0, 1, 2]
    assert [row["num_frames"] for row in cache.rows] == [94, 94, 63]  # ceil(12000 / 128), ceil(8000 / 128)
