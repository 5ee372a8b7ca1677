"""AudioTokenProcessor: vocabulary, segments -> ids, injection, chat templates, padding, decoding, saving."""

from __future__ import annotations

import sys

import pytest
import torch
from helpers import tiny_config_kwargs, tiny_text_tokenizer
from transformers import AutoProcessor, AutoTokenizer

from soundlm.modeling.lm_msn import AudioTokenProcessor
from soundlm.processing.processing_lm_msn import VICUNA_V11_CHAT_TEMPLATE
from soundlm.processing.tasks import (
    TaskExample,
    audio_segment,
    lm_msn_chat_example,
    row_rng,
    text_segment,
    vicuna_v11_prompt,
)

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


@pytest.fixture
def processor():
    return AudioTokenProcessor(tiny_text_tokenizer(), codebook_size=16)


def test_audio_tokens_added_once_in_one_contiguous_block(tmp_path):
    tokenizer = tiny_text_tokenizer()
    processor = AudioTokenProcessor(tokenizer, codebook_size=16)
    assert processor.vocab_size == 300 + 18
    assert processor.audio_id_range == (300, 318)
    assert processor.audio_token_ids == list(range(300, 318))
    again = AudioTokenProcessor(tokenizer)  # the tokens are there: the size is read from them
    assert again.vocab_size == 318 and again.codebook_size == 16
    processor.save_pretrained(tmp_path)
    reloaded = AudioTokenProcessor(AutoTokenizer.from_pretrained(tmp_path), codebook_size=16)
    assert reloaded.vocab_size == 318 and reloaded.audio_token_offset == processor.audio_token_offset


def test_codebook_size_from_the_sound_tokenizer_config_or_folder(tmp_path):
    from soundlm import MSNTokenizerConfig

    config = MSNTokenizerConfig(**tiny_config_kwargs(codebook_size=24))
    assert AudioTokenProcessor(tiny_text_tokenizer(), codebook_size=config).codebook_size == 24
    config.save_pretrained(tmp_path)
    assert AudioTokenProcessor(tiny_text_tokenizer(), codebook_size=str(tmp_path)).codebook_size == 24


def test_codes_ids_codes_round_trip(processor):
    codes = [0, 15, 7, 7, 3]
    example = TaskExample("text_to_audio", (text_segment("rain"), audio_segment(codes, is_target=True)))
    ids = processor.encode_example(example)["input_ids"]
    assert ids[-7:] == [processor.soa_token_id, *(processor.audio_token_offset + c for c in codes),
                        processor.eoa_token_id]
    read = processor.decode(ids)
    assert read.audio_codes == [codes] and read.complete == [True] and read.text == "rain"


@pytest.mark.reliability(
    "user text containing `<soa>`, `<a_12>`, `<eoa>`, `</s>`",
    "stays text (tokenised with every special token split) and decodes back verbatim",
)
def test_text_that_looks_like_audio_tokens_stays_text(processor):
    """The injection case: a caption with `<soa>`, `<a_12>` and `</s>` in it must not become those tokens."""
    caption = "a dog <soa><a_12><eoa></s> barks"
    example = TaskExample("audio_to_text", (audio_segment([1, 2]), text_segment(caption, is_target=True)))
    ids = processor.encode_example(example)["input_ids"]
    text_ids = ids[4:]  # after <soa> <a_1> <a_2> <eoa>
    low, high = processor.audio_id_range
    assert not any(low <= i < high for i in text_ids)
    assert processor.tokenizer.eos_token_id not in text_ids
    read = processor.decode(ids)
    assert read.audio_codes == [[1, 2]] and read.text == caption


@pytest.mark.parametrize("task", ["text_to_audio", "audio_to_text"])
def test_labels_and_weights(processor, task):
    audio, text = audio_segment([4, 5, 6], is_target=task == "text_to_audio"), text_segment("rain falls")
    if task == "audio_to_text":
        text = text_segment("rain falls", is_target=True)
    example = TaskExample(task, (text, audio) if task == "text_to_audio" else (audio, text))
    encoded = processor.encode_example(example)
    ids, labels, weights = encoded["input_ids"], encoded["labels"], encoded["loss_weights"]
    assert len(ids) == len(labels) == len(weights)
    audio_positions = [i for i, t in enumerate(ids) if processor.audio_id_range[0] <= t < processor.audio_id_range[1]]
    assert len(audio_positions) == 5  # <soa> 3 codes <eoa>
    others = [i for i in range(len(ids)) if i not in audio_positions]
    if task == "text_to_audio":  # audio is the target: codes and <eoa> weigh 10, <soa> (the choice of audio) 1
        assert all(labels[i] == ids[i] for i in audio_positions)
        assert [weights[i] for i in audio_positions] == [1.0, 10.0, 10.0, 10.0, 10.0]
        assert all(labels[i] == -100 and weights[i] == 0.0 for i in others)
    else:  # caption is the target, weight 1
        assert all(labels[i] == -100 and weights[i] == 0.0 for i in audio_positions)
        assert all(labels[i] == ids[i] and weights[i] == 1.0 for i in others)


