"""The pipelines registered on `import soundlm`: built by `transformers.pipeline(task, model=folder)`, each clip's
result equal to the model called directly, batches equal to clips alone, CLAP still served, bad arguments refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import (
    save_tiny_tokenizer,
    tiny_mint_clips,
    tiny_mint_config,
    tiny_mint_stage2_processor,
)
from transformers import pipeline

import soundlm  # noqa: F401  (registers the pipelines)
from soundlm import MSNTokenizerModel
from soundlm.modeling.mint import MintForConditionalGeneration, MintForPreTraining
from soundlm.pipelines.audio_text_to_text import CAPTION_PROMPT

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)
LABELS = ["dog barks", "rain falls", "bird sings"]


# ------------------------------------------------------------------------------------------ audio-tokenization


@pytest.fixture(scope="module")
def tokenizer_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("msn")
    save_tiny_tokenizer(folder)
    return folder


def test_audio_tokenization_encodes_like_the_model_and_decodes_back(tokenizer_folder, tmp_path):
    tokenize = pipeline("audio-tokenization", model=str(tokenizer_folder))
    model = MSNTokenizerModel.from_pretrained(tokenizer_folder).eval()
    rate = model.sample_rate
    rng = np.random.default_rng(0)
    short, long = (0.1 * rng.standard_normal(n).astype(np.float32) for n in (rate // 2, rate))
    sf.write(tmp_path / "long.wav", long, rate)

    alone = [tokenize({"array": short, "sampling_rate": rate}), tokenize(str(tmp_path / "long.wav"))]
    batched = tokenize([{"array": short, "sampling_rate": rate}, {"array": long, "sampling_rate": rate}],
                       batch_size=2)
    for clip, one, two in zip((short, long), alone, batched):
        expected = model.encode(torch.from_numpy(clip)[None, None]).audio_codes[0].numpy()
        assert one["audio_codes"].dtype == np.int64 and one["frame_rate"] == model.frame_rate
        np.testing.assert_array_equal(one["audio_codes"], expected)
        np.testing.assert_array_equal(two["audio_codes"], expected)  # padding in the batch changes nothing

    audio = tokenize({"audio_codes": alone[1]["audio_codes"]}, seed=0, num_steps=2)
    generator = torch.Generator().manual_seed(0)
    expected = model.decode(torch.from_numpy(alone[1]["audio_codes"])[None], num_steps=2, generator=generator)
    assert audio["sampling_rate"] == rate
    np.testing.assert_allclose(audio["audio"], expected.audio_values[0].numpy(), atol=1e-6)


def test_audio_tokenization_refuses_bad_codes_and_mixed_batches(tokenizer_folder):
    tokenize = pipeline("audio-tokenization", model=str(tokenizer_folder))
    with pytest.raises(TypeError, match="integers"):
        tokenize({"audio_codes": np.zeros((1, 4), dtype=np.float32)})
    with pytest.raises(ValueError, match=r"shape \(1, frames\)"):
        tokenize({"audio_codes": np.zeros((2, 4), dtype=np.int64)})
    with pytest.raises(ValueError, match="mixes audio"):
        tokenize([{"audio_codes": [1, 2]}, {"array": np.zeros(800, np.float32), "sampling_rate": 8000}],
                 batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        tokenize({"audio_codes": [1, 2]}, batch_size=0)
    with pytest.raises(TypeError, match="unexpected argument"):
        tokenize({"audio_codes": [1, 2]}, steps=3)


# ------------------------------------------------------------------------------- zero-shot audio classification


@pytest.fixture(scope="module")
def stage1_folder(tmp_path_factory):
    from helpers import save_tiny_mint

    return save_tiny_mint(tmp_path_factory.mktemp("mint1"), stage=1)


def _softmax_ranking(logits: torch.Tensor) -> list[dict]:
    scores = logits.softmax(-1).tolist()
    return [{"score": s, "label": label} for s, label in sorted(zip(scores, LABELS), key=lambda pair: -pair[0])]


def _assert_same_ranking(got: list[dict], expected: list[dict]) -> None:
    assert [item["label"] for item in got] == [item["label"] for item in expected]
    assert [item["score"] for item in got] == pytest.approx([item["score"] for item in expected], abs=1e-6)


def test_zero_shot_with_a_stage1_folder_is_the_alc_similarity_softmax(stage1_folder):
    classify = pipeline("zero-shot-audio-classification", model=str(stage1_folder))
    assert isinstance(classify.model, MintForPreTraining)
    model, processor = classify.model, classify.processor
    clips = tiny_mint_clips()
    got = classify(clips, candidate_labels=LABELS, sampling_rate=16000, batch_size=2)
    for clip, result in zip(clips, got):
        texts = processor.qformer_text([f"This is a sound of {label}" for label in LABELS])
        with torch.no_grad():
            similarity = model.similarity(model.get_audio_features(**processor.audio_inputs(clip, 16000)),
                                          model.get_text_features(**texts))[0]
        _assert_same_ranking(result, _softmax_ranking(similarity / model.temperature))
        assert sum(item["score"] for item in result) == pytest.approx(1.0)
    alone = classify({"array": clips[1], "sampling_rate": 16000}, candidate_labels=LABELS)
    _assert_same_ranking(alone, got[1])  # a clip padded in a batch scores as alone


def test_zero_shot_with_a_stage2_model_ranks_by_log_likelihood():
    processor = tiny_mint_stage2_processor()
    torch.manual_seed(0)
    model = MintForConditionalGeneration(tiny_mint_config(processor, with_llm=True)).eval()
    classify = pipeline("zero-shot-audio-classification", model=model, processor=processor)
    clip = tiny_mint_clips()[0]
    result = classify(clip, candidate_labels=LABELS, sampling_rate=16000, instruction="what is this sound ?")
    prompt = processor.llm_text(["what is this sound ?"])
    qformer = processor.qformer_text(["what is this sound ?"])
    scores = model.score_candidates(processor.candidate_ids(LABELS), input_ids=prompt["input_ids"],
                                    attention_mask=prompt["attention_mask"], qformer_input_ids=qformer["input_ids"],
                                    qformer_attention_mask=qformer["attention_mask"],
                                    **processor.audio_inputs(clip, 16000))[0]
    _assert_same_ranking(result, _softmax_ranking(scores))


def test_zero_shot_in_bfloat16(stage1_folder):
    classify = pipeline("zero-shot-audio-classification", model=str(stage1_folder), dtype=torch.bfloat16)
    assert classify.model.dtype == torch.bfloat16
    result = classify(tiny_mint_clips(), candidate_labels=LABELS, sampling_rate=16000, batch_size=2)
    for ranking in result:
        assert sorted(item["label"] for item in ranking) == sorted(LABELS)
        assert sum(item["score"] for item in ranking) == pytest.approx(1.0, abs=1e-3)


def test_zero_shot_refuses_bad_labels_and_templates(stage1_folder):
    classify = pipeline("zero-shot-audio-classification", model=str(stage1_folder))
    clip = {"array": tiny_mint_clips()[0], "sampling_rate": 16000}
    for labels in (None, [], ["dog", ""], [3]):
        with pytest.raises(ValueError, match="candidate_labels must be a non-empty list"):
            classify(clip, candidate_labels=labels)
    with pytest.raises(ValueError, match="hypothesis_template must hold"):
        classify(clip, candidate_labels=LABELS, hypothesis_template="a sound")


def test_zero_shot_still_serves_clap():
    """Registering MINT leaves transformers' CLAP path as it was: a CLAP model gets transformers' own pipeline code
    and its output shape."""
    from helpers import TINY_BERT_WORDS
    from transformers import BertTokenizerFast, ClapConfig, ClapFeatureExtractor, ClapModel

    config = ClapConfig(
        text_config=dict(vocab_size=len(TINY_BERT_WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=64, pad_token_id=0),
        audio_config=dict(depths=[1, 1], num_attention_heads=[2, 2], hidden_size=16, patch_embeds_hidden_size=8,
                          window_size=4, spec_size=256, num_mel_bins=64, patch_stride=(4, 4)),
        projection_dim=8)
    torch.manual_seed(0)
    model = ClapModel(config).eval()
    tokenizer = BertTokenizerFast(vocab={word: index for index, word in enumerate(TINY_BERT_WORDS)},
                                  model_input_names=["input_ids", "attention_mask"])  # as CLAP's RoBERTa
    classify = pipeline("zero-shot-audio-classification", model=model, tokenizer=tokenizer,
                        feature_extractor=ClapFeatureExtractor(truncation="rand_trunc"))
    result = classify(tiny_mint_clips()[0], candidate_labels=["dog", "rain"])
    assert [set(item) for item in result] == [{"score", "label"}] * 2
    assert sum(item["score"] for item in result) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ audio-text-to-text


def test_audio_text_to_text_generates_what_the_model_generates(tmp_path):
    processor = tiny_mint_stage2_processor()
    torch.manual_seed(0)
    model = MintForConditionalGeneration(tiny_mint_config(processor, with_llm=True)).eval()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    caption = pipeline("audio-text-to-text", model=str(tmp_path))  # the folder, as from the Hub
    assert isinstance(caption.model, MintForConditionalGeneration)
    clips = tiny_mint_clips()
    got = caption(clips, sampling_rate=16000, max_new_tokens=5, batch_size=2)
    for clip, result in zip(clips, got):
        inputs = processor(audio=clip, text=[CAPTION_PROMPT], sampling_rate=16000)
        tokens = model.generate(**inputs, max_new_tokens=5, do_sample=False)
        assert result == [{"generated_text": processor.batch_decode(tokens)[0]}]
    prompted = caption(clips[0], sampling_rate=16000, prompt="what is this sound ?", max_new_tokens=5)
    assert list(prompted[0]) == ["generated_text"]
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        caption(clips[0], sampling_rate=16000, prompt=" ")
    with pytest.raises(ValueError, match="audio_guidance_scale is for LM-MSN models"):
        caption(clips[0], sampling_rate=16000, generate_kwargs={"audio_guidance_scale": 2.0})


# ------------------------------------------------------------------------------------------------------ LM-MSN


@pytest.fixture(scope="module")
def lm_msn(tmp_path_factory, tokenizer_folder):
    """A tiny LM-MSN audio LLM over the tiny sound tokenizer's 64 codes, merged into a plain folder."""
    from helpers import save_tiny_merged_audio_llm

    return save_tiny_merged_audio_llm(tmp_path_factory.mktemp("lm_msn"), codebook_size=64)


