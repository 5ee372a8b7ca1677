"""Tests of `YamnetConfig` / `YamnetModel` with random weights: shapes, TF "SAME" padding, padded batches, the
waveform path, save/load, Auto classes, training mode."""


import numpy as np
import pytest
import torch
from helpers import run_docstring_examples
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from soundlm.modeling.yamnet import YamnetConfig, YamnetFeatureExtractor, YamnetModel, YamnetOutput
from soundlm.modeling.yamnet.modeling_yamnet import same_padding

SR = 16000


@pytest.fixture
def tiny_config():
    return YamnetConfig(layer_channels=[4, 8, 8], layer_strides=[2, 2, 1], num_labels=5)


@pytest.fixture
def tiny_model(tiny_config):
    torch.manual_seed(0)
    return YamnetModel(tiny_config).eval()


def test_default_config_is_yamnets():
    config = YamnetConfig()
    assert config.model_type == "yamnet"
    assert (config.sampling_rate, config.num_mel_bins, config.patch_frames, config.num_labels) == (16000, 64, 96, 521)
    assert (config.mel_min_hz, config.mel_max_hz, config.log_offset) == (125.0, 7500.0, 0.001)
    assert (config.stft_window_seconds, config.stft_hop_seconds) == (0.025, 0.010)
    assert (config.patch_window_seconds, config.patch_hop_seconds) == (0.96, 0.48)
    assert config.num_hidden_layers == 14 and config.hidden_size == 1024
    assert (config.batch_norm_eps, config.batch_norm_scale, config.classifier_activation) == (1e-4, False, "sigmoid")
    again = YamnetConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()


def test_config_validation():
    with pytest.raises(ValueError, match="one entry per layer"):
        YamnetConfig(layer_channels=[4, 8], layer_strides=[2])
    with pytest.raises(ValueError, match="mel_max_hz"):
        YamnetConfig(mel_max_hz=9000.0)
    with pytest.raises(ValueError, match="classifier_activation"):
        YamnetConfig(classifier_activation="relu")
    with pytest.raises(ValueError, match="patch_hop_seconds"):
        YamnetConfig(patch_hop_seconds=0)


def test_same_padding_is_tensorflows():
    # out = ceil(size / stride); an odd total pads one more after
    assert same_padding(96, 3, 2) == (0, 1)
    assert same_padding(3, 3, 2) == (1, 1)
    assert same_padding(7, 3, 1) == (1, 1)
    assert same_padding(6, 1, 1) == (0, 0)
    assert same_padding(5, 3, 2) == (1, 1)
    # the full architecture: 96 x 64 -> 3 x 2 after five stride-2 layers; no scale (gamma) in the batch norms
    model = YamnetModel(YamnetConfig()).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 96, 64))
    assert out.last_hidden_state.shape == (1, 1, 1024, 3, 2)
    assert out.embeddings.shape == (1, 1, 1024) and out.logits.shape == (1, 1, 521)
    assert all(layer.norm.weight is None for layer in model.layers[:1])
    assert sum(p.numel() for p in model.parameters()) == 3_729_481  # YAMNet's trainable weights


def test_shapes_and_outputs(tiny_model):
    features = torch.randn(2, 3, 96, 64)
    with torch.no_grad():
        out = tiny_model(features, output_hidden_states=True)
    assert isinstance(out, YamnetOutput)
    assert out.embeddings.shape == (2, 3, 8)
    assert out.logits.shape == (2, 3, 5)
    assert out.last_hidden_state.shape == (2, 3, 8, 24, 16)
    assert out.patch_mask.dtype == torch.bool and out.patch_mask.all()
    assert [tuple(h.shape) for h in out.hidden_states] == [
        (2, 3, 1, 96, 64), (2, 3, 4, 48, 32), (2, 3, 8, 24, 16), (2, 3, 8, 24, 16)
    ]
    torch.testing.assert_close(out.embeddings, out.last_hidden_state.mean(dim=(-2, -1)))
    torch.testing.assert_close(out.logits, tiny_model.classifier(out.embeddings))
    assert torch.all((tiny_model.scores(out.logits) > 0) & (tiny_model.scores(out.logits) < 1))
    with torch.no_grad():
        as_tuple = tiny_model(features, return_dict=False)
    assert torch.equal(as_tuple[0], out.embeddings) and torch.equal(as_tuple[1], out.logits)
    with pytest.raises(ValueError, match="input_features must have shape"):
        tiny_model(torch.randn(3, 96, 64))
    with pytest.raises(ValueError, match="patch_mask must have shape"):
        tiny_model(features, torch.ones(2, 4))


