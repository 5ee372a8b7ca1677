import numpy as np
import pytest
import torch
from diffusers import AutoencoderOobleck

from soundlm import MSNTokenizerConfig, MSNTokenizerModel
from soundlm.modeling.msn_tokenizer import MelFrontend, OobleckFrontend

TINY_OOBLECK = dict(encoder_hidden_size=12, downsampling_ratios=[2, 4], channel_multiples=[1, 2],
                    decoder_channels=4, decoder_input_channels=6, audio_channels=2, sampling_rate=8000)


def test_mel_frontend_frames_and_griffin_lim_keep_the_pitch():
    frontend = MelFrontend(sampling_rate=8000, n_fft=256, stft_hop_length=64, frames_per_latent=2, num_mel_bins=40,
                           griffin_lim_iters=32)
    assert (frontend.hop_length, frontend.latent_dim) == (128, 80)
    t = torch.arange(8000) / 8000
    audio = (0.5 * torch.sin(2 * torch.pi * 440 * t))[None, None]
    latents = frontend.encode(audio)
    assert latents.shape == (1, 62, 80)
    # stacking: latent frame k holds the log-mels of STFT frames 2k and 2k+1
    magnitude = torch.stft(audio[0], 256, 64, window=frontend.window, center=True, pad_mode="constant",
                           return_complex=True).abs()
    mel_frame_7 = torch.log(torch.clamp(frontend.mel_filters.T @ magnitude[0, :, 7], min=1e-5))
    assert torch.allclose(latents[0, 3, 40:], mel_frame_7, atol=1e-5)
    decoded = frontend.decode(latents)
    assert decoded.shape == (1, 1, 62 * 128)
    spectrum = np.abs(np.fft.rfft(decoded[0, 0].numpy()))
    peak = np.argmax(spectrum) * 8000 / decoded.shape[-1]
    assert abs(peak - 440) < 30  # within half a mel band (about 60 Hz wide at 440 Hz with 40 bands at 8 kHz)
    # the round trip audio -> mel -> audio -> mel is close in log-mel (phase is lost, magnitude kept)
    again = frontend.encode(decoded)
    loud = latents > latents.max() - 4  # compare where there is energy
    assert (again - latents)[loud].abs().mean() < 0.5
    assert torch.equal(frontend.decode(latents), decoded)  # deterministic phase initialisation


def test_mel_frontend_rejects_stereo_and_short_audio():
    with pytest.raises(ValueError, match="audio_channels must be 1"):
        MelFrontend(audio_channels=2)
    with pytest.raises(ValueError, match="at least hop_length"):
        MelFrontend().encode(torch.zeros(1, 1, 100))


def test_oobleck_frontend_shapes_and_frozen():
    torch.manual_seed(0)
    frontend = OobleckFrontend.from_config(TINY_OOBLECK)
    assert (frontend.sample_rate, frontend.audio_channels, frontend.hop_length, frontend.latent_dim) == (8000, 2, 8, 6)
    latents = frontend.encode(torch.randn(2, 2, 803))
    assert latents.shape == (2, 100, 6)
    assert frontend.decode(latents).shape == (2, 2, 800)
    with pytest.raises(ValueError, match="encoder_hidden_size // 2"):
        OobleckFrontend.from_config({**TINY_OOBLECK, "encoder_hidden_size": 4})
    assert not any(p.requires_grad for p in frontend.parameters())
    frontend.train()
    assert not frontend.vae.training  # stays in eval mode


@pytest.mark.parametrize("clips_per_call, call_sizes", [(1, [1, 1, 1]), (2, [2, 1]), (3, [3]), (8, [3])])
def test_oobleck_frontend_cpu_calls_match_one_batched_vae_call(clips_per_call, call_sizes):
    torch.manual_seed(0)
    frontend = OobleckFrontend.from_config(TINY_OOBLECK)
    frontend.cpu_clips_per_call = clips_per_call
    audio = torch.randn(3, 2, 800)
    calls = []
    for part in (frontend.vae.encoder, frontend.vae.decoder):
        part.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    latents = frontend.encode(audio)
    assert calls == call_sizes
    whole = frontend.vae.encode(audio).latent_dist.mean.transpose(1, 2)
    torch.testing.assert_close(latents, whole, rtol=1e-5, atol=1e-6)
    calls.clear()
    decoded = frontend.decode(latents)
    assert calls == call_sizes
    torch.testing.assert_close(decoded, frontend.vae.decode(latents.transpose(1, 2)).sample, rtol=1e-5, atol=1e-6)


def test_tokenizer_on_a_pretrained_vae_folder_keeps_its_weights(tmp_path):
    torch.manual_seed(0)
    vae = AutoencoderOobleck(**TINY_OOBLECK)
    vae.save_pretrained(tmp_path / "stable-audio" / "vae")
    model = MSNTokenizerModel.from_frontend_pretrained(
        str(tmp_path / "stable-audio"), subfolder="vae", hidden_size=32, head_dim=16, encoder_layers=1,
        decoder_layers=1, intermediate_size=64, codebook_size=16, codebook_dim=4,
    )
    assert model.config.latent_dim == 6 and model.hop_length == 8 and model.sample_rate == 8000
    for name, tensor in vae.state_dict().items():
        assert torch.equal(model.frontend.vae.state_dict()[name], tensor), name  # post_init left it alone
    model.save_pretrained(tmp_path / "tokenizer")
    loaded = MSNTokenizerModel.from_pretrained(tmp_path / "tokenizer")
    assert isinstance(loaded.config, MSNTokenizerConfig)
    for name, tensor in vae.state_dict().items():
        assert torch.equal(loaded.frontend.vae.state_dict()[name], tensor), name
    audio = torch.randn(1, 2, 160)
    assert torch.equal(model.eval().encode(audio).audio_codes, loaded.eval().encode(audio).audio_codes)


def test_mel_transforms_stay_float32_and_out_of_checkpoints():
    frontend = MelFrontend(sampling_rate=8000, n_fft=256, stft_hop_length=64, frames_per_latent=2, num_mel_bins=16)
    assert frontend.state_dict() == {}  # nothing of the front end is written to a checkpoint
    reference = frontend.mel_filters.clone()
    frontend.to(torch.bfloat16)
    assert frontend.mel_filters.dtype == torch.float32 and torch.equal(frontend.mel_filters, reference)
    audio = torch.randn(1, 1, 800, dtype=torch.bfloat16)
    assert frontend.encode(audio).dtype == torch.bfloat16
