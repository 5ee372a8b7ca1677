"""Audio captioning scores as a local `evaluate` module: evaluate.load("<folder>/audio_captioning").

It calls soundlm.evaluation.captioning.caption_scores (imported by name: evaluate runs a copy of this file).
"""

import datasets
import evaluate

# evaluate runs a copy of this file from its modules cache: the library is imported by its installed name
import soundlm.evaluation.captioning as _library

_CITATION = """\
@inproceedings{papineni2002bleu,
  title={{BLEU}: a Method for Automatic Evaluation of Machine Translation},
  author={Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing},
  booktitle={Proceedings of ACL}, year={2002}}
@inproceedings{denkowski2014meteor,
  title={Meteor Universal: Language Specific Translation Evaluation for Any Target Language},
  author={Denkowski, Michael and Lavie, Alon}, booktitle={Proceedings of the Ninth Workshop on Statistical
  Machine Translation}, year={2014}}
@inproceedings{lin2004rouge,
  title={{ROUGE}: A Package for Automatic Evaluation of Summaries},
  author={Lin, Chin-Yew}, booktitle={Text Summarization Branches Out}, year={2004}}
@inproceedings{vedantam2015cider,
  title={{CIDEr}: Consensus-based Image Description Evaluation},
  author={Vedantam, Ramakrishna and Zitnick, C. Lawrence and Parikh, Devi}, booktitle={CVPR}, year={2015}}
@inproceedings{anderson2016spice,
  title={{SPICE}: Semantic Propositional Image Caption Evaluation},
  author={Anderson, Peter and Fernando, Basura and Johnson, Mark and Gould, Stephen}, booktitle={ECCV}, year={2016}}
@inproceedings{liu2017spider,
  title={Improved Image Captioning via Policy Gradient Optimization of {SPIDEr}},
  author={Liu, Siqi and Zhu, Zhenhai and Ye, Ning and Guadarrama, Sergio and Murphy, Kevin}, booktitle={ICCV},
  year={2017}}
@inproceedings{zhou2022fense,
  title={Can Audio Captions Be Evaluated with Image Caption Metrics?},
  author={Zhou, Zelin and Zhang, Zhiling and Xu, Xuenan and Xie, Zeyu and Wu, Mengyue and Zhu, Kenny Q.},
  booktitle={ICASSP}, year={2022}}
@inproceedings{reimers2019sbert,
  title={Sentence-{BERT}: Sentence Embeddings using Siamese {BERT}-Networks},
  author={Reimers, Nils and Gurevych, Iryna}, booktitle={EMNLP-IJCNLP}, year={2019}}
"""

_DESCRIPTION = """\
Corpus-level audio captioning scores as reported by LM-MSN (Table II: FENSE, SPICE) and MINT (Table 4: SPIDEr,
ROUGE-L, SPICE): BLEU-1..4, METEOR, ROUGE-L and CIDEr-D with pycocoevalcap on PTB-tokenised text; SPICE and SPIDEr
when Stanford CoreNLP 3.6.0 is installed for SPICE; the cosine similarity of all-MiniLM-L6-v2 sentence embeddings;
FENSE when its models are given. A backend that cannot run is reported as one line under "notes".
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: list of n generated captions (str).
    references: list of n lists of reference captions (at least one non-blank str each).
    spice: "auto" (default: run SPICE when it can), True (require it) or False (skip it).
    sentence_similarity: compute the MiniLM similarity (default True).
    embedding_model: folder of another sentence encoder (default: the packaged all-MiniLM-L6-v2).
    fense_dir: folder with FENSE's models (see soundlm.evaluation.captioning.fense_status); default none.
    device: torch device of the embedding models (default "cpu").
Returns:
    dict: bleu_1..bleu_4, meteor, rouge_l, cider_d, [spice, spider], [sentence_similarity], [fense], as floats;
    per_item (metric -> n floats), backends (metric -> backend used), notes (one line per skipped backend),
    num_items.
Examples:
    >>> metric = evaluate.load("evaluation/metrics/audio_captioning")
    >>> result = metric.compute(predictions=["a dog barks"], references=[["a dog is barking"]])
    >>> sorted(result["backends"])[:2]
    ['bleu', 'cider_d']
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AudioCaptioning(evaluate.Metric):
    """BLEU/METEOR/ROUGE-L/CIDEr-D/SPICE/SPIDEr/sentence similarity/FENSE of captions against references."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Value("string"),
                "references": datasets.Sequence(datasets.Value("string")),
            }),
            codebase_urls=["https://github.com/salaniz/pycocoevalcap", "https://github.com/blmoistawinde/fense"],
        )

    def _compute(self, predictions, references, spice="auto", sentence_similarity=True, embedding_model=None,
                 fense_dir=None, device="cpu"):
        return _library.caption_scores(predictions, references, spice=spice, sentence_similarity=sentence_similarity,
                                       embedding_model=embedding_model, fense_dir=fense_dir, device=device)
