"""Audio input and data for soundlm: reading, validation and resampling (`audio_io`, the one place audio
enters), the feature extractor, audio datasets, cached latents, pre-tokenised folders and task builders."""

from .audio_io import (
    AUDIO_ERROR_CATEGORIES,
    AudioInputError,
    check_sampling_rate,
    load_audio,
    resample,
    to_channels,
    validate_audio,
)
from .feature_extraction_msn import MSNFeatureExtractor

__all__ = [
    "AUDIO_ERROR_CATEGORIES",
    "AudioInputError",
    "MSNFeatureExtractor",
    "check_sampling_rate",
    "load_audio",
    "resample",
    "to_channels",
    "validate_audio",
]
