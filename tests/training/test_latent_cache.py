import torch
from helpers import tiny_config_kwargs, write_manifest

from soundlm import MSNTokenizerConfig
from soundlm.modeling.msn_tokenizer import build_frontend
from soundlm.training.common.latent_cache import build_latent_cache


class CountingFrontend(torch.nn.Module):
    def __init__(self, frontend):
        super().__init__()
        self.inner = frontend
        self.calls = 0
        for name in ("sample_rate", "audio_channels", "hop_length", "latent_dim"):
            setattr(self, name, getattr(frontend, name))

    def encode(self, audio):
        self.calls += 1
        return self.inner.encode(audio)


def test_cache_encodes_once_skips_bad_files_and_keeps_metadata(tmp_path, real_clips):
    config = MSNTokenizerConfig(**tiny_config_kwargs())
    frontend = CountingFrontend(build_frontend(config.frontend_type, config.frontend_config))
    bad = [("broken.wav", b"RIFF....not audio"), ("empty.wav", b"")]
    manifest = write_manifest(tmp_path / "data", real_clips, bad_files=bad)
    signature = {"frontend_config": config.frontend_config}
    cache = build_latent_cache(manifest, frontend, signature, tmp_path / "cache")
    assert len(cache) == 4 and frontend.calls == 4
    assert [item["path"].rsplit("/", 1)[-1] for item in cache.skipped] == ["broken.wav", "empty.wav"]
    assert all(item["reason"] for item in cache.skipped)
    assert cache.clip(0).shape == (62, 32)
    assert cache.select(split="test") == [3]
    assert cache.rows[1]["category"] == "speech" and cache.rows[1]["num_frames"] == "62"
    expected = frontend.inner.encode(torch.from_numpy(real_clips[2])[None, None])[0]
    assert torch.allclose(cache.clip(2), expected)

    again = build_latent_cache(manifest, frontend, signature, tmp_path / "cache")
    assert frontend.calls == 4  # loaded, not recomputed
    assert torch.equal(again.latents, cache.latents) and again.rows == cache.rows

    mean, std = cache.statistics([0, 1])
    frames = torch.cat([cache.clip(0), cache.clip(1)])
    assert torch.allclose(mean, frames.mean(0), atol=1e-5) and torch.allclose(std, frames.std(0), atol=1e-4)

    build_latent_cache(manifest, frontend, {"frontend_config": "other"}, tmp_path / "cache")
    assert frontend.calls == 8  # another front end: another cache
