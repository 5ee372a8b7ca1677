"""YAMNet in PyTorch: a MobileNetV1 on log-mel patches, trained by Google on AudioSet (521 classes).

Reference: TensorFlow models, `research/audioset/yamnet/yamnet.py` (Apache-2.0). The real weights come from
`convert_yamnet_tf_checkpoint.py`. Data flow for a batch of B clips of P patches each (shapes at the defaults):

    input_features (B, P, 96, 64)  log-mel patches (from `YamnetFeatureExtractor`); only patches of patch_mask run
      -> (N, 1, 96, 64)            N real patches, one channel: time is the height, mel bands the width
      -> conv 3x3 /2                                 (N, 32, 48, 32)
      -> 13 separable blocks (3x3 depthwise + 1x1)   (N, 1024, 3, 2)   = last_hidden_state
      -> global average pool                         (N, 1024)         = embeddings
      -> linear                                      (N, 521)          = logits;  sigmoid(logits) = class scores
      -> scattered back to (B, P, ...), zeros on padded patches

Every convolution pads as TensorFlow's "SAME" (for stride 2 on an even size: nothing before, one row after), and
every batch norm has no learned scale and epsilon 1e-4, as the TensorFlow model does; ReLU follows each norm.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from ...processing.feature_extraction_yamnet import YamnetFeatureExtractor
from .configuration_yamnet import YamnetConfig


@dataclass
class YamnetOutput(ModelOutput):
    """Output of [`YamnetModel`]. Entries of padded patches (`patch_mask` 0) are zeros.

    Args:
        embeddings (`torch.FloatTensor` of shape `(batch_size, num_patches, hidden_size)`): the 1024-d YAMNet
            embedding of each 0.96-s patch (global average of `last_hidden_state`).
        logits (`torch.FloatTensor` of shape `(batch_size, num_patches, num_labels)`): class logits of each patch;
            `torch.sigmoid(logits)` are YAMNet's scores (`YamnetModel.scores`), labels in `config.id2label`.
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_patches, hidden_size, height, width)`):
            the last feature map of each patch, `(..., 1024, 3, 2)` at the defaults (time x mel bands).
        patch_mask (`torch.BoolTensor` of shape `(batch_size, num_patches)`): True on real patches.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`): the
            input `(batch_size, num_patches, 1, patch_frames, num_mel_bins)` and the output of each layer
            `(batch_size, num_patches, channels, height, width)`.
    """

    embeddings: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    patch_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


def same_padding(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding of one axis: (before, after) so that the output has ceil(size / stride) entries;
    an odd total puts the extra entry after."""
    output_size = -(-size // stride)
    total = max((output_size - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


class YamnetConv2dSame(nn.Conv2d):
    """`nn.Conv2d` with TensorFlow's "SAME" padding (which torch's `padding="same"` gives only for stride 1)."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(hidden_states.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = same_padding(hidden_states.shape[-1], self.kernel_size[1], self.stride[1])
        return super().forward(F.pad(hidden_states, (left, right, top, bottom)))


class YamnetBatchNorm2d(nn.BatchNorm2d):
    """Batch norm as YAMNet's (Keras `BatchNormalization(center=True, scale=False, epsilon=1e-4)`): a learned shift
    (beta, `bias`) and, unless `config.batch_norm_scale`, no scale at all (`weight` is None: gamma = 1)."""

    def __init__(self, channels: int, config: YamnetConfig):
        super().__init__(channels, eps=config.batch_norm_eps, momentum=config.batch_norm_momentum, affine=True)
        if not config.batch_norm_scale:
            del self.weight
            self.register_parameter("weight", None)


class YamnetConvLayer(nn.Module):
    """Layer 0: full convolution -> batch norm -> ReLU."""

    def __init__(self, config: YamnetConfig, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        kernel = config.conv_kernel_size
        self.conv = YamnetConv2dSame(in_channels, out_channels, kernel, stride=stride, bias=False)
        self.norm = YamnetBatchNorm2d(out_channels, config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(hidden_states)))


class YamnetSeparableConvLayer(nn.Module):
    """Layers 1+: depthwise 3x3 convolution -> batch norm -> ReLU -> pointwise 1x1 convolution -> batch norm -> ReLU."""

    def __init__(self, config: YamnetConfig, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        kernel = config.conv_kernel_size
        self.depthwise_conv = YamnetConv2dSame(
            in_channels, in_channels, kernel, stride=stride, groups=in_channels, bias=False
        )
        self.depthwise_norm = YamnetBatchNorm2d(in_channels, config)
        self.pointwise_conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.pointwise_norm = YamnetBatchNorm2d(out_channels, config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = F.relu(self.depthwise_norm(self.depthwise_conv(hidden_states)))
        return F.relu(self.pointwise_norm(self.pointwise_conv(hidden_states)))


class YamnetPreTrainedModel(PreTrainedModel):
    config_class = YamnetConfig
    base_model_prefix = "yamnet"
    main_input_name = "input_features"
    supports_gradient_checkpointing = False
    _no_split_modules = ["YamnetConvLayer", "YamnetSeparableConvLayer"]

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            # He initialisation (fan in): a randomly initialised network keeps its activations at a usable scale
            init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        else:
            super()._init_weights(module)  # linear: normal(initializer_range); batch norms: identity statistics


class YamnetModel(YamnetPreTrainedModel):
    """YAMNet: log-mel patches -> per-patch 1024-d embeddings and 521 AudioSet class logits.

    `forward(input_features, patch_mask)` takes the feature extractor's output; `forward_waveforms(input_values,
    padding_mask)` takes 16 kHz mono waveforms and computes the features itself (same numbers). Patches are
    independent: a clip's outputs do not depend on the rest of the batch.

    Example:

    ```python
    >>> import numpy as np, torch
    >>> from soundlm.modeling.yamnet import YamnetConfig, YamnetFeatureExtractor, YamnetModel

    >>> model = YamnetModel(YamnetConfig()).eval()            # random weights; load_pretrained_yamnet() for real ones
    >>> extractor = YamnetFeatureExtractor.from_yamnet_config(model.config)
    >>> tone = np.sin(2 * np.pi * 1000 * np.arange(32000) / 16000).astype(np.float32)   # 2 s
    >>> with torch.no_grad():
    ...     out = model(**extractor(tone, sampling_rate=16000))
    >>> out.embeddings.shape, out.logits.shape
    (torch.Size([1, 4, 1024]), torch.Size([1, 4, 521]))

    ```
    """

    def __init__(self, config: YamnetConfig):
        super().__init__(config)
        layers: list[nn.Module] = []
        in_channels = 1
        for index, (channels, stride) in enumerate(zip(config.layer_channels, config.layer_strides)):
            layer_class = YamnetConvLayer if index == 0 else YamnetSeparableConvLayer
            layers.append(layer_class(config, in_channels, channels, stride))
            in_channels = channels
        self.layers = nn.ModuleList(layers)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @property
    def sample_rate(self) -> int:
        """Sampling rate in Hz of the waveforms `forward_waveforms` takes (16000)."""
        return self.config.sampling_rate

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Class scores from logits: sigmoid (YAMNet's, multi-label) or softmax, by `config.classifier_activation`."""
        if self.config.classifier_activation == "softmax":
            return logits.softmax(dim=-1)
        return torch.sigmoid(logits)

    def forward(
        self,
        input_features: torch.Tensor,
        patch_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> YamnetOutput | tuple:
        r"""
        Args:
            input_features (`torch.FloatTensor` of shape `(batch_size, num_patches, patch_frames, num_mel_bins)`):
                log-mel patches, `(batch_size, num_patches, 96, 64)` for YAMNet (from [`YamnetFeatureExtractor`]).
            patch_mask (`torch.Tensor` of shape `(batch_size, num_patches)`, *optional*):
                1 (True) on real patches, 0 on padding; padded patches are not computed and their outputs are zero.
                Defaults to all real.
            output_hidden_states (`bool`, *optional*): also return the input and every layer's output.
            return_dict (`bool`, *optional*): return a [`YamnetOutput`] (default) rather than a tuple.

        Returns:
            [`YamnetOutput`]: embeddings, logits, last_hidden_state, patch_mask (and hidden_states).
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if return_dict is None:
            return_dict = self.config.return_dict
        expected = (self.config.patch_frames, self.config.num_mel_bins)
        if input_features.ndim != 4 or tuple(input_features.shape[-2:]) != expected:
            raise ValueError(
                f"input_features must have shape (batch_size, num_patches, {expected[0]}, {expected[1]}), got "
                f"{tuple(input_features.shape)}"
            )
        batch_size, num_patches = input_features.shape[:2]
        if patch_mask is None:
            patch_mask = torch.ones(batch_size, num_patches, dtype=torch.bool, device=input_features.device)
        elif tuple(patch_mask.shape) != (batch_size, num_patches):
            raise ValueError(
                f"patch_mask must have shape {(batch_size, num_patches)} like input_features, got "
                f"{tuple(patch_mask.shape)}"
            )
        patch_mask = patch_mask.to(device=input_features.device, dtype=torch.bool)

        # the real patches only, as a batch of one-channel images (time x mel bands)
        hidden_states = input_features[patch_mask].unsqueeze(1).to(self.dtype)  # (N, 1, frames, mels)
        all_hidden_states = [hidden_states] if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states)  # (N, channels, height, width)
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
        embeddings = hidden_states.mean(dim=(-2, -1))  # global average pool: (N, hidden_size)
        logits = self.classifier(embeddings)  # (N, num_labels)

        def per_patch(values: torch.Tensor) -> torch.Tensor:
            """(N, ...) values of the real patches -> (batch_size, num_patches, ...), zeros on padding."""
            out = values.new_zeros(batch_size, num_patches, *values.shape[1:])
            out[patch_mask] = values
            return out

        output = YamnetOutput(
            embeddings=per_patch(embeddings),
            logits=per_patch(logits),
            last_hidden_state=per_patch(hidden_states),
            patch_mask=patch_mask,
            hidden_states=tuple(per_patch(h) for h in all_hidden_states) if output_hidden_states else None,
        )
        return output if return_dict else output.to_tuple()

    def forward_waveforms(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> YamnetOutput | tuple:
        r"""
        YAMNet on waveforms: the feature extractor's computation (in torch, on the input's device), then `forward`.

        Args:
            input_values (`torch.FloatTensor` of shape `(batch_size, num_samples)` or `(num_samples,)`): mono audio
                at `config.sampling_rate` (16 kHz). Use [`YamnetFeatureExtractor`] for other rates, stereo or files.
            padding_mask (`torch.Tensor` of shape `(batch_size, num_samples)`, *optional*): 1 on real samples, which
                come first (right padding); each clip gives `num_patches(its length)` patches. Defaults to all real.

        Returns:
            [`YamnetOutput`], as `forward`.
        """
        if input_values.ndim == 1:
            input_values = input_values[None]
        if input_values.ndim != 2:
            raise ValueError(
                f"input_values must have shape (batch_size, num_samples) of mono audio, got {tuple(input_values.shape)}"
            )
        lengths = None if padding_mask is None else padding_mask.reshape(input_values.shape).sum(-1)
        extractor = YamnetFeatureExtractor.from_yamnet_config(self.config)
        input_features, patch_mask = extractor.log_mel_patches(input_values, lengths)
        return self.forward(input_features, patch_mask, output_hidden_states, return_dict)


__all__ = ["YamnetModel", "YamnetOutput", "YamnetPreTrainedModel"]
