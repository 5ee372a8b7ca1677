import json

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import tiny_config_kwargs, write_manifest

from soundlm import MSNFeatureExtractor, MSNTokenizerConfig, MSNTokenizerModel
from soundlm.cli import main
from soundlm.processing.audio_datasets import load_audio_dataset
from soundlm.processing.pretokenized import load_pretokenized, pretokenize


@pytest.fixture
def saved_model(tmp_path):
    torch.manual_seed(0)
    model = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval()
    model.save_pretrained(tmp_path / "model")
    MSNFeatureExtractor.from_tokenizer_config(model.config).save_pretrained(tmp_path / "model")
    return model, tmp_path / "model"


def test_tokenize_then_decode_skips_bad_files_and_counts(tmp_path, real_clips, capsys, caplog, saved_model):
    model, folder = saved_model
    sf.write(tmp_path / "a.wav", real_clips[0][:5000], 8000)
    (tmp_path / "bad.wav").write_bytes(b"nope")
    assert main(["tokenize", str(folder), str(tmp_path / "a.wav"), str(tmp_path / "bad.wav"),
                 "--out", str(tmp_path / "codes.jsonl")]) == 1  # partial failure
    assert "tokenized 1 file(s), skipped 1" in capsys.readouterr().err
    records = [json.loads(line) for line in (tmp_path / "codes.jsonl").read_text().splitlines()]
    assert len(records) == 1 and len(records[0]["codes"]) == 40  # ceil(5000 / 128) frames
    audio = torch.from_numpy(sf.read(tmp_path / "a.wav", dtype="float32")[0])
    assert records[0]["codes"] == model.encode(audio[None, None]).audio_codes[0, 0].tolist()
    with open(tmp_path / "codes.jsonl", "a") as handle:
        handle.write(json.dumps({"path": "x.wav", "codes": [0, 999], "codebook_size": 64}) + "\n")
    assert main(["decode", str(folder), str(tmp_path / "codes.jsonl"), "--out-dir",
                 str(tmp_path / "out"), "--num-steps", "2"]) == 1
    err = capsys.readouterr().err
    assert "decoded 1 item(s)" in err and "skipped 1" in err
    assert "codes must lie in [0, 64)" in caplog.text and "bad.wav" in caplog.text
    audio, rate = sf.read(tmp_path / "out" / "a.wav")
    assert rate == 8000 and len(audio) == 40 * 128


