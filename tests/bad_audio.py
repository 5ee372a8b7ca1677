"""The fixed set of awkward audio files the reliability tests write (issue: bad audio, everywhere audio enters).

`write_bad_audio(folder)` writes each case and returns `{name: path}`; `BAD_AUDIO` says what each case is and what
every entry point must do with it: `"works"` (read, resampled to the model's rate, mapped to its channels) or the
`AudioInputError` category it raises (the message names the file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf


@dataclass(frozen=True)
class BadAudio:
    name: str  # file name written
    what: str  # the README's words for it
    expected: str  # "works" or an AudioInputError category


def _tone(rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * t)
    return np.stack([tone * (0.5 + 0.5 * c / max(1, channels)) for c in range(channels)], axis=1).astype(np.float32)


BAD_AUDIO = (
    BadAudio("zero_bytes.wav", "zero bytes", "unreadable"),
    BadAudio("truncated_header.wav", "WAV header cut after 20 bytes", "unreadable"),
    BadAudio("text.wav", "a text file named .wav", "unreadable"),
    BadAudio("one_sample.wav", "1 sample", "works"),
    BadAudio("ten_minutes.wav", "10 minutes (8 kHz mono)", "works"),
    BadAudio("all_zeros.wav", "all zeros (1 s)", "works"),
    BadAudio("nan.wav", "NaN samples (float WAV)", "non_finite"),
    BadAudio("inf.wav", "Inf samples (float WAV)", "non_finite"),
    BadAudio("rate_8000.wav", "8 kHz", "works"),
    BadAudio("rate_22050.wav", "22.05 kHz", "works"),
    BadAudio("rate_96000.wav", "96 kHz", "works"),
    BadAudio("stereo.wav", "2 channels", "works"),
    BadAudio("six_channels.wav", "6 channels (5.1)", "works"),
    BadAudio("int16.wav", "16-bit PCM", "works"),
    BadAudio("int32.wav", "32-bit PCM", "works"),
    BadAudio("float64.wav", "64-bit float", "works"),
    BadAudio("vorbis.ogg", "Ogg Vorbis", "works"),
    BadAudio("lossless.flac", "FLAC", "works"),
    BadAudio("compressed.mp3", "MP3", "works"),
)


def write_bad_audio(folder: str | Path) -> dict[str, Path]:
    """Write every case of `BAD_AUDIO` into `folder`; returns `{name: path}`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {case.name: folder / case.name for case in BAD_AUDIO}
    paths["zero_bytes.wav"].write_bytes(b"")
    sf.write(folder / "whole.wav", _tone(16000, 0.5), 16000, subtype="PCM_16")
    paths["truncated_header.wav"].write_bytes((folder / "whole.wav").read_bytes()[:20])
    (folder / "whole.wav").unlink()
    paths["text.wav"].write_text("this is not audio\n")
    sf.write(paths["one_sample.wav"], np.array([[0.25]], dtype=np.float32), 16000, subtype="PCM_16")
    sf.write(paths["ten_minutes.wav"], _tone(8000, 600.0), 8000, subtype="PCM_16")
    sf.write(paths["all_zeros.wav"], np.zeros((16000, 1), dtype=np.float32), 16000, subtype="PCM_16")
    for name, value in (("nan.wav", np.nan), ("inf.wav", np.inf)):
        samples = _tone(16000, 1.0)
        samples[4000:4100] = value
        sf.write(paths[name], samples, 16000, subtype="FLOAT")
    for rate in (8000, 22050, 96000):
        sf.write(paths[f"rate_{rate}.wav"], _tone(rate, 1.0), rate, subtype="PCM_16")
    sf.write(paths["stereo.wav"], _tone(16000, 1.0, channels=2), 16000, subtype="PCM_16")
    sf.write(paths["six_channels.wav"], _tone(16000, 1.0, channels=6), 16000, subtype="PCM_16")
    for name, subtype in (("int16.wav", "PCM_16"), ("int32.wav", "PCM_32"), ("float64.wav", "DOUBLE")):
        sf.write(paths[name], _tone(16000, 1.0), 16000, subtype=subtype)
    sf.write(paths["vorbis.ogg"], _tone(16000, 1.0), 16000, format="OGG", subtype="VORBIS")
    sf.write(paths["lossless.flac"], _tone(16000, 1.0), 16000, format="FLAC", subtype="PCM_16")
    sf.write(paths["compressed.mp3"], _tone(16000, 1.0), 16000, format="MP3", subtype="MPEG_LAYER_III")
    return paths