def test_lm_msn_text_to_audio_decodes_the_generated_codes(lm_msn, tokenizer_folder):
    """A merged LM-MSN folder + its sound tokenizer: {"audio", "sampling_rate"} per text, the audio being the sound
    tokenizer's decoding of the codes the LLM samples under the same seed."""
    from soundlm.modeling.lm_msn import generate_audio
    from soundlm.processing.tasks import text_segment

    speak = pipeline("text-to-audio", model=str(lm_msn[1]), sound_tokenizer=str(tokenizer_folder))
    sound_tokenizer = MSNTokenizerModel.from_pretrained(tokenizer_folder).eval()
    out = speak(["a dog barks", "rain"], seed=3, max_audio_tokens=8, min_audio_tokens=2, num_steps=2,
                batch_size=2)
    assert [sorted(item) for item in out] == [["audio", "sampling_rate"]] * 2
    assert all(item["sampling_rate"] == sound_tokenizer.sample_rate for item in out)
    torch.manual_seed(3)
    template = "Generate a sound that matches this description: {caption}"
    prompts = [speak.processor.chat_segments([text_segment(template.format(caption=c))]) for c in ("a dog barks",
                                                                                                     "rain")]
    expected = generate_audio(speak.model, speak.processor, prompts, 8, 2, sound_tokenizer=sound_tokenizer,
                              decode_kwargs={"num_steps": 2, "generator": torch.Generator().manual_seed(3)},
                              do_sample=True, top_k=50)
    for item, reference in zip(out, expected):
        assert 2 * sound_tokenizer.config.hop_length <= item["audio"].shape[-1] <= 8 * sound_tokenizer.config.hop_length
        np.testing.assert_allclose(item["audio"], reference.audio_values.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="sound tokenizer"):
        pipeline("text-to-audio", model=str(lm_msn[1]))
    with pytest.raises(ValueError, match="min_audio_tokens"):
        speak("rain", max_audio_tokens=4, min_audio_tokens=5)
    with pytest.raises(ValueError, match="non-empty string"):
        speak([""])


