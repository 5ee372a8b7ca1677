import math

import numpy as np
import pytest
import torch
from helpers import tiny_config_kwargs
from transformers import AutoConfig, AutoModel

from soundlm import MSNTokenizerConfig, MSNTokenizerModel


def tiny_model(**overrides) -> MSNTokenizerModel:
    torch.manual_seed(0)
    return MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs(**overrides)))


def test_contract_properties_are_computed_from_the_config():
    model = tiny_model()
    assert model.sample_rate == 8000 and model.channels == 1
    assert model.hop_length == 128
    assert model.frame_rate == pytest.approx(62.5)
    assert model.codebook_size == model.cardinality == 64 and model.num_codebooks == 1
    assert model.bitrate == pytest.approx(62.5 * 6)
    paper = MSNTokenizerConfig()  # Oobleck: 44.1 kHz / 2048, 8196 codes
    assert paper.frame_rate == pytest.approx(21.533, abs=1e-3)
    assert paper.bitrate == pytest.approx(44100 / 2048 * math.log2(8196))
    assert paper.latent_dim == 64 and paper.num_attention_heads == 12


def test_shapes_of_encode_decode_and_forward():
    model = tiny_model()
    audio = torch.randn(3, 1, 8000)
    output = model(input_values=audio)
    assert output.loss.shape == () and output.loss.requires_grad
    assert output.codes.shape == (3, 62)
    model.eval()
    codes = model.encode(audio)
    assert codes.shape == (3, 62) and codes.dtype == torch.long
    assert int(codes.max()) < 64
    latents = model.decode_latents(codes, num_steps=3)
    assert latents.shape == (3, 62, 32)
    audio_out = model.decode(codes, num_steps=2, scheduler="heun")
    assert audio_out.shape == (3, 1, 62 * 128)
    assert torch.isfinite(audio_out).all()
    # 2-D input is accepted for a mono front end
    assert torch.equal(model.encode(audio[:, 0]), codes)


def test_encoder_is_causal():
    model = tiny_model().eval()
    latents = torch.randn(2, 20, 32)
    changed = latents.clone()
    k = 11
    changed[:, k:] = torch.randn(2, 20 - k, 32)
    before = model.encoder(model.normalize_latents(latents))
    after = model.encoder(model.normalize_latents(changed))
    assert torch.allclose(before[:, :k], after[:, :k], atol=1e-6)
    assert not torch.allclose(before[:, k:], after[:, k:])


def test_dit_decoder_is_not_causal_and_padding_mask_hides_frames():
    model = tiny_model()
    # adaLN-Zero starts as the zero map: give it weights so the test sees attention
    for p in model.decoder.parameters():
        torch.nn.init.normal_(p, std=0.2)
    sample, condition, t = torch.randn(1, 10, 32), torch.randn(1, 10, 8), torch.tensor([0.3])
    base = model.decoder(sample, t, condition)
    changed = sample.clone()
    changed[:, 9] += 1.0
    assert not torch.allclose(base[:, 0], model.decoder(changed, t, condition)[:, 0])
    mask = torch.tensor([[True] * 9 + [False]])
    assert torch.allclose(model.decoder(sample, t, condition, mask)[:, :9],
                          model.decoder(changed, t, condition, mask)[:, :9], atol=1e-6)