def test_padded_batch_equals_items_alone(tiny_model):
    torch.manual_seed(1)
    items = [torch.randn(1, n, 96, 64) for n in (1, 4, 2)]
    batch = torch.zeros(3, 4, 96, 64).fill_(123.0)  # padding content must not matter
    mask = torch.zeros(3, 4, dtype=torch.long)
    for index, item in enumerate(items):
        batch[index, : item.shape[1]] = item[0]
        mask[index, : item.shape[1]] = 1
    with torch.no_grad():
        out = tiny_model(batch, mask)
        for index, item in enumerate(items):
            alone = tiny_model(item)
            n = item.shape[1]
            torch.testing.assert_close(out.embeddings[index, :n], alone.embeddings[0], atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(out.logits[index, :n], alone.logits[0], atol=1e-6, rtol=1e-5)
            assert torch.all(out.embeddings[index, n:] == 0) and torch.all(out.logits[index, n:] == 0)
    assert torch.equal(out.patch_mask, mask.bool())


def test_forward_waveforms_equals_extractor_then_forward(tiny_model, tiny_config):
    extractor = YamnetFeatureExtractor.from_yamnet_config(tiny_config)
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (20000, 9000)]
    batch = extractor(clips, sampling_rate=SR)
    waveforms = torch.zeros(2, 20000)
    padding_mask = torch.zeros(2, 20000, dtype=torch.long)
    for index, clip in enumerate(clips):
        waveforms[index, : len(clip)] = torch.from_numpy(clip)
        padding_mask[index, : len(clip)] = 1
    with torch.no_grad():
        from_features = tiny_model(**batch)
        from_waveforms = tiny_model.forward_waveforms(waveforms, padding_mask)
        single = tiny_model.forward_waveforms(torch.from_numpy(clips[0]))  # 1-D: a batch of one
    assert torch.equal(from_waveforms.patch_mask, batch["patch_mask"].bool())
    torch.testing.assert_close(from_waveforms.embeddings, from_features.embeddings)
    torch.testing.assert_close(single.logits[0], from_features.logits[0])
    assert tiny_model.sample_rate == 16000


def test_save_load_round_trip_and_auto_classes(tiny_model, tiny_config, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    YamnetFeatureExtractor.from_yamnet_config(tiny_config).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert isinstance(AutoConfig.from_pretrained(tmp_path), YamnetConfig)
    assert isinstance(AutoFeatureExtractor.from_pretrained(tmp_path), YamnetFeatureExtractor)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, YamnetModel)
    assert loaded.config.layer_channels == [4, 8, 8] and loaded.config.num_labels == 5
    original, restored = tiny_model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[name], restored[name]) for name in original)
    features = torch.randn(1, 2, 96, 64)
    with torch.no_grad():
        assert torch.equal(tiny_model(features).logits, loaded.eval()(features).logits)


def test_training_step_and_dtype(tiny_model):
    tiny_model.train()
    features = torch.randn(2, 3, 96, 64)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    before = tiny_model.layers[0].norm.running_mean.clone()
    out = tiny_model(features, mask)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out.logits[mask.bool()], torch.zeros(3, 5))
    loss.backward()
    assert tiny_model.layers[0].conv.weight.grad is not None
    assert tiny_model.layers[0].norm.weight is None  # no gamma to train
    assert not torch.equal(before, tiny_model.layers[0].norm.running_mean)  # statistics of the 3 real patches
    bf16 = tiny_model.eval().to(torch.bfloat16)
    with torch.no_grad():
        assert bf16(features).logits.dtype == torch.bfloat16  # float32 features cast at the boundary


def test_docstring_example_runs():
    found, failed = run_docstring_examples(YamnetModel, "YamnetModel")
    assert found
    assert failed == 0