def test_lm_msn_audio_text_to_text_from_an_adapter(lm_msn, tokenizer_folder):
    """A loaded adapter (not merged) answers about audio: the same text as generate_text on the clip's codes."""
    from soundlm.modeling.lm_msn import generate_text, load_audio_llm
    from soundlm.processing.tasks import audio_segment, text_segment

    model, processor = load_audio_llm(lm_msn[0], base_model=lm_msn[2])
    caption = pipeline("audio-text-to-text", model=model.eval(), processor=processor,
                       sound_tokenizer=str(tokenizer_folder))
    sound_tokenizer = MSNTokenizerModel.from_pretrained(tokenizer_folder).eval()
    clip = 0.1 * np.random.default_rng(1).standard_normal(4000).astype(np.float32)
    got = caption({"array": clip, "sampling_rate": 8000}, max_new_tokens=4)
    codes = sound_tokenizer.encode(torch.from_numpy(clip)[None, None]).audio_codes[0, 0].tolist()
    prompt = processor.chat_segments([audio_segment(codes), text_segment("\nDescribe this sound.")])
    assert got == [{"generated_text": generate_text(model, processor, [prompt], max_new_tokens=4)[0]}]
    guided = caption({"array": clip, "sampling_rate": 8000}, max_new_tokens=4,
                     generate_kwargs={"audio_guidance_scale": 3.0})
    assert guided == [{"generated_text": generate_text(model, processor, [prompt], max_new_tokens=4,
                                                       audio_guidance_scale=3.0)[0]}]


