"""evaluation/embeddings.py and evaluation/mos.py: the interface, the real YAMNet backend, DNSMOS on real speech."""

import glob

import numpy as np
import pytest

from soundlm.evaluation.embeddings import AudioEmbedder, embed_clips, yamnet_embedder

ALSA = sorted(glob.glob("/usr/share/sounds/alsa/*.wav"))


def test_embedder_validates_downmixes_and_resamples():
    seen = []
    embedder = AudioEmbedder("identity frames", 8000, lambda audio: seen.append(audio) or audio.reshape(-1, 100))
    stereo_16k = np.stack([np.ones(1600, np.float32), -np.ones(1600, np.float32) * 0.5])
    frames = embedder(stereo_16k, 16000)
    assert frames.shape == (8, 100) and seen[0].shape == (800,)  # mono, 8 kHz
    np.testing.assert_allclose(frames.reshape(-1)[50:-50], 0.25, atol=0.02)  # (1 - 0.5) / 2, away from the ends
    assert embed_clips(embedder, [(stereo_16k, 16000), (stereo_16k[:, :800], 16000)]).shape == (12, 100)
    with pytest.raises(ValueError, match="NaN"):
        embedder(np.array([0.0, np.nan], np.float32), 8000)
    with pytest.raises(ValueError, match="clips is empty"):
        embed_clips(embedder, [])
    broken = AudioEmbedder("broken", 8000, lambda audio: np.zeros(3))
    with pytest.raises(ValueError, match=r"broken returned embeddings of shape \(3,\)"):
        broken(np.ones(100, np.float32), 8000)


def test_yamnet_backend_gives_one_embedding_per_patch_and_names_its_hop():
    pytest.importorskip("onnxruntime", reason="onnxruntime is in the [eval] extra; scripts/test.sh installs it")
    try:
        embedder = yamnet_embedder(patch_hop_seconds=0.24)
    except ModuleNotFoundError as error:
        pytest.skip(f"{error} (scripts/test.sh installs the YAMNet wheel; the test runs once it is there)")
    assert embedder.name == "YAMNet (AudioSet, 1024-d, patch hop 0.24 s)" and embedder.sampling_rate == 16000
    t = np.arange(32000) / 16000
    tone = embedder((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), 16000)
    noise = embedder(np.random.default_rng(0).normal(0, 0.03, 32000).astype(np.float32), 16000)
    assert tone.shape[1] == 1024 and tone.shape[0] >= 5  # 2 s at a 0.24-s hop
    cosine = tone.mean(0) @ noise.mean(0) / np.linalg.norm(tone.mean(0)) / np.linalg.norm(noise.mean(0))
    assert cosine < 0.7  # a real network tells a tone from noise (random weights: about 0.97)


@pytest.mark.skipif(len(ALSA) < 2, reason="alsa-utils' recordings are not installed")
def test_dnsmos_scores_real_speech_above_noise():
    pytest.importorskip("speechmos")
    pytest.importorskip("librosa")
    import soundfile as sf

    from soundlm.evaluation.mos import dnsmos

    speech, rate = sf.read(ALSA[0], dtype="float32")
    clean = dnsmos(speech.T if speech.ndim == 2 else speech, rate)
    noise = dnsmos(np.random.default_rng(0).normal(0, 0.3, 3 * 16000).astype(np.float32), 16000)
    assert set(clean) == {"ovrl", "sig", "bak", "p808", "clipped_fraction"}
    assert all(1.0 <= clean[key] <= 5.0 for key in ("ovrl", "sig", "bak", "p808"))
    assert clean["ovrl"] > noise["ovrl"] + 0.5
    loud = dnsmos(np.full(16000, 2.0, np.float32), 16000)
    assert loud["clipped_fraction"] == 1.0
