"""Fréchet Audio Distance as a local `evaluate` module: evaluate.load("<folder>/frechet_audio_distance").

It calls soundlm.evaluation.frechet.fad on embeddings the caller made (imported by name: evaluate runs a copy of
this file). The embedding model is a required argument, so that no FAD is reported without it.
"""

import datasets
import evaluate
import numpy as np

# evaluate runs a copy of this file from its modules cache: the library is imported by its installed name
import soundlm.evaluation.frechet as _library

_CITATION = """\
@inproceedings{kilgour2019fad,
  title={Fr{\\'e}chet Audio Distance: A Reference-Free Metric for Evaluating Music Enhancement Algorithms},
  author={Kilgour, Kevin and Zuluaga, Mauricio and Roblek, Dominik and Sharifi, Matthew}, booktitle={Interspeech},
  year={2019}}
@inproceedings{gui2024fadtk,
  title={Adapting Frechet Audio Distance for Generative Music Evaluation},
  author={Gui, Azalea and Gamper, Hannes and Braun, Sebastian and Emmanouilidou, Dimitra}, booktitle={ICASSP},
  year={2024}}
"""

_DESCRIPTION = """\
The Fréchet distance between Gaussians fitted to two sets of audio embeddings (frames pooled over clips), with the
unbiased FAD-infinity extrapolation of fadtk as an option. Embed with soundlm.evaluation.embeddings (YAMNet, any
transformers audio encoder, CLAP) and pass the embedding model's name.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: embeddings of the evaluated audio, one row (list of floats) per frame.
    reference_embeddings: embeddings of the reference audio, one row per frame, any count (a keyword argument:
        evaluate's columns are of one length).
    model: the embedding model's name (required).
    with_inf: also compute FAD-infinity (default False).
Returns:
    {"fad": float, "fad_inf": float or None, "model": str, "num_samples": int, "num_reference": int}
Examples:
    >>> metric = evaluate.load("evaluation/metrics/frechet_audio_distance")
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(50, 3)), rng.normal(size=(80, 3))
    >>> round(metric.compute(predictions=a, reference_embeddings=b, model="toy")["fad"], 3) >= 0
    True
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FrechetAudioDistance(evaluate.Metric):
    """FAD (and FAD-infinity) between two sets of audio embeddings."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # one column: the two sets differ in size, so the reference set is a keyword argument
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("float64"))}),
            codebase_urls=["https://github.com/microsoft/fadtk"],
        )

    def _compute(self, predictions, reference_embeddings=None, model=None, with_inf=False):
        if reference_embeddings is None:
            raise ValueError("reference_embeddings is required: the reference set's rows (any count)")
        result = _library.fad(np.asarray(predictions), np.asarray(reference_embeddings), model=model,
                              with_inf=with_inf)
        return vars(result)