def test_lm_msn_zero_shot_ranks_labels_by_score_answers(lm_msn, tokenizer_folder, stage1_folder):
    """A merged LM-MSN folder + its sound tokenizer: the labels ranked by `score_answers` on the clip's codes and the
    processor's classification prompt (the softmax over those scores), with audio guidance passed through; bad
    arguments refused."""
    from soundlm.modeling.lm_msn import score_answers
    from soundlm.processing.tasks import audio_segment, text_segment

    classify = pipeline("zero-shot-audio-classification", model=str(lm_msn[1]), sound_tokenizer=str(tokenizer_folder))
    sound_tokenizer = MSNTokenizerModel.from_pretrained(tokenizer_folder).eval()
    clips = [0.1 * np.random.default_rng(seed).standard_normal(4000).astype(np.float32) for seed in (1, 2)]
    prompt = classify.processor.stage2_prompts["classification"][0]
    for scale in (1.0, 2.0):
        got = classify([{"array": clip, "sampling_rate": 8000} for clip in clips], candidate_labels=LABELS,
                       batch_size=2, **({} if scale == 1 else {"audio_guidance_scale": scale}))
        for clip, result in zip(clips, got):
            codes = sound_tokenizer.encode(torch.from_numpy(clip)[None, None]).audio_codes[0, 0].tolist()
            question = [audio_segment(codes), text_segment("\n" + prompt)]
            scores = score_answers(classify.model, classify.processor, [question], LABELS,
                                   audio_guidance_scale=scale)[0]
            _assert_same_ranking(result, _softmax_ranking(scores))
    assert classify(clips[0], candidate_labels="dog barks, rain falls", sampling_rate=8000)[0]["label"] in LABELS[:2]
    with pytest.raises(ValueError, match="candidate_labels must be a non-empty list"):
        classify(clips[0], candidate_labels=[], sampling_rate=8000)
    with pytest.raises(TypeError, match="unexpected argument"):
        classify(clips[0], candidate_labels=LABELS, sampling_rate=8000, hypothesis_template="This is {}")
    with pytest.raises(ValueError, match="audio_guidance_scale must be a finite number"):
        classify(clips[0], candidate_labels=LABELS, sampling_rate=8000, audio_guidance_scale=-1.0)
    with pytest.raises(ValueError, match="sound_tokenizer is for LM-MSN models"):
        pipeline("zero-shot-audio-classification", model=str(stage1_folder), sound_tokenizer=str(tokenizer_folder))
    with pytest.raises(TypeError, match="audio_guidance_scale is for LM-MSN models"):
        pipeline("zero-shot-audio-classification", model=str(stage1_folder))(
            tiny_mint_clips()[0], candidate_labels=LABELS, sampling_rate=16000, audio_guidance_scale=2.0)