def test_mse_mode_ignores_timestep_and_noise():
    model = tiny_model(decoder_objective="mse")
    for p in model.decoder.parameters():
        torch.nn.init.normal_(p, std=0.2)
    model.eval()
    codes = torch.randint(0, 64, (2, 7))
    first = model.decode_latents(codes, num_steps=1, temperature=1.0, generator=torch.Generator().manual_seed(1))
    second = model.decode_latents(codes, num_steps=8, temperature=0.5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(first, second)
    condition = model.quantizer.lookup(codes)
    seen = []
    original = model.decoder.forward

    def spy(sample, t, cond, mask=None):
        seen.append((sample.abs().max().item(), t.abs().max().item()))
        return original(sample, t, cond, mask)

    model.decoder.forward = spy
    model(latents=torch.randn(2, 7, 32))
    model._regress(condition, None)
    assert seen and all(s == 0.0 and t == 0.0 for s, t in seen)


def test_flow_matching_decode_depends_on_noise_and_temperature_zero_is_deterministic():
    model = tiny_model()
    for p in model.decoder.parameters():
        torch.nn.init.normal_(p, std=0.2)
    model.eval()
    codes = torch.randint(0, 64, (1, 7))
    a = model.decode_latents(codes, num_steps=2, generator=torch.Generator().manual_seed(1))
    b = model.decode_latents(codes, num_steps=2, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(a, b)
    c = model.decode_latents(codes, num_steps=2, temperature=0.0, generator=torch.Generator().manual_seed(1))
    d = model.decode_latents(codes, num_steps=2, temperature=0.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(c, d)


def test_forward_takes_the_feature_extractor_output_as_is():
    from soundlm import MSNFeatureExtractor

    model = tiny_model()
    extractor = MSNFeatureExtractor.from_tokenizer_config(model.config)
    inputs = extractor([np.ones(3000, dtype=np.float32) * 0.1, np.ones(9000, dtype=np.float32) * 0.1],
                       sampling_rate=8000)
    output = model(**inputs)
    assert output.frame_mask.sum(-1).tolist() == [24, 62]  # ceil(3000 / 128); the 1-s clip is cropped to 8000
    without_mask = model(input_values=inputs["input_values"], lengths=inputs["lengths"])
    assert torch.equal(without_mask.frame_mask, output.frame_mask)


def test_padding_mask_becomes_frame_mask():
    model = tiny_model()
    padding_mask = torch.zeros(2, 1280, dtype=torch.long)
    padding_mask[0, :1280] = 1
    padding_mask[1, :300] = 1  # 300 samples touch frames 0, 1 and 2 (hop 128)
    frame_mask = model.frame_mask_from_padding_mask(padding_mask, 10)
    assert frame_mask[0].all()
    assert frame_mask[1].tolist() == [True] * 3 + [False] * 7


def _train(model, latents, steps, lr=3e-3):
    model.set_latent_statistics(latents.mean((0, 1)), latents.std((0, 1)))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for step in range(steps):
        output = model(latents=latents, generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        losses.append(output.reconstruction_loss.item())
    return losses


def _decoded_error(model, latents):
    model.eval()
    decoded = model.decode_latents(model.encode_latents(latents), num_steps=8,
                                   generator=torch.Generator().manual_seed(0))
    model.train()
    return (model.normalize_latents(decoded) - model.normalize_latents(latents)).pow(2).mean().item()


def test_tiny_mse_model_overfits_four_real_clips(real_clips):
    model = tiny_model(decoder_objective="mse")
    latents = model.frontend.encode(torch.from_numpy(real_clips)[:, None])
    losses = _train(model, latents, 250)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) / 10


def test_tiny_flow_matching_model_overfits_four_real_clips(real_clips):
    model = tiny_model()
    latents = model.frontend.encode(torch.from_numpy(real_clips)[:, None])
    model.set_latent_statistics(latents.mean((0, 1)), latents.std((0, 1)))
    error_before = _decoded_error(model, latents)
    losses = _train(model, latents, 300)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) / 4  # velocity loss: noisy target
    assert _decoded_error(model, latents) < error_before / 10  # what is heard: latents after the ODE


def test_only_encoder_and_decoder_are_trainable():
    model = tiny_model()
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"encoder", "decoder"}
    output = model(latents=torch.randn(2, 6, 32))
    output.loss.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert model.quantizer.codebook.grad is None


def test_save_and_load_round_trip_is_bit_exact(tmp_path):
    model = tiny_model()
    _train(model, torch.randn(2, 12, 32), 3)  # trained weights, EMA codebook and latent statistics
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, MSNTokenizerModel)
    reference, restored = model.state_dict(), loaded.state_dict()
    assert reference.keys() == restored.keys()
    for key in reference:
        assert torch.equal(reference[key], restored[key]), key
    assert isinstance(AutoConfig.from_pretrained(tmp_path), MSNTokenizerConfig)
    model.eval()
    audio = torch.randn(1, 1, 4000)
    assert torch.equal(model.encode(audio), loaded.encode(audio))


def test_inputs_are_validated_with_clear_messages():
    model = tiny_model().eval()
    with pytest.raises(ValueError, match=r"audio must have shape \(batch, 1, samples\)"):
        model.encode(torch.randn(1, 2, 8000))
    with pytest.raises(TypeError, match="floating-point"):
        model.encode(torch.ones(1, 1, 8000, dtype=torch.long))
    with pytest.raises(ValueError, match="at least hop_length=128"):
        model.encode(torch.randn(1, 1, 100))
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.encode(torch.full((1, 1, 800), float("nan")))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 64\)"):
        model.decode(torch.tensor([[0, 64]]))
    with pytest.raises(ValueError, match="exactly one of"):
        model()
    with pytest.raises(ValueError, match=r"latents must have shape \(batch, frames, 32\)"):
        model.encode_latents(torch.randn(1, 5, 31))
    with pytest.raises(ValueError, match="decoder_objective"):
        MSNTokenizerConfig(decoder_objective="l1")
    with pytest.raises(ValueError, match="multiple of head_dim"):
        MSNTokenizerConfig(hidden_size=100, head_dim=64)
