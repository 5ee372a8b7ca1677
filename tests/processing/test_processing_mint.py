"""MintProcessor: the [DEC] token, audio patches and masks, Q-Former text limits, LLM prompts and labels, ranking
candidates, saving, and batches that run through tiny stage-1 and stage-2 models."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F
from helpers import (
    TINY_BERT_WORDS as WORDS,
)
from helpers import (
    TINY_MINT_QUERIES,
    tiny_bert_tokenizer,
    tiny_mint_clips,
    tiny_mint_config,
    tiny_mint_stage1_processor,
    tiny_mint_stage2_processor,
    tiny_text_tokenizer,
)
from transformers import AutoProcessor

from soundlm.modeling.mint import MintForConditionalGeneration, MintForPreTraining, MintProcessor
from soundlm.processing.feature_extraction_yamnet import YamnetFeatureExtractor

INSTRUCTIONS = ["describe the audio", "what is this sound ?"]
RESPONSES = ["a dog barks", "rain"]
NUM_QUERIES = TINY_MINT_QUERIES


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)

bert_tokenizer = tiny_bert_tokenizer
stage1_processor = tiny_mint_stage1_processor
stage2_processor = tiny_mint_stage2_processor
clips = tiny_mint_clips
tiny_config = tiny_mint_config


# ----------------------------------------------------------------------------------------------------------------
# [DEC]


def test_dec_token_is_added_once():
    """[DEC] becomes the Q-Former tokenizer's bos_token, one new id after the vocabulary; building a second
    processor on the same tokenizer adds nothing."""
    tokenizer = bert_tokenizer()
    assert len(tokenizer) == len(WORDS) and tokenizer.bos_token is None
    processor = MintProcessor(YamnetFeatureExtractor(), tokenizer, tiny_text_tokenizer())
    assert tokenizer.bos_token == "[DEC]" and len(tokenizer) == len(WORDS) + 1
    assert processor.dec_token_id == len(WORDS) == tokenizer.bos_token_id
    assert tokenizer("[DEC] a dog", add_special_tokens=False)["input_ids"] == [len(WORDS), 5, 6]
    again = MintProcessor(YamnetFeatureExtractor(), tokenizer, tiny_text_tokenizer())
    assert len(tokenizer) == len(WORDS) + 1 and again.dec_token_id == processor.dec_token_id


# ----------------------------------------------------------------------------------------------------------------
# audio


def test_audio_becomes_patches_and_a_patch_mask():
    """1 s and 2.5 s clips: `audio_values` (2, 5, 96, 64) and an `audio_attention_mask` with 2 and 5 real patches;
    audio alone gives only those two keys."""
    processor = stage2_processor()
    batch = processor(audio=clips(), sampling_rate=16000)
    assert set(batch) == {"audio_values", "audio_attention_mask"}
    assert batch["audio_values"].shape == (2, 5, 96, 64) and batch["audio_values"].dtype == torch.float32
    assert batch["audio_attention_mask"].tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    alone = processor.audio_inputs(clips()[0], sampling_rate=16000)
    assert torch.allclose(alone["audio_values"][0], batch["audio_values"][0, :2])


# ----------------------------------------------------------------------------------------------------------------
# Q-Former text


def test_stage1_captions_are_cut_to_max_text_length():
    """A stage-1 processor (Q-Former tokenizer twice) cuts a 10-word caption to 8 tokens, [CLS] first and [SEP]
    last, and right-pads a short one."""
    processor = stage1_processor(max_text_length=8)
    assert processor.is_stage1
    batch = processor(text=["a dog barks on the roof in the yard loud", "rain"])
    assert set(batch) == {"input_ids", "attention_mask"}
    ids = batch["input_ids"].tolist()
    assert ids[0] == [2, 5, 6, 7, 10, 11, 12, 3]
    assert ids[1] == [2, 8, 3, 0, 0, 0, 0, 0]
    assert batch["attention_mask"].tolist() == [[1] * 8, [1, 1, 1, 0, 0, 0, 0, 0]]


def test_stage2_refuses_an_instruction_over_max_text_length():
    """An instruction of exactly max_text_length tokens passes; one token more raises a ValueError naming the limit
    (cutting would drop the question)."""
    processor = stage2_processor(max_text_length=8)
    assert not processor.is_stage1
    fits = "a dog barks on the roof"  # 6 words + [CLS] + [SEP]
    assert processor(text=fits)["qformer_input_ids"].shape == (1, 8)
    with pytest.raises(ValueError, match="9 Q-Former tokens.*max_text_length=8"):
        processor(text=[fits, fits + " loud"])


# ----------------------------------------------------------------------------------------------------------------
# LLM text


def test_decoder_only_labels_cover_exactly_the_response():
    """Decoder-only training rows are prompt + " " + response + eos, right-padded; labels are -100 on the prompt and
    on the padding and equal the tokens on the response."""
    processor = stage2_processor()
    tokenizer = processor.tokenizer
    batch = processor.llm_text(INSTRUCTIONS, RESPONSES)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    width = batch["input_ids"].shape[1]
    for row, (instruction, response) in enumerate(zip(INSTRUCTIONS, RESPONSES)):
        prompt = tokenizer(instruction)["input_ids"]
        target = tokenizer(" " + response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert processor.response_ids(response) == target
        length = len(prompt) + len(target)
        assert batch["input_ids"][row, :length].tolist() == prompt + target
        assert batch["labels"][row].tolist() == [-100] * len(prompt) + target + [-100] * (width - length)
        assert batch["attention_mask"][row].tolist() == [1] * length + [0] * (width - length)
    assert (batch["attention_mask"] == 0).any()  # the rows differ in length: padding was exercised


def test_prompts_without_responses_are_left_padded():
    """Without responses (generation, ranking) the decoder-only prompts are left-padded so that they end together."""
    processor = stage2_processor()
    batch = processor.llm_text(INSTRUCTIONS)
    width = batch["input_ids"].shape[1]
    for row, instruction in enumerate(INSTRUCTIONS):
        prompt = processor.prompt_ids(instruction)
        assert batch["input_ids"][row, width - len(prompt):].tolist() == prompt
        assert batch["attention_mask"][row].tolist() == [0] * (width - len(prompt)) + [1] * len(prompt)
    assert batch["attention_mask"][:, 0].tolist().count(0) == 1


def test_encoder_decoder_layout():
    """Encoder-decoder: prompts right-padded as input_ids, responses as labels padded with -100."""
    processor = stage2_processor(decoder_only=False)
    batch = processor.llm_text(INSTRUCTIONS, RESPONSES)
    for row, (instruction, response) in enumerate(zip(INSTRUCTIONS, RESPONSES)):
        prompt, target = processor.prompt_ids(instruction), processor.response_ids(response)
        assert batch["input_ids"][row, :len(prompt)].tolist() == prompt
        assert batch["attention_mask"][row].sum() == len(prompt)
        labels = batch["labels"][row].tolist()
        assert labels == target + [-100] * (len(labels) - len(target))


def test_candidates_are_spelled_as_responses():
    """`candidate_ids` is `response_ids` of each label (eos included); an empty list, or an empty label, raises."""
    processor = stage2_processor()
    labels = ["dog barks", "rain", "a bird sings"]
    assert processor.candidate_ids(labels) == [processor.response_ids(label) for label in labels]
    assert all(ids[-1] == processor.tokenizer.eos_token_id for ids in processor.candidate_ids(labels))
    with pytest.raises(ValueError, match="candidates is empty"):
        processor.candidate_ids([])
    with pytest.raises(ValueError, match="non-empty"):
        processor.candidate_ids(["rain", " "])


def test_stage1_processor_refuses_llm_text():
    """A stage-1 processor has no LLM tokenizer: llm_text, candidate_ids and a response raise ValueError."""
    processor = stage1_processor()
    with pytest.raises(ValueError, match="stage-1"):
        processor.llm_text(INSTRUCTIONS, RESPONSES)
    with pytest.raises(ValueError, match="stage-1"):
        processor.candidate_ids(["rain"])
    with pytest.raises(ValueError, match="no response"):
        processor(text=["rain"], response=["rain"])


def test_bad_calls_raise():
    """Nothing to process, an unknown argument, mismatched instructions and responses: clear errors."""
    processor = stage2_processor()
    with pytest.raises(ValueError, match="audio, text or both"):
        processor()
    with pytest.raises(TypeError, match="padding"):
        processor(text="rain", padding=True)
    with pytest.raises(ValueError, match="2 instructions but 1 responses"):
        processor.llm_text(INSTRUCTIONS, ["rain"])


# ----------------------------------------------------------------------------------------------------------------
# saving


def test_save_and_load_round_trip(tmp_path):
    """save_pretrained + MintProcessor.from_pretrained (and AutoProcessor) keep max_text_length, decoder_only and
    [DEC], and process a batch to identical tensors."""
    processor = stage2_processor(max_text_length=12, decoder_only=False)
    processor.save_pretrained(tmp_path)
    for loaded in (MintProcessor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is MintProcessor
        assert loaded.max_text_length == 12 and loaded.decoder_only is False and not loaded.is_stage1
        assert loaded.dec_token_id == processor.dec_token_id and len(loaded.qformer_tokenizer) == len(WORDS) + 1
        expected = processor(audio=clips(), text=INSTRUCTIONS, response=RESPONSES, sampling_rate=16000)
        got = loaded(audio=clips(), text=INSTRUCTIONS, response=RESPONSES, sampling_rate=16000)
        assert set(got) == set(expected)
        for key in expected:
            assert torch.equal(got[key], expected[key]), key


def test_stage1_processor_stays_stage1_after_saving(tmp_path):
    """A saved and loaded stage-1 processor is still stage 1 and still cuts long captions."""
    processor = stage1_processor(max_text_length=8)
    processor.save_pretrained(tmp_path)
    loaded = MintProcessor.from_pretrained(tmp_path)
    assert loaded.is_stage1
    batch = loaded(text=["a dog barks on the roof in the yard loud"])
    assert set(batch) == {"input_ids", "attention_mask"} and batch["input_ids"].shape == (1, 8)


# ----------------------------------------------------------------------------------------------------------------
# end to end


def test_stage2_batch_runs_through_a_tiny_model():
    """A stage-2 batch (audio, instructions, responses) holds exactly the inputs MintForConditionalGeneration.forward
    takes besides cached audio; the model trains on it with the loss on the response tokens only; the prompts alone
    drive `generate` and `score_candidates`, and `batch_decode` reads the generated tokens."""
    processor = stage2_processor()
    torch.manual_seed(0)
    model = MintForConditionalGeneration(tiny_config(processor, with_llm=True))
    batch = processor(audio=clips(), text=INSTRUCTIONS, response=RESPONSES, sampling_rate=16000)
    accepted = set(inspect.signature(model.forward).parameters) - {"audio_embeds", "audio_embeds_mask", "return_dict"}
    assert set(batch) == accepted
    out = model(**batch)
    assert out.logits.shape == (2, NUM_QUERIES + batch["input_ids"].shape[1], len(processor.tokenizer))
    expected = F.cross_entropy(out.logits[:, NUM_QUERIES - 1:-1].reshape(-1, out.logits.shape[-1]),
                               batch["labels"].reshape(-1), ignore_index=-100)
    assert torch.allclose(out.loss, expected, atol=1e-6)
    out.loss.backward()
    assert model.language_projection.weight.grad.abs().sum() > 0

    model.eval()
    prompts = processor(audio=clips(), text=INSTRUCTIONS, sampling_rate=16000)
    assert "labels" not in prompts
    generated = model.generate(**prompts, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert generated.shape == (2, 3)
    texts = processor.batch_decode(generated)
    assert len(texts) == 2 and all(isinstance(text, str) for text in texts)
    scores = model.score_candidates(processor.candidate_ids(["dog barks", "rain", "a bird sings"]), **prompts)
    assert scores.shape == (2, 3) and torch.isfinite(scores).all() and (scores < 0).all()


def test_stage1_batch_runs_through_a_tiny_model():
    """A stage-1 batch (audio and captions) holds inputs MintForPreTraining.forward takes and gives all three
    losses; its captions fit the model's max_text_length."""
    processor = stage1_processor(max_text_length=8)
    torch.manual_seed(0)
    model = MintForPreTraining(tiny_config(processor, with_llm=False))
    batch = processor(audio=clips(), text=["a dog barks on the roof in the yard loud", "rain falls"],
                      sampling_rate=16000)
    assert set(batch) == {"audio_values", "audio_attention_mask", "input_ids", "attention_mask"}
    assert set(batch) <= set(inspect.signature(model.forward).parameters)
    out = model(**batch)
    assert all(torch.isfinite(loss) for loss in (out.loss, out.alc_loss, out.alm_loss, out.atg_loss))
    assert out.atg_logits.shape == (2, 8, len(processor.qformer_tokenizer))