# ------------------------------------------------------------------------------ exported folders, without soundlm


def _run_without_soundlm(script: str, cwd) -> subprocess.CompletedProcess:
    """`script` in a fresh interpreter that must never import soundlm (it asserts so itself)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.parametrize("family", ["tokenizer", "mint_stage1"])
def test_an_exported_folder_runs_its_pipeline_where_soundlm_was_never_imported(family, tokenizer_folder,
                                                                              stage1_folder, tmp_path):
    """`soundlm export` writes `custom_pipelines` beside the code: `pipeline(model=folder, trust_remote_code=True)`
    in a fresh interpreter that never imports soundlm gives what the package's pipeline gives, and where soundlm is
    imported the package's own task still loads the folder without remote code."""
    from soundlm.modeling.hub_export import export_for_hub
    from soundlm.pipelines import remote_pipelines

    source = tokenizer_folder if family == "tokenizer" else stage1_folder
    task = "audio-tokenization" if family == "tokenizer" else "zero-shot-audio-classification"
    ours = pipeline(task, model=str(source))
    folder = export_for_hub(ours.model, tmp_path / "hub", ours.processor if family != "tokenizer"
                            else ours.feature_extractor, pipelines=remote_pipelines(ours.model))
    clip = tiny_mint_clips()[0] if family != "tokenizer" else np.sin(np.arange(6000) / 5.0).astype(np.float32) * 0.3
    rate = 16000 if family != "tokenizer" else 8000
    np.save(tmp_path / "clip.npy", clip)
    arguments = {"sampling_rate": rate, **({"candidate_labels": LABELS} if family != "tokenizer" else {})}
    expected = ours(clip, **arguments)
    script = f"""
import json, sys
import numpy as np
from transformers import pipeline
run = pipeline(model={str(folder)!r}, trust_remote_code=True)
assert not any(name.split(".")[0] == "soundlm" for name in sys.modules), "soundlm imported"
out = run(np.load({str(tmp_path / "clip.npy")!r}), **{arguments!r})
print(json.dumps(out["audio_codes"].tolist() if isinstance(out, dict) else out))
"""
    remote = json.loads(_run_without_soundlm(script, tmp_path).stdout.strip().splitlines()[-1])
    if family == "tokenizer":
        assert remote == expected["audio_codes"].tolist()
    else:
        _assert_same_ranking(remote, expected)
    # with soundlm imported the package's task serves the exported folder, no remote code asked for
    again = pipeline(task, model=str(folder))
    assert type(again).__module__.startswith("soundlm.")


def test_an_exported_mint_stage2_folder_captions_where_soundlm_was_never_imported(tmp_path):
    """MINT stage 2 carries `soundlm-audio-text-to-text` (its MINT-only class, no LM-MSN code copied) beside the
    zero-shot task; the remote caption is the package pipeline's."""
    from soundlm.modeling.hub_export import export_for_hub
    from soundlm.pipelines import remote_pipelines

    processor = tiny_mint_stage2_processor()
    torch.manual_seed(0)
    model = MintForConditionalGeneration(tiny_mint_config(processor, with_llm=True)).eval()
    folder = export_for_hub(model, tmp_path / "hub", processor, pipelines=remote_pipelines(model, processor))
    assert sorted(json.loads((folder / "config.json").read_text())["custom_pipelines"]) == [
        "soundlm-audio-text-to-text", "soundlm-zero-shot-audio-classification"]
    assert not [path.name for path in folder.glob("*.py") if "lm_msn" in path.name or "msn" in path.stem.split("_")]
    clips = tiny_mint_clips()
    np.savez(tmp_path / "clips.npz", *clips)
    expected = pipeline("audio-text-to-text", model=model, processor=processor)(
        clips, sampling_rate=16000, max_new_tokens=5, batch_size=2)
    script = f"""
import json, sys
import numpy as np
from transformers import pipeline
run = pipeline("soundlm-audio-text-to-text", model={str(folder)!r}, trust_remote_code=True)
assert not any(name.split(".")[0] == "soundlm" for name in sys.modules), "soundlm imported"
saved = np.load({str(tmp_path / "clips.npz")!r})
print(json.dumps(run([saved[name] for name in saved.files], sampling_rate=16000, max_new_tokens=5, batch_size=2)))
"""
    remote = json.loads(_run_without_soundlm(script, tmp_path).stdout.strip().splitlines()[-1])
    assert remote == expected