def test_target_tokens_follow_the_characters_of_target_segments(processor):
    """A text run is tokenised in one piece (the ids of the joined string) and a token is a target when it
    overlaps a target segment."""
    example = TaskExample("t", (text_segment("the genre of this music is"), text_segment(" jazz", is_target=True)))
    encoded = processor.encode_example(example)
    joined = processor.tokenizer("the genre of this music is jazz", add_special_tokens=False)["input_ids"]
    assert encoded["input_ids"] == joined
    target_text = processor.tokenizer.decode([t for t in encoded["labels"] if t != -100])
    assert target_text == " jazz"


def test_padding_sides(processor):
    a = TaskExample("t", (text_segment("rain"),))
    b = TaskExample("t", (text_segment("a dog barks loudly in the yard", is_target=True),))
    right = processor([a, b])
    left = processor([a, b], padding_side="left")
    assert right["input_ids"].shape == left["input_ids"].shape
    assert right["attention_mask"][0, 0] == 1 and right["attention_mask"][0, -1] == 0
    assert left["attention_mask"][0, 0] == 0 and left["attention_mask"][0, -1] == 1
    assert (right["labels"][0][right["attention_mask"][0] == 0] == -100).all()
    assert right["loss_weights"].dtype == torch.float32


def test_bos_of_the_tokenizer_is_kept():
    processor = AudioTokenProcessor(tiny_text_tokenizer(with_bos=True), codebook_size=4)
    ids = processor.encode_example(TaskExample("t", (text_segment("rain"),)))["input_ids"]
    assert ids[0] == processor.tokenizer.bos_token_id and ids.count(processor.tokenizer.bos_token_id) == 1


def test_vicuna_template_is_set_and_matches_vicuna_v11_prompt(processor):
    assert processor.tokenizer.chat_template == VICUNA_V11_CHAT_TEMPLATE
    user, answer = [text_segment("What is this?")], [text_segment("rain")]
    rendered = processor.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is this?"}, {"role": "assistant", "content": "rain"}], tokenize=False)
    assert rendered == TaskExample("c", vicuna_v11_prompt(user, answer)).render()
    prompt = processor.tokenizer.apply_chat_template([{"role": "user", "content": "What is this?"}], tokenize=False,
                                                     add_generation_prompt=True)
    assert prompt == TaskExample("c", vicuna_v11_prompt(user)).render()
    # through chat_segments, with audio inside, the ids and the targets equal the Vicuna builder's
    user = [audio_segment([3, 1]), text_segment("\nDescribe the sound.")]
    ours = processor.encode_example(TaskExample("c", processor.chat_segments(user, answer)))
    theirs = processor.encode_example(TaskExample("c", vicuna_v11_prompt(user, answer)))
    assert ours == theirs


def test_a_tokenizer_with_its_own_template_keeps_it():
    tokenizer = tiny_text_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    processor = AudioTokenProcessor(tokenizer, codebook_size=8)
    assert processor.tokenizer.chat_template == CHATML
    example = lm_msn_chat_example("captioning", [1, 2], caption="rain falls", rng=row_rng(0, "k"),
                                  chat_template=processor.chat_segments)
    assert example.render().startswith("<|im_start|>user\n<soa><a_1><a_2><eoa>\n")
    assert example.render().endswith("<|im_start|>assistant\nrain falls<|im_end|>\n")
    encoded = processor.encode_example(example)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    # scaffolding special tokens are recognised; the answer and its end-of-turn are the targets
    assert encoded["input_ids"].count(im_end) == 2
    target_text = tokenizer.decode([t for t in encoded["labels"] if t != -100])
    assert target_text == "rain falls<|im_end|>\n"


def test_save_and_load_with_auto_processor(processor, tmp_path):
    processor.audio_loss_weight = 5.0
    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, AudioTokenProcessor)
    assert (loaded.codebook_size, loaded.audio_loss_weight, loaded.vocab_size) == (16, 5.0, processor.vocab_size)
    assert loaded.tokenizer.chat_template == processor.tokenizer.chat_template
    example = lm_msn_chat_example("captioning", [1, 2], caption="rain", rng=row_rng(0, "k"))
    assert loaded.encode_example(example) == processor.encode_example(example)



