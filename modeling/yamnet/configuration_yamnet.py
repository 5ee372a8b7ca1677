"""Configuration of YAMNet (Plakal and Ellis, TensorFlow models `research/audioset/yamnet`): a MobileNetV1 on
log-mel patches of 16 kHz audio, trained on AudioSet (521 classes)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from transformers import PretrainedConfig

# MobileNetV1 as YAMNet uses it: a full 3x3 convolution, then 13 depthwise-separable blocks.
YAMNET_LAYER_CHANNELS = (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
YAMNET_LAYER_STRIDES = (2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)
YAMNET_NUM_CLASSES = 521


class YamnetConfig(PretrainedConfig):
    r"""Configuration of [`YamnetModel`]: the log-mel front end's numbers and the MobileNetV1's layers.

    The defaults are YAMNet's (`params.py` of the TensorFlow reference). Layer 0 is a full convolution, every later
    layer a depthwise-separable block (3x3 depthwise convolution -> batch norm -> ReLU -> 1x1 convolution -> batch
    norm -> ReLU); all convolutions pad as TensorFlow's `"SAME"`. The embedding is the global average of the last
    feature map (`hidden_size` = `layer_channels[-1]` = 1024) and the classifier a linear layer on it, whose sigmoid
    gives the per-class scores. A converted checkpoint carries the AudioSet display names in `id2label`.

    Args:
        sampling_rate (`int`, *optional*, defaults to 16000): sampling rate of the waveform the features come from.
        stft_window_seconds (`float`, *optional*, defaults to 0.025): STFT window (400 samples).
        stft_hop_seconds (`float`, *optional*, defaults to 0.010): STFT hop (160 samples).
        num_mel_bins (`int`, *optional*, defaults to 64): mel bands (the width of a patch).
        mel_min_hz (`float`, *optional*, defaults to 125.0): lower edge of the lowest mel band.
        mel_max_hz (`float`, *optional*, defaults to 7500.0): upper edge of the highest mel band.
        log_offset (`float`, *optional*, defaults to 0.001): features are `log(mel + log_offset)`.
        patch_window_seconds (`float`, *optional*, defaults to 0.96): patch length (`patch_frames` = 96 frames).
        patch_hop_seconds (`float`, *optional*, defaults to 0.48): hop between patches (YAMNet trained with 0.48).
        layer_channels (`list[int]`, *optional*, defaults to `[32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512,
            512, 1024, 1024]`): output channels of each layer.
        layer_strides (`list[int]`, *optional*, defaults to `[2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]`): stride
            of each layer's (depthwise) 3x3 convolution; a 96 x 64 patch ends as a 3 x 2 map.
        conv_kernel_size (`int`, *optional*, defaults to 3): kernel of the full and the depthwise convolutions.
        batch_norm_eps (`float`, *optional*, defaults to 1e-4): batch norm epsilon (Keras default is 1e-3;
            YAMNet's is 1e-4).
        batch_norm_momentum (`float`, *optional*, defaults to 0.01): torch's momentum of the running statistics
            (Keras' 0.99).
        batch_norm_scale (`bool`, *optional*, defaults to `False`): whether batch norms learn a scale (gamma).
            YAMNet's do not: gamma is 1 and the norms have no `weight` parameter.
        classifier_activation (`str`, *optional*, defaults to `"sigmoid"`): how logits become scores (AudioSet is
            multi-label).
        initializer_range (`float`, *optional*, defaults to 0.02): std of the classifier's normal initialisation
            (convolutions use He initialisation).
        num_labels (`int`, *optional*, defaults to 521): number of classes, unless `id2label` is given.
    """

    model_type = "yamnet"

    def __init__(
        self,
        sampling_rate: int = 16000,
        stft_window_seconds: float = 0.025,
        stft_hop_seconds: float = 0.010,
        num_mel_bins: int = 64,
        mel_min_hz: float = 125.0,
        mel_max_hz: float = 7500.0,
        log_offset: float = 0.001,
        patch_window_seconds: float = 0.96,
        patch_hop_seconds: float = 0.48,
        layer_channels: Sequence[int] = YAMNET_LAYER_CHANNELS,
        layer_strides: Sequence[int] = YAMNET_LAYER_STRIDES,
        conv_kernel_size: int = 3,
        batch_norm_eps: float = 1e-4,
        batch_norm_momentum: float = 0.01,
        batch_norm_scale: bool = False,
        classifier_activation: str = "sigmoid",
        initializer_range: float = 0.02,
        **kwargs,
    ):
        layer_channels = [int(c) for c in layer_channels]
        layer_strides = [int(s) for s in layer_strides]
        if not layer_channels or len(layer_channels) != len(layer_strides):
            raise ValueError(
                f"layer_channels ({len(layer_channels)}) and layer_strides ({len(layer_strides)}) must give one entry "
                "per layer, at least one layer"
            )
        if min(layer_channels) < 1 or min(layer_strides) < 1 or conv_kernel_size < 1:
            raise ValueError("layer channels, strides and conv_kernel_size must be positive")
        if classifier_activation not in ("sigmoid", "softmax"):
            raise ValueError(f"classifier_activation must be 'sigmoid' or 'softmax', got {classifier_activation!r}")
        if sampling_rate <= 0 or num_mel_bins < 1 or not 0.0 <= mel_min_hz < mel_max_hz <= sampling_rate / 2:
            raise ValueError(
                f"need sampling_rate > 0, num_mel_bins >= 1 and 0 <= mel_min_hz < mel_max_hz <= sampling_rate / 2; got "
                f"{sampling_rate}, {num_mel_bins}, {mel_min_hz}, {mel_max_hz}"
            )
        for name, value in (
            ("stft_window_seconds", stft_window_seconds),
            ("stft_hop_seconds", stft_hop_seconds),
            ("log_offset", log_offset),
            ("patch_window_seconds", patch_window_seconds),
            ("patch_hop_seconds", patch_hop_seconds),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if "id2label" not in kwargs and "num_labels" not in kwargs:
            kwargs["num_labels"] = YAMNET_NUM_CLASSES
        self.sampling_rate = int(sampling_rate)
        self.stft_window_seconds = float(stft_window_seconds)
        self.stft_hop_seconds = float(stft_hop_seconds)
        self.num_mel_bins = int(num_mel_bins)
        self.mel_min_hz = float(mel_min_hz)
        self.mel_max_hz = float(mel_max_hz)
        self.log_offset = float(log_offset)
        self.patch_window_seconds = float(patch_window_seconds)
        self.patch_hop_seconds = float(patch_hop_seconds)
        self.layer_channels = layer_channels
        self.layer_strides = layer_strides
        self.conv_kernel_size = int(conv_kernel_size)
        self.batch_norm_eps = float(batch_norm_eps)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.batch_norm_scale = bool(batch_norm_scale)
        self.classifier_activation = classifier_activation
        self.initializer_range = float(initializer_range)
        super().__init__(**kwargs)

    @property
    def hidden_size(self) -> int:
        """Size of the embedding: channels of the last layer (1024)."""
        return self.layer_channels[-1]

    @property
    def num_hidden_layers(self) -> int:
        """Convolutional layers (14: one full convolution and 13 separable blocks)."""
        return len(self.layer_channels)

    @property
    def patch_frames(self) -> int:
        """STFT frames per patch (96): the height of the network's input."""
        return int(round(self.patch_window_seconds / self.stft_hop_seconds))


__all__ = ["YamnetConfig"]