def test_an_exported_lm_msn_folder_runs_both_pipelines_where_soundlm_was_never_imported(lm_msn, tokenizer_folder,
                                                                                       tmp_path):
    """`soundlm export <merged> --sound-tokenizer <folder>` bundles the tokenizer in `sound_tokenizer/`, saves the
    default prompts with the processor and carries `soundlm-audio-text-to-text` and `soundlm-text-to-audio`: in a
    fresh interpreter without soundlm they give the package pipelines' captions and audio (same seed); with soundlm
    imported the package's tasks serve the folder with no `sound_tokenizer=` argument."""
    from soundlm.cli import main

    out = tmp_path / "hub"
    assert main(["export", str(lm_msn[1]), str(out), "--sound-tokenizer", str(tokenizer_folder),
                 "--repo-id", "org/lm-msn"]) == 0
    assert sorted(json.loads((out / "config.json").read_text())["custom_pipelines"]) == [
        "soundlm-audio-text-to-text", "soundlm-text-to-audio", "soundlm-zero-shot-audio-classification"]
    assert json.loads((out / "processor_config.json").read_text())["prompts"]["captioning"][0] == \
        "Describe this sound."
    assert (out / "sound_tokenizer" / "model.safetensors").is_file()
    assert 'pipeline("soundlm-text-to-audio", model="org/lm-msn", trust_remote_code=True)' in \
        (out / "README.md").read_text()
    clip = 0.1 * np.random.default_rng(1).standard_normal(4000).astype(np.float32)
    np.save(tmp_path / "clip.npy", clip)
    caption = pipeline("audio-text-to-text", model=str(out))  # no sound_tokenizer=: the folder's own
    expected_caption = caption({"array": clip, "sampling_rate": 8000}, max_new_tokens=4)
    speak = pipeline("text-to-audio", model=str(out))
    expected_audio = speak(["a dog barks", "rain"], seed=3, max_audio_tokens=8, min_audio_tokens=2, num_steps=2,
                           batch_size=2)
    expected_ranking = pipeline("zero-shot-audio-classification", model=str(out))(
        {"array": clip, "sampling_rate": 8000}, candidate_labels=LABELS, audio_guidance_scale=2.0)
    script = f"""
import json, sys
import numpy as np
from transformers import pipeline
caption = pipeline("soundlm-audio-text-to-text", model={str(out)!r}, trust_remote_code=True)
speak = pipeline("soundlm-text-to-audio", model={str(out)!r}, trust_remote_code=True)
classify = pipeline("soundlm-zero-shot-audio-classification", model={str(out)!r}, trust_remote_code=True)
assert not any(name.split(".")[0] == "soundlm" for name in sys.modules), "soundlm imported"
text = caption({{"array": np.load({str(tmp_path / "clip.npy")!r}), "sampling_rate": 8000}}, max_new_tokens=4)
sounds = speak(["a dog barks", "rain"], seed=3, max_audio_tokens=8, min_audio_tokens=2, num_steps=2, batch_size=2)
for index, sound in enumerate(sounds):
    np.save(f"sound{{index}}.npy", sound["audio"])
ranking = classify({{"array": np.load({str(tmp_path / "clip.npy")!r}), "sampling_rate": 8000}},
                   candidate_labels={LABELS!r}, audio_guidance_scale=2.0)
print(json.dumps({{"caption": text, "rates": [sound["sampling_rate"] for sound in sounds], "ranking": ranking}}))
"""
    remote = json.loads(_run_without_soundlm(script, tmp_path).stdout.strip().splitlines()[-1])
    assert remote["caption"] == expected_caption
    _assert_same_ranking(remote["ranking"], expected_ranking)
    assert remote["rates"] == [item["sampling_rate"] for item in expected_audio]
    for index, item in enumerate(expected_audio):
        np.testing.assert_allclose(np.load(tmp_path / f"sound{index}.npy"), item["audio"], atol=1e-6)
