"""Audio input for soundlm: reading, validation, resampling (`audio_io`) and feature extractors."""

from .audio_io import check_sampling_rate, load_audio, resample, to_channels, validate_audio
from .feature_extraction_msn import MSNFeatureExtractor

__all__ = [
    "MSNFeatureExtractor",
    "check_sampling_rate",
    "load_audio",
    "resample",
    "to_channels",
    "validate_audio",
]