def test_prompts_default_to_the_shipped_file_and_travel_with_the_processor(processor, tmp_path):
    from soundlm.processing.tasks import load_lm_msn_prompts

    assert processor.prompts is None and processor.stage2_prompts == load_lm_msn_prompts()
    own = {"captioning": ["What is this?"], "classification": ["Label?"], "text_to_audio": ["Make {caption}"]}
    AudioTokenProcessor(processor.tokenizer, prompts=own).save_pretrained(tmp_path)
    assert AutoProcessor.from_pretrained(tmp_path).stage2_prompts == own
    with pytest.raises(ValueError, match=r"missing \['text_to_audio'\]"):
        AudioTokenProcessor(processor.tokenizer, prompts={"captioning": ["a"], "classification": ["b"]})
    with pytest.raises(ValueError, match="must contain '{caption}'"):
        AudioTokenProcessor(processor.tokenizer, prompts={**own, "text_to_audio": ["no field"]})


def test_examples_made_by_another_copy_of_the_module_are_encoded_alike(processor, monkeypatch):
    """Remote code loads one copy of `examples.py` per class an exported folder maps (processor, pipeline): the
    processor encodes a TaskExample (and segments) of another copy as its own, and refuses other types."""
    import importlib.util

    from soundlm.processing.tasks import examples

    spec = importlib.util.spec_from_file_location("soundlm.processing.tasks.examples_copy", examples.__file__)
    copy = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, copy)  # dataclasses look their module up while building
    spec.loader.exec_module(copy)
    assert copy.Segment is not examples.Segment
    segments = [copy.text_segment("rain "), copy.audio_segment([3, 1], is_target=True)]
    ours = TaskExample("text_to_audio", (text_segment("rain "), audio_segment([3, 1], is_target=True)))
    assert processor.encode_example(copy.TaskExample("text_to_audio", segments)) == processor.encode_example(ours)
    assert TaskExample("text_to_audio", segments) == ours
    with pytest.raises(TypeError, match="must be a Segment"):
        TaskExample("text_to_audio", [("text", "rain")])

@pytest.mark.reliability(
    "generated ids with an audio span never closed (no `<eoa>`), text tokens inside a span, codes or `<eoa>` "
    "outside one",
    "the open span's codes are kept with `complete=False` (`generate_audio` logs it and decodes what there is); "
    "text inside a span and stray codes are dropped",
)
def test_decode_keeps_an_unterminated_span_and_drops_stray_tokens(processor):
    ids = [*processor.tokenizer("rain", add_special_tokens=False)["input_ids"], processor.audio_token_offset + 3,
           processor.eoa_token_id, processor.soa_token_id, processor.audio_token_offset + 1]
    read = processor.decode(torch.tensor(ids))
    assert read.text == "rain" and read.audio_codes == [[1]] and read.complete == [False]
    # text inside a span is dropped, the span's codes kept
    word = processor.tokenizer("dog", add_special_tokens=False)["input_ids"]
    ids = [processor.soa_token_id, processor.audio_token_offset + 1, *word, processor.audio_token_offset + 2,
           processor.eoa_token_id]
    read = processor.decode(ids)
    assert read.text == "" and read.audio_codes == [[1, 2]] and read.complete == [True]


@pytest.mark.reliability(
    "a tokenizer whose audio tokens cover another codebook size than asked; codes outside the codebook in a task",
    "`ValueError` naming both numbers",
)
def test_bad_inputs_give_clear_errors(processor):
    with pytest.raises(ValueError, match="16 is outside the codebook of 16 codes"):
        processor.encode_example(TaskExample("t", (audio_segment([3, 16]),)))
    with pytest.raises(ValueError, match="at least one code"):
        audio_segment([])
    with pytest.raises(ValueError, match="cover a codebook of 16 codes but codebook_size is 32"):
        AudioTokenProcessor(processor.tokenizer, codebook_size=32)
    with pytest.raises(ValueError, match="codebook_size is required"):
        AudioTokenProcessor(tiny_text_tokenizer())
    with pytest.raises(TypeError, match="PreTrainedTokenizerBase"):
        AudioTokenProcessor("not a tokenizer", codebook_size=4)
    with pytest.raises(ValueError, match="padding_side"):
        processor([TaskExample("t", (text_segment("a"),))], padding_side="middle")
    partial = tiny_text_tokenizer()
    partial.add_tokens(["<soa>", "<eoa>", "<a_0>", "<a_2>"], special_tokens=True)
    with pytest.raises(ValueError, match="partial audio vocabulary"):
        AudioTokenProcessor(partial, codebook_size=4)