@pytest.mark.reliability(
    "a long file into `soundlm tokenize`",
    "read from disk one window at a time (never decoded whole), windows on the frame grid: `num_frames(samples)` "
    "codes",
)
def test_cli_pretokenize_and_encode_agree_on_awkward_lengths(tmp_path, real_clips, saved_model):
    """One frame rule (`num_frames`, ceil) whichever way the audio goes in."""
    model, folder = saved_model
    signal = np.concatenate(list(real_clips))
    lengths = [1, 127, 128, 129, 255, 5000, 5120, 8191, 12345]
    lines = ["path"]
    for length in lengths:
        sf.write(tmp_path / f"n{length}.wav", signal[:length], 8000, subtype="FLOAT")
        lines.append(f"n{length}.wav")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")

    paths = [str(tmp_path / f"n{length}.wav") for length in lengths]
    assert main(["tokenize", str(folder), *paths, "--out", str(tmp_path / "cli.jsonl")]) == 0
    cli = [json.loads(line)["codes"] for line in (tmp_path / "cli.jsonl").read_text().splitlines()]

    rows = load_audio_dataset(tmp_path / "m.csv")  # whole files, one row each
    pretokenize(rows, model, tmp_path / "pt", batch_size=4, progress=False)
    stored = load_pretokenized(tmp_path / "pt")
    by_path = dict(zip((p.rsplit("/", 1)[-1] for p in stored["audio_path"]), stored["codes"], strict=True))

    window = 63 * 128  # the CLI's window: clip_seconds (1 s) in whole frames, 8064 samples
    for length, from_cli in zip(lengths, cli, strict=True):
        audio = torch.from_numpy(signal[:length].copy())[None, None]
        direct = model.encode(audio).audio_codes[0, 0].tolist()
        assert len(direct) == model.num_frames(length) == -(-length // 128)
        assert by_path[f"n{length}.wav"] == direct, length
        # files longer than one window: each window encoded alone, on the frame grid, so the count is the same
        windowed = [code for start in range(0, length, window)
                    for code in model.encode(audio[..., start:start + window]).audio_codes[0, 0].tolist()]
        assert len(from_cli) == len(direct) and from_cli == windowed, length


def test_merge_writes_a_plain_causal_lm(tmp_path, capsys):
    from helpers import save_tiny_audio_llm
    from transformers import AutoModelForCausalLM

    adapter, base, processor = save_tiny_audio_llm(tmp_path, codebook_size=8)
    assert main(["merge", str(adapter), str(tmp_path / "merged"), "--base-model", str(base)]) == 0
    assert "merged" in capsys.readouterr().out
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert merged.get_input_embeddings().weight.shape[0] == processor.vocab_size == 310


# ------------------------------------------------------------------------------------- caption, classify, generate


@pytest.fixture
def mint_folders(tmp_path):
    from helpers import save_tiny_mint

    return {stage: save_tiny_mint(tmp_path / f"mint{stage}", stage) for stage in (1, 2)}


def _clips(tmp_path, real_clips):
    paths = []
    for index, clip in enumerate(real_clips[:2]):
        sf.write(tmp_path / f"clip{index}.wav", clip, 8000)
        paths.append(str(tmp_path / f"clip{index}.wav"))
    (tmp_path / "bad.wav").write_text("not audio")
    return paths, str(tmp_path / "bad.wav")


def test_classify_and_caption_write_jsonl_and_report_failures(tmp_path, real_clips, capsys, mint_folders):
    """Every good file gets a line; a bad file in the batch costs only itself, is named in the summary, and the exit
    status says 1 (partial failure); all good: 0."""
    good, bad = _clips(tmp_path, real_clips)
    out = tmp_path / "labels.jsonl"
    status = main(["classify", str(mint_folders[1]), *good, bad, "--labels", "dog barks, rain falls, bird sings",
                   "--batch-size", "3", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 1 and "classified 2 input(s), failed 1" in err and f"failed: {bad}" in err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [record["path"] for record in records] == good
    assert all(sorted(item["label"] for item in record["labels"]) == ["bird sings", "dog barks", "rain falls"]
               for record in records)
    assert main(["caption", str(mint_folders[2]), *good, "--max-new-tokens", "3", "--out",
                 str(tmp_path / "captions.jsonl")]) == 0
    captions = [json.loads(line) for line in (tmp_path / "captions.jsonl").read_text().splitlines()]
    assert [sorted(record) for record in captions] == [["path", "text"]] * 2
    assert main(["classify", str(mint_folders[2]), good[0], "--labels", "dog,rain", "--out",
                 str(tmp_path / "ranked.jsonl")]) == 0  # stage 2: vocabulary ranking


def test_generate_writes_wavs(tmp_path, capsys, saved_model):
    from helpers import save_tiny_merged_audio_llm

    _, tokenizer = saved_model
    merged = save_tiny_merged_audio_llm(tmp_path / "llm", codebook_size=64)[1]
    assert main(["generate", merged, "a dog barks", "rain", "--sound-tokenizer", str(tokenizer), "--out-dir",
                 str(tmp_path / "sounds"), "--max-audio-tokens", "4", "--num-steps", "2"]) == 0
    written = sorted((tmp_path / "sounds").glob("*.wav"))
    assert [path.name for path in written] == ["000_a_dog_barks.wav", "001_rain.wav"]
    audio, rate = sf.read(written[0])
    assert rate == 8000 and 128 <= len(audio) <= 4 * 128
    # the same LM-MSN folder captions the sounds it wrote, plain and with audio guidance
    for extra in ([], ["--audio-guidance", "2.5"]):
        out = tmp_path / f"captions{len(extra)}.jsonl"
        assert main(["caption", merged, *map(str, written), "--sound-tokenizer", str(tokenizer), "--max-new-tokens",
                     "3", "--out", str(out), *extra]) == 0
        assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == list(map(str, written))
    # and classifies them among given labels
    out = tmp_path / "labels.jsonl"
    assert main(["classify", merged, *map(str, written), "--sound-tokenizer", str(tokenizer), "--labels",
                 "dog, rain, engine", "--audio-guidance", "2", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["path"] for row in rows] == list(map(str, written))
    assert all(sorted(item["label"] for item in row["labels"]) == ["dog", "engine", "rain"] for row in rows)


@pytest.mark.parametrize("argv, message", [
    (["classify", "{mint1}", "x.wav", "--labels", "dog"], "at least two comma-separated labels"),
    (["caption", "{missing}", "x.wav"], "missing"),
    (["caption", "{mint2}", "x.wav", "--audio-guidance", "2"], "--audio-guidance is for LM-MSN models"),
    (["classify", "{mint1}", "x.wav", "--labels", "dog,rain", "--audio-guidance", "2"],
     "--audio-guidance is for LM-MSN models"),
    (["tokenize", "{mint1}", "x.wav"], "is not an audio tokenizer"),
    (["generate", "{mint1}", "rain", "--sound-tokenizer", "{missing}", "--out-dir", "{tmp}"], "error"),
])
def test_user_errors_exit_2_without_a_traceback(tmp_path, capsys, mint_folders, argv, message):
    values = {"mint1": str(mint_folders[1]), "mint2": str(mint_folders[2]), "missing": str(tmp_path / "missing"),
              "tmp": str(tmp_path / "o")}
    capsys.readouterr()
    assert main([arg.format(**values) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"soundlm {argv[0]}: error:")


def test_bad_arguments_exit_2_and_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "model", "a.wav"])  # --labels missing
    assert exit_info.value.code == 2
    for command in ("caption", "classify", "generate"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"example: soundlm {command} " in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["caption", "m", "a.wav", "--batch-size", "0"])
    assert exit_info.value.code == 2


def test_export_with_results_writes_model_index(tmp_path, mint_folders, saved_model, capsys):
    report = {"split": "test", "clips": 3,
              "classification": {"birds": {"accuracy": {"stage 1 (ALC+ALM+ATG)": 0.5}}},
              "retrieval": {"recall": {"stage 1 (ALC+ALM+ATG)": {"R@1": 0.25, "R@5": 0.5, "R@10": 1.0}}}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert main(["export", str(mint_folders[1]), str(tmp_path / "hub"), "--repo-id", "org/m", "--no-check",
                 "--results", str(tmp_path / "report.json"), "--dataset-name", "my corpus"]) == 0
    card = (tmp_path / "hub" / "README.md").read_text()
    front = card.split("---")[1]
    assert "model-index:" in front and "name: 'my corpus: birds'" in front and "value: 0.25" in front
    assert "`report.json` written" in card and "3 clips" in card
    capsys.readouterr()
    assert main(["export", str(saved_model[1]), str(tmp_path / "hub2"), "--no-check",
                 "--results", str(tmp_path / "report.json")]) == 2
    assert "cannot tell this tokenizer's row in the report" in capsys.readouterr().err  # a MINT report


def test_report_writes_the_listening_page(tmp_path, real_clips, saved_model, capsys):
    _, folder = saved_model
    manifest = write_manifest(tmp_path / "data", list(real_clips[:2]))
    assert main(["report", "--model", f"tiny={folder}", "--data", str(manifest), "--split", "train",
                 "--cache-dir", str(tmp_path / "cache"), "--fm-steps", "2", "--temperatures", "1",
                 "--out", str(tmp_path / "page")]) == 0
    page = tmp_path / "page" / "index.html"
    assert f"listening report: {page.resolve()}" in capsys.readouterr().out
    assert page.read_text().count("<audio") == 3  # original, front end, the tokenizer's one FM setting


def test_evaluate_scores_captions_and_labels_against_a_manifest(tmp_path, capsys):
    manifest = tmp_path / "data" / "manifest.csv"
    manifest.parent.mkdir()
    manifest.write_text("path,caption,label\naudio/a.wav,a dog barks loudly,dog\naudio/b.wav,rain on a roof,rain\n")
    data = tmp_path / "data" / "audio"
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("\n".join(json.dumps(record) for record in [
        {"path": str(data / "a.wav"), "text": "a dog barks loudly",
         "labels": [{"label": "dog", "score": 0.9}, {"label": "rain", "score": 0.1}]},
        {"path": str(data / "b.wav"), "text": "a dog barks", "labels": [{"label": "dog", "score": 0.6}]},
        {"path": str(tmp_path / "elsewhere.wav"), "text": "x"},
    ]) + "\n")
    status = main(["evaluate", str(predictions), "--references", str(manifest), "--out", str(tmp_path / "s.json")])
    captured = capsys.readouterr()
    assert status == 1 and "scored 2 input(s), failed 1" in captured.err and "elsewhere.wav" in captured.err
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["classification"] == {"accuracy": 0.5, "items": 2}
    assert scores["captioning"]["items"] == 2 and 0 < scores["captioning"]["bleu_1"] < 1
    predictions.write_text(json.dumps({"path": str(tmp_path / "nowhere.wav"), "text": "x"}) + "\n")
    assert main(["evaluate", str(predictions), "--references", str(manifest)]) == 2
    assert "no prediction" in capsys.readouterr().err


def test_export_of_a_merged_lm_msn_folder(tmp_path, capsys):
    """A merged LM-MSN folder exports as a plain causal LM (no model code copied) with the processor as remote code
    and its card; the fresh-process check loads both and finds the same weights."""
    from helpers import save_tiny_merged_audio_llm

    merged = save_tiny_merged_audio_llm(tmp_path / "llm", codebook_size=64)[1]
    capsys.readouterr()
    assert main(["export", merged, str(tmp_path / "hub"), "--repo-id", "org/lm-msn"]) == 2
    assert "--sound-tokenizer" in capsys.readouterr().err
    assert main(["export", merged, str(tmp_path / "hub"), "--repo-id", "org/lm-msn", "--sound-tokenizer",
                 "org/msn-tokenizer", "--base-model", "org/base-llm"]) == 0
    assert "remote-code load ok: LlamaForCausalLM, weights identical" in capsys.readouterr().out
    hub = tmp_path / "hub"
    # transformers' own model class: no AutoConfig / AutoModel entry, only the processor's
    assert json.loads((hub / "config.json").read_text())["auto_map"] == {
        "AutoProcessor": "processing_lm_msn.AudioTokenProcessor"}
    assert json.loads((hub / "processor_config.json").read_text())["auto_map"] == {
        "AutoProcessor": "processing_lm_msn.AudioTokenProcessor"}
    assert not (hub / "modeling_llama.py").exists() and (hub / "processing_lm_msn.py").exists()
    front = (hub / "README.md").read_text().split("---")[1]
    assert "pipeline_tag: text-to-audio" in front and "base_model: org/base-llm" in front
    assert "org/msn-tokenizer" in (hub / "README.md").read_text() and "$" not in (hub / "README.md").read_text()
