"""Predicted MOS for speech: Microsoft's DNSMOS (P.835 SIG / BAK / OVRL and P.808), from the `speechmos` package.

The LM-MSN paper reports predicted MOS for its speech reconstructions (VCTK). DNSMOS's ONNX models ship inside the
`speechmos` wheel, so this runs offline. It expects 16 kHz mono in [-1, 1]: other rates are resampled, channels
averaged, and samples beyond full scale clipped (as writing the audio to a PCM file would), with the clipped share
returned beside the scores. Clips shorter than DNSMOS's 9.01-s window are repeated to fill it (speechmos's rule).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..processing.audio_io import check_sampling_rate, resample, to_channels, validate_audio

__all__ = ["DNSMOS_NAME", "dnsmos"]

DNSMOS_NAME = "DNSMOS P.835 (speechmos)"
_RATE = 16000


def dnsmos(audio: Any, sampling_rate: int) -> dict[str, float]:
    """Predicted MOS of one speech clip: {"ovrl", "sig", "bak", "p808", "clipped_fraction"} (MOS on 1-5)."""
    try:
        from speechmos import dnsmos as speechmos_dnsmos
    except ImportError as error:
        message = f"DNSMOS needs the speechmos package (and librosa): pip install 'soundlm[eval]' ({error})"
        raise ImportError(message) from None
    audio = validate_audio(audio)
    audio = resample(to_channels(audio, 1, downmix=True), check_sampling_rate(sampling_rate), _RATE)[0]
    clipped = float((np.abs(audio) > 1.0).mean())
    scores = speechmos_dnsmos.run(np.clip(audio, -1.0, 1.0).astype(np.float32), _RATE)
    return {"ovrl": float(scores["ovrl_mos"]), "sig": float(scores["sig_mos"]), "bak": float(scores["bak_mos"]),
            "p808": float(scores["p808_mos"]), "clipped_fraction": clipped}
