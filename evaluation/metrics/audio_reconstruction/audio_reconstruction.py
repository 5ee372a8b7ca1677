"""Loudness and spectral measures of reconstructions as a local `evaluate` module:
evaluate.load("<folder>/audio_reconstruction").

It calls soundlm.evaluation.signal (imported by name: evaluate runs a copy of this file).
"""

import datasets
import evaluate
import numpy as np

# evaluate runs a copy of this file from its modules cache: the library is imported by its installed name
import soundlm.evaluation.signal as _library

_CITATION = """\
@inproceedings{yamamoto2020parallel,
  title={Parallel {WaveGAN}: A fast waveform generation model based on generative adversarial networks with
  multi-resolution spectrogram}, author={Yamamoto, Ryuichi and Song, Eunwoo and Kim, Jae-Min}, booktitle={ICASSP},
  year={2020}}
"""

_DESCRIPTION = """\
How a reconstruction compares with its reference clip: the RMS level difference in dB (positive: louder), the
share of clipped samples, the multi-resolution STFT distance and the log-mel distance (nats); per clip and as
means (the level difference also as a median); and the spectral flatness of the reconstructions and of the
references (0 a pure tone, 0.56 white noise; medians), which rises where harmonics were turned into noise.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: reconstructed clips, each a list of float samples (mono).
    references: the reference clips, each a list of float samples (the same lengths, within 1 %).
    sampling_rate: the clips' sampling rate in Hz (required).
Returns:
    {"level_db_median", "level_db_mean", "clipped_fraction", "mr_stft", "mel_distance", "flatness_median",
     "reference_flatness_median", "per_item": {...}}
Examples:
    >>> metric = evaluate.load("evaluation/metrics/audio_reconstruction")
    >>> metric.compute(predictions=[[0.2, -0.2] * 400], references=[[0.1, -0.1] * 400], sampling_rate=8000)[
    ...     "level_db_median"]  # doctest: +ELLIPSIS
    6.02...
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AudioReconstruction(evaluate.Metric):
    """Level difference, clipping, MR-STFT and mel distances of reconstructions against references."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("float32")),
                                        "references": datasets.Sequence(datasets.Value("float32"))}),
        )

    def _compute(self, predictions, references, sampling_rate=None):
        if sampling_rate is None:
            raise ValueError("sampling_rate is required (Hz)")
        pairs = [(np.asarray(p, np.float32), np.asarray(r, np.float32)) for p, r in zip(predictions, references)]
        per_item = {
            "level_db": [_library.level_difference_db(p, r) for p, r in pairs],
            "clipped_fraction": [_library.clipped_fraction(p) for p, _ in pairs],
            "mr_stft": [_library.multi_resolution_stft_distance(p, r) for p, r in pairs],
            "mel_distance": [_library.mel_distance(p, r, int(sampling_rate)) for p, r in pairs],
            "flatness": [_library.spectral_flatness(p) for p, _ in pairs],
            "reference_flatness": [_library.spectral_flatness(r) for _, r in pairs],
        }
        return {
            "level_db_median": float(np.median(per_item["level_db"])),
            "level_db_mean": float(np.mean(per_item["level_db"])),
            "clipped_fraction": float(np.mean(per_item["clipped_fraction"])),
            "mr_stft": float(np.mean(per_item["mr_stft"])),
            "mel_distance": float(np.mean(per_item["mel_distance"])),
            "flatness_median": float(np.median(per_item["flatness"])),
            "reference_flatness_median": float(np.median(per_item["reference_flatness"])),
            "per_item": per_item,
        }
