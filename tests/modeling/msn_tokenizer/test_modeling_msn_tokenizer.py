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
    assert output.audio_codes.shape == (3, 1, 63)
    model.eval()
    encoded = model.encode(audio)
    codes = encoded.audio_codes
    assert codes.shape == (3, 1, 63) and codes.dtype == torch.long  # ceil(8000 / 128): the codec's codebook axis
    assert encoded.frame_mask is None and int(codes.max()) < 64
    latents = model.decode_latents(codes, num_steps=3)
    assert latents.shape == (3, 63, 32)
    audio_out = model.decode(codes, num_steps=2, scheduler="heun").audio_values
    assert audio_out.shape == (3, 1, 63 * 128)
    assert torch.isfinite(audio_out).all()
    # trimmed to the input length when the padding mask of the batch is given
    trimmed = model.decode(codes, torch.ones(3, 8000, dtype=torch.long), num_steps=2).audio_values
    assert trimmed.shape == (3, 1, 8000)
    # 2-D input is accepted for a mono front end; tuples as transformers' return_dict=False gives them
    assert torch.equal(model.encode(audio[:, 0]).audio_codes, codes)
    assert torch.equal(model.encode(audio, return_dict=False)[0], codes)


def test_one_frame_rule_for_every_length():
    model = tiny_model().eval()
    for samples in (1, 127, 128, 129, 255, 256, 1000):
        assert model.num_frames(samples) == -(-samples // 128) == model.config.num_frames(samples)
        codes = model.encode(torch.randn(1, 1, samples) * 0.1).audio_codes
        assert codes.shape[-1] == model.num_frames(samples)
        assert model.decode(codes, torch.ones(1, samples), num_steps=1).audio_values.shape[-1] == samples
    assert model.num_frames(torch.tensor([0, 1, 128, 129])).tolist() == [0, 1, 1, 2]
    assert MSNTokenizerConfig().num_frames(441000) == 216  # 10 s at 44.1 kHz, the partial last frame kept


def test_padded_batch_decodes_each_clip_as_if_alone():
    model = tiny_model(decoder_objective="mse")
    for p in model.decoder.parameters():
        torch.nn.init.normal_(p, std=0.05)
    model.eval()
    short, long = torch.randn(1, 1, 700) * 0.1, torch.randn(1, 1, 1000) * 0.1
    batch = torch.zeros(2, 1, 1000)
    batch[0, :, :700], batch[1] = short[0], long[0]
    padding_mask = torch.zeros(2, 1000, dtype=torch.long)
    padding_mask[0, :700], padding_mask[1] = 1, 1
    encoded = model.encode(batch, padding_mask)
    assert encoded.frame_mask.sum(-1).tolist() == [6, 8]
    alone = model.encode(short).audio_codes
    assert torch.equal(encoded.audio_codes[:1, :, :6], alone)  # causal encoder: padding changes nothing before it
    # the non-causal decoder does not see the padded frames of the short clip
    batched_latents = model.decode_latents(encoded.audio_codes, frame_mask=encoded.frame_mask)
    torch.testing.assert_close(batched_latents[0, :6], model.decode_latents(alone)[0], atol=1e-5, rtol=1e-5)
    decoded = model.decode(encoded.audio_codes, padding_mask).audio_values
    assert decoded.shape == (2, 1, 1000) and decoded[0, :, 700:].abs().max() == 0
    with pytest.raises(ValueError, match="padding_mask has 2000 samples, which give 16 frames, but the codes have 8"):
        model.decode(encoded.audio_codes, torch.ones(2, 2000))


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
    codes = torch.randint(0, 64, (2, 1, 7))
    first = model.decode_latents(codes, num_steps=1, temperature=1.0, generator=torch.Generator().manual_seed(1))
    second = model.decode_latents(codes, num_steps=8, temperature=0.5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(first, second)
    condition = model.quantizer.lookup(codes[:, 0])
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
    codes = torch.randint(0, 64, (1, 1, 7))
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
    assert output.frame_mask.sum(-1).tolist() == [24, 63]  # ceil(3000 / 128); the 1-s clip is cropped to 8000
    model.eval()
    encoded = model.encode(**inputs)
    assert torch.equal(encoded.frame_mask, output.frame_mask)


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
    latents = model.audio_to_latents(torch.from_numpy(real_clips)[:, None])
    losses = _train(model, latents, 250)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) / 10


def test_tiny_flow_matching_model_overfits_four_real_clips(real_clips):
    model = tiny_model()
    latents = model.audio_to_latents(torch.from_numpy(real_clips)[:, None])
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
    assert torch.equal(model.encode(audio).audio_codes, loaded.encode(audio).audio_codes)


@pytest.mark.reliability(
    "codes out of range, negative, float, empty (0 frames) or without the codebook axis into the tokenizer's "
    "`decode`",
    "`ValueError` / `TypeError` naming the allowed range or shape, before any decoding",
)
def test_inputs_are_validated_with_clear_messages():
    model = tiny_model().eval()
    with pytest.raises(ValueError, match=r"input_values must have shape \(batch, 1, samples\)"):
        model.encode(torch.randn(1, 2, 8000))
    with pytest.raises(TypeError, match="floating-point"):
        model.encode(torch.ones(1, 1, 8000, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one sample"):
        model.encode(torch.randn(1, 1, 0))
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.encode(torch.full((1, 1, 800), float("nan")))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 64\)"):
        model.decode(torch.tensor([[[0, 64]]]))
    with pytest.raises(ValueError, match=r"shape \(batch, 1, frames\), got \(1, 2\); add the codebook axis"):
        model.decode(torch.tensor([[0, 1]]))
    with pytest.raises(TypeError, match="integer tensor"):
        model.decode(torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match="0 frames"):
        model.decode(torch.zeros(1, 1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 64\), got values in \[-1, 2\]"):
        model.decode(torch.tensor([[[-1, 2]]]))
    with pytest.raises(ValueError, match="exactly one of"):
        model()
    with pytest.raises(ValueError, match=r"latents must have shape \(batch, frames, 32\)"):
        model.encode_latents(torch.randn(1, 5, 31))
    with pytest.raises(ValueError, match="decoder_objective"):
        MSNTokenizerConfig(decoder_objective="l1")
    with pytest.raises(ValueError, match="multiple of head_dim"):
        MSNTokenizerConfig(hidden_size=100, head_dim=64)


# ----- what transformers' common model tests ask of a model ------------------------------------------------


def test_config_maps_the_standard_layer_count_name():
    config = MSNTokenizerConfig(**tiny_config_kwargs(encoder_layers=3))
    assert config.num_hidden_layers == 3 and config.num_attention_heads == 2
    assert MSNTokenizerConfig(**tiny_config_kwargs(num_hidden_layers=5)).encoder_layers == 5
    assert MSNTokenizerConfig.from_dict(config.to_dict()).num_hidden_layers == 3


def test_eager_and_sdpa_attention_give_the_same_outputs(tmp_path):
    model = tiny_model()
    for p in model.decoder.parameters():
        torch.nn.init.normal_(p, std=0.1)
    model.save_pretrained(tmp_path)
    sdpa = MSNTokenizerModel.from_pretrained(tmp_path).eval()
    eager = MSNTokenizerModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert (sdpa.config._attn_implementation, eager.config._attn_implementation) == ("sdpa", "eager")
    audio = torch.randn(2, 1, 3000) * 0.1
    padding_mask = torch.ones(2, 3000, dtype=torch.long)
    padding_mask[1, 2000:] = 0
    assert torch.equal(sdpa.encode(audio).audio_codes, eager.encode(audio).audio_codes)
    latents = torch.randn(2, 24, 32)
    torch.testing.assert_close(sdpa.encoder(latents), eager.encoder(latents), atol=1e-5, rtol=1e-5)
    encoded = sdpa.encode(audio, padding_mask)
    a, b = (model.decode_latents(encoded.audio_codes, num_steps=2, generator=torch.Generator().manual_seed(0),
                                 frame_mask=encoded.frame_mask) for model in (sdpa, eager))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.manual_seed(0)
    loss_sdpa = sdpa.train()(latents=latents, generator=torch.Generator().manual_seed(1)).loss
    torch.manual_seed(0)
    loss_eager = eager.train()(latents=latents, generator=torch.Generator().manual_seed(1)).loss
    torch.testing.assert_close(loss_sdpa, loss_eager, atol=1e-5, rtol=1e-5)


def test_a_training_step_in_pure_bf16_keeps_the_codebook_statistics_in_float32(real_clips):
    model = tiny_model().to(torch.bfloat16).train()
    assert model.encoder.input_proj.weight.dtype == torch.bfloat16
    assert {model.quantizer.codebook.dtype, model.quantizer.ema_embed_sum.dtype} == {torch.float32}
    codebook = model.quantizer.codebook.clone()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    output = model(input_values=torch.from_numpy(real_clips)[:, None])  # float32 audio into a bf16 model
    output.loss.backward()
    optimizer.step()
    assert torch.isfinite(output.loss.float()) and output.loss.dtype == torch.bfloat16
    assert model.encoder.input_proj.weight.grad.dtype == torch.bfloat16
    assert output.num_restarted_codes > 0 and not torch.equal(model.quantizer.codebook, codebook)
    assert model.quantizer.codebook.dtype == torch.float32 and model.quantizer.ema_cluster_size.dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_model_takes_the_feature_extractors_float32_output(dtype, real_clips, tmp_path):
    from soundlm import MSNFeatureExtractor

    model = tiny_model().eval()
    model.save_pretrained(tmp_path)
    half = MSNTokenizerModel.from_pretrained(tmp_path, dtype=dtype).eval()
    assert half.dtype == dtype and half.quantizer.codebook.dtype == torch.float32  # _keep_in_fp32_modules
    inputs = MSNFeatureExtractor.from_tokenizer_config(model.config)(list(real_clips[:2]), sampling_rate=8000)
    assert inputs["input_values"].dtype == torch.float32
    codes = half.encode(**inputs).audio_codes
    reference = model.encode(**inputs).audio_codes
    assert codes.shape == reference.shape == (2, 1, 63)
    assert (codes == reference).float().mean() > 0.5  # same tokenizer, lower precision: mostly the same codes
    audio = half.decode(codes, inputs["padding_mask"], num_steps=2).audio_values
    assert torch.equal(half.frontend.mel_filters, model.frontend.mel_filters)  # rebuilt after loading, float32
    assert audio.dtype == dtype and torch.isfinite(audio.float()).all()


class _Encode(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_values):
        return self.model.encode(input_values).audio_codes


class _Decode(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, audio_codes):
        return self.model.decode(audio_codes, num_steps=2, temperature=0.0).audio_values


def test_encode_and_euler_decode_export_with_torch_export():
    model = tiny_model().eval()
    for p in model.decoder.parameters():
        torch.nn.init.normal_(p, std=0.1)
    audio = torch.randn(2, 1, 1000) * 0.1
    exported = torch.export.export(_Encode(model), (audio,))
    other = torch.randn(2, 1, 1000) * 0.1
    assert torch.equal(exported.module()(other), model.encode(other).audio_codes)
    codes = model.encode(audio).audio_codes
    decoder = torch.export.export(_Decode(model), (codes,))
    assert torch.equal(decoder.module()(codes), _Decode(model)(codes))
    # the clear error for NaN audio stays where it belongs: eager calls
    with pytest.raises(ValueError, match="NaN"):
        model.encode(torch.full((1, 1, 1000), float("nan")))


def test_encode_compiles_to_one_graph_and_decode_compiles():
    model = tiny_model().eval()
    audio = torch.randn(2, 1, 1000) * 0.1
    torch._dynamo.reset()
    encode = torch.compile(_Encode(model), backend="eager", fullgraph=True)
    assert torch.equal(encode(audio), model.encode(audio).audio_codes)
    codes = model.encode(audio).audio_codes
    # the DiT (the work of every sampling step) is one graph; the sampling loop builds a diffusers scheduler,
    # whose config machinery dynamo steps around (graph breaks, same results)
    latents, t, condition = torch.randn(2, 8, 32), torch.rand(2), torch.randn(2, 8, 8)
    mask = torch.ones(2, 8, dtype=torch.bool)
    dit = torch.compile(model.decoder, backend="eager", fullgraph=True)
    torch.testing.assert_close(dit(latents, t, condition, mask), model.decoder(latents, t, condition, mask))
    decode = torch.compile(_Decode(model), backend="eager")
    torch.testing.assert_close(decode(codes), _Decode(model)(codes))


def test_condition_dropout_zeroes_whole_clips_in_training_only_and_config_sets_decode_defaults():
    model = tiny_model(flow_prediction="data", condition_dropout=0.5)
    seen = []
    model.decoder.register_forward_hook(lambda module, args, output: seen.append(args[2].detach().clone()))
    latents = torch.randn(8, 6, model.config.latent_dim)
    model.train()
    model(latents=latents, generator=torch.Generator().manual_seed(0))
    dropped = [bool((clip == 0).all()) for clip in seen[-1]]
    assert 0 < sum(dropped) < 8  # whole clips, some of them
    assert all(bool((clip != 0).any()) for clip, gone in zip(seen[-1], dropped, strict=True) if not gone)
    model.eval()
    model(latents=latents, generator=torch.Generator().manual_seed(0))
    assert all(bool((clip != 0).any()) for clip in seen[-1])
    # decode's guidance scale and start time default to the config's
    codes = model.encode_latents(latents[:2])
    model.config.guidance_scale, model.config.flow_start_time = 2.0, 0.4
    from_config = model.decode_latents(codes, num_steps=3, generator=torch.Generator().manual_seed(1))
    explicit = model.decode_latents(codes, num_steps=3, generator=torch.Generator().manual_seed(1),
                                    guidance_scale=2.0, start_time=0.4)
    plain = model.decode_latents(codes, num_steps=3, generator=torch.Generator().manual_seed(1),
                                 guidance_scale=1.0, start_time=0.0)
    torch.testing.assert_close(from_config, explicit)
    assert not torch.allclose(from_config, plain)
    # and the guidance interval too: neither the late start's mean (t = 0) nor a step of 3 from t0 = 0.4 (t = 0.4,
    # 0.6, 0.8) is in [0.1, 0.3), so nothing is guided
    model.config.guidance_interval = [0.1, 0.3]
    outside = model.decode_latents(codes, num_steps=3, generator=torch.Generator().manual_seed(1))
    unguided = model.decode_latents(codes, num_steps=3, generator=torch.Generator().manual_seed(1),
                                    guidance_scale=1.0)
    torch.testing.assert_close(outside, unguided)
    torch.testing.assert_close(model.decode_latents(codes, num_steps=3, generator=torch.Generator().manual_seed(1),
                                                    guidance_interval=(0.0, 1.0)), explicit)
    for key, value in (("condition_dropout", 1.0), ("guidance_scale", -0.5), ("flow_start_time", 1.0),
                       ("guidance_interval", (0.5, 0.2))):
        with pytest.raises(ValueError, match=key):
            MSNTokenizerConfig(**{key: value})


@pytest.mark.reliability(
    "audio or codes many windows long into the tokenizer's `encode` / `decode`",
    "processed window by window (`config.window_frames`): the encoder and the DiT never see more than one window;"
    " codes stay on the frame grid",
)
def test_long_audio_and_codes_go_through_the_model_one_window_at_a_time():
    """3.5 windows of audio: the encoder and the DiT never see more than `window_frames` frames, the codes are the
    windows' codes side by side (on the frame grid: ceil(samples / hop) in all), and decode returns every sample."""
    model = tiny_model()
    window = model.config.window_frames  # 1 s at 8 kHz, hop 128 -> 63 frames
    assert window == 63
    samples = int(3.5 * window * model.hop_length) + 5
    audio = torch.randn(1, 1, samples, generator=torch.Generator().manual_seed(0)) * 0.1
    widest = {"encoder": 0, "decoder": 0}
    model.encoder.register_forward_hook(lambda m, args, out: widest.update(encoder=max(widest["encoder"],
                                                                                       args[0].shape[1])))
    model.decoder.register_forward_hook(lambda m, args, out: widest.update(decoder=max(widest["decoder"],
                                                                                       args[0].shape[1])))
    codes = model.encode(audio).audio_codes
    assert codes.shape == (1, 1, model.num_frames(samples))
    step = window * model.hop_length
    pieces = [model.encode(audio[..., start:start + step]).audio_codes for start in range(0, samples, step)]
    assert torch.equal(codes, torch.cat(pieces, dim=-1))
    latents = model.audio_to_latents(audio[..., :step])
    assert torch.equal(model.encode_latents(torch.cat([latents, latents], dim=1)), torch.cat([codes[..., :window]] * 2,
                                                                                              dim=-1))
    decoded = model.decode(codes, num_steps=2, generator=torch.Generator().manual_seed(0)).audio_values
    assert decoded.shape[-1] == model.num_frames(samples) * model.hop_length and torch.isfinite(decoded).all()
    assert widest == {"encoder": window, "decoder": window}
