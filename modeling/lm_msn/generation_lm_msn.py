# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""Generation with the audio LLM: a logits processor that keeps audio spans well formed, and the two directions
(audio in -> text out, text in -> audio out) as functions over `model.generate`.

Audio spans and the sound tokenizer's window: the decoder of `MSNTokenizerModel` reconstructs one window of
audio (the paper's 10 s = 215 frames) at a time. `AudioSpanLogitsProcessor` closes a span at `max_audio_tokens`
(default: the decoder's window), so a generated span never exceeds what one decoder call was trained on. A span
handed to `codes_to_audio` that is longer anyway (codes from elsewhere) is decoded window by window and the
pieces are concatenated. A span the model left open (the generation budget ran out before `<eoa>`) is decoded
as far as it got and flagged `complete=False`.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor, LogitsProcessorList

logger = logging.getLogger(__name__)

__all__ = [
    "AudioSpanLogitsProcessor",
    "GeneratedAudio",
    "codes_to_audio",
    "generate_audio",
    "generate_text",
    "score_answers",
]


class AudioSpanLogitsProcessor(LogitsProcessor):
    """Allows only well-formed audio spans.

    Inside a span (after a `<soa>` with no `<eoa>` since): only audio code tokens, `<eoa>` only once the span holds
    `min_audio_tokens` codes, and `<eoa>` alone once it holds `max_audio_tokens`. Outside a span: anything but
    audio code tokens and `<eoa>` (text, `<soa>`, eos). The state is read from the ids each step (prompt
    included), so a prompt that ends in `<soa>` starts generation inside a span.

    Args:
        processor (`AudioTokenProcessor`): gives the ids of `<soa>`, `<eoa>` and the codes.
        min_audio_tokens (`int`, *optional*, defaults to 1).
        max_audio_tokens (`int`, *optional*): codes per span at most (e.g. the sound tokenizer's frames per
            window); unlimited if None.
        allow_new_spans (`bool`, *optional*, defaults to True): whether `<soa>` may be generated outside a span;
            False keeps the answer in text (what `generate_text` asks for).
    """

    def __init__(self, processor, min_audio_tokens: int = 1, max_audio_tokens: int | None = None,
                 allow_new_spans: bool = True):
        if min_audio_tokens < 1:
            raise ValueError(f"min_audio_tokens must be >= 1 (an audio span holds codes), got {min_audio_tokens}.")
        if max_audio_tokens is not None and max_audio_tokens < min_audio_tokens:
            raise ValueError(f"max_audio_tokens ({max_audio_tokens}) must be >= min_audio_tokens "
                             f"({min_audio_tokens}).")
        self.soa = processor.soa_token_id
        self.eoa = processor.eoa_token_id
        self.first_code = processor.audio_token_offset
        self.end_code = processor.audio_token_offset + processor.codebook_size
        self.min_audio_tokens = min_audio_tokens
        self.max_audio_tokens = max_audio_tokens
        self.allow_new_spans = allow_new_spans

    def span_state(self, input_ids: torch.LongTensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row: whether the next token is inside an audio span `(batch,)` and how many codes it holds."""
        length = input_ids.shape[1]
        positions = torch.arange(length, device=input_ids.device).expand_as(input_ids)
        last_soa = torch.where(input_ids == self.soa, positions, -1).amax(dim=1)
        last_eoa = torch.where(input_ids == self.eoa, positions, -1).amax(dim=1)
        inside = last_soa > last_eoa
        after_soa = positions > last_soa[:, None]
        is_code = (input_ids >= self.first_code) & (input_ids < self.end_code)
        count = (is_code & after_soa).sum(dim=1)
        return inside, count

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        inside, count = self.span_state(input_ids)
        blocked = torch.zeros_like(scores, dtype=torch.bool)
        codes = slice(self.first_code, self.end_code)
        # outside: no codes, no <eoa>
        blocked[~inside, codes] = True
        blocked[~inside, self.eoa] = True
        if not self.allow_new_spans:
            blocked[~inside, self.soa] = True
        # inside: codes only (plus <eoa> once long enough)
        code_mask = torch.zeros(scores.shape[1], dtype=torch.bool, device=scores.device)
        code_mask[codes] = True
        allow_eoa = count >= self.min_audio_tokens
        inside_blocked = ~code_mask[None, :].expand(int(inside.sum()), -1).clone()
        inside_blocked[:, self.eoa] = ~allow_eoa[inside]
        if self.max_audio_tokens is not None:
            full = (count[inside] >= self.max_audio_tokens)
            inside_blocked[full] = True
            inside_blocked[full, self.eoa] = False
        blocked[inside] = inside_blocked
        return scores.masked_fill(blocked, float("-inf"))


@dataclass
class GeneratedAudio:
    """Text-to-audio output for one prompt.

    Args:
        audio_codes (`list[int]`): the generated codes `(num_frames,)`.
        complete (`bool`): whether the span was closed by `<eoa>`.
        audio_values (`torch.FloatTensor` of shape `(channels, samples)`, *optional*): the decoded waveform.
        sampling_rate (`int`, *optional*).
    """

    audio_codes: list[int]
    complete: bool
    audio_values: torch.Tensor | None = None
    sampling_rate: int | None = None


def _check_context(model, features: list[dict], max_new_tokens: int) -> None:
    """Refuse, before any compute, a prompt that with its generation budget would not fit the LLM's context
    (`max_position_embeddings`): past it a rotary model's outputs are garbage and the KV cache grows unchecked."""
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if not context:
        return
    for index, feature in enumerate(features):
        length = len(feature["input_ids"])
        if length + max_new_tokens > context:
            raise ValueError(
                f"prompt {index} has {length} tokens and max_new_tokens={max_new_tokens}: {length + max_new_tokens} "
                f"> the model's context of {context} tokens (max_position_embeddings); shorten the text or the audio"
            )


def _prompt_ids(processor, segments: Sequence) -> list[int]:
    """One prompt's segments as token ids, unpadded."""
    from ...processing.tasks.examples import TaskExample

    return processor.encode_example(TaskExample("prompt", tuple(segments)))["input_ids"]


def _generate(model, processor, prompt_segments: Sequence, prefix_ids: Sequence[int], padding_side: str = "left",
              **generate_kwargs) -> tuple[torch.Tensor, int]:
    features = [{"input_ids": _prompt_ids(processor, segments) + list(prefix_ids)}
                for segments in prompt_segments]
    _check_context(model, features, int(generate_kwargs.get("max_new_tokens") or 0))
    batch = processor.pad(features, padding_side=padding_side)
    device = next(model.parameters()).device
    batch = {name: value.to(device) for name, value in batch.items()}
    generate_kwargs.setdefault("pad_token_id", processor.pad_token_id)
    with torch.no_grad():
        output = model.generate(**batch, **generate_kwargs)
    return output, batch["input_ids"].shape[1]


def _without_audio(segments: Sequence) -> tuple:
    """A prompt's segments with its audio spans left out: the condition-free prompt of audio guidance."""
    return tuple(segment for segment in segments if segment.kind != "audio")


def _check_guidance_scale(audio_guidance_scale) -> None:
    if isinstance(audio_guidance_scale, bool) or not isinstance(audio_guidance_scale, (int, float)) \
            or not math.isfinite(audio_guidance_scale) or audio_guidance_scale < 0:
        raise ValueError(f"audio_guidance_scale must be a finite number >= 0 (1 = no guidance), got "
                         f"{audio_guidance_scale!r}.")


def generate_text(model, processor, prompts: Sequence[Sequence], max_new_tokens: int = 64,
                  audio_guidance_scale: float = 1.0, **generate_kwargs) -> list[str]:
    """Audio (or any segments) in, text out, batched with left padding and the KV cache. The answer is kept in
    text: `<soa>` and audio tokens cannot be generated (`AudioSpanLogitsProcessor(allow_new_spans=False)`).

    Audio guidance (`audio_guidance_scale` = w != 1) is classifier-free guidance with the audio as the condition
    (Sanchez et al. 2023, "Stay on topic with classifier-free guidance"): each step scores the next token by
    `w * log p(y | audio, prompt) + (1 - w) * log p(y | prompt)`, the second term from the same prompt with its
    audio spans left out (a second pass through the model, with its own KV cache: transformers' `guidance_scale`
    with `negative_prompt_ids`). w > 1 favours answers that the audio makes likelier than the prompt alone does:
    a briefly trained model whose greedy answer is its prior (the same caption for every clip) is pushed off it
    toward what its audio tokens say (README "LM-MSN audio LLM", audio guidance). A prompt without audio is
    decoded as without guidance. Greedy or sampled, one beam.

    Args:
        prompts: one generation prompt per item, as segments (e.g. `processor.chat_segments([audio_segment(codes),
            text_segment("\\nDescribe the sound.")])`).
        max_new_tokens: text budget per item.
        audio_guidance_scale: w above; 1 (the default) is plain decoding.
        **generate_kwargs: passed to `model.generate` (greedy by default).

    Returns:
        the generated text per prompt.
    """
    _check_guidance_scale(audio_guidance_scale)
    if audio_guidance_scale != 1:
        if int(generate_kwargs.get("num_beams") or 1) != 1:
            raise ValueError(f"audio guidance decodes one beam per prompt, got num_beams="
                             f"{generate_kwargs['num_beams']}.")
        unconditional = processor.pad([{"input_ids": _prompt_ids(processor, _without_audio(segments))}
                                       for segments in prompts], padding_side="left")
        device = next(model.parameters()).device
        generate_kwargs.update(guidance_scale=float(audio_guidance_scale),
                               negative_prompt_ids=unconditional["input_ids"].to(device),
                               negative_prompt_attention_mask=unconditional["attention_mask"].to(device))
    processors = LogitsProcessorList([AudioSpanLogitsProcessor(processor, allow_new_spans=False)])
    processors.extend(generate_kwargs.pop("logits_processor", []))
    output, prompt_length = _generate(model, processor, prompts, (), max_new_tokens=max_new_tokens,
                                      logits_processor=processors, **generate_kwargs)
    return [processor.decode(row[prompt_length:]).text.strip() for row in output]


def _answer_split(processor, question: Sequence, answer: str) -> tuple[list[int], list[int], list[bool]]:
    """`answer` as the assistant's reply to the user turn `question`, encoded as in training -> (the ids before
    the first target, the ids from it on, which of those are targets: the answer and the end-of-turn token)."""
    from ...processing.tasks.examples import TaskExample, text_segment

    encoded = processor.encode_example(TaskExample("answer", processor.chat_segments(question,
                                                                                      [text_segment(answer)])))
    targets = [label != -100 for label in encoded["labels"]]
    first = targets.index(True)
    last = len(targets) - targets[::-1].index(True)
    return encoded["input_ids"][:first], encoded["input_ids"][first:last], targets[first:last]


def _answer_log_likelihoods(model, processor, question: Sequence, answers: Sequence[str], chunk_size: int,
                            length_normalize: bool) -> torch.Tensor:
    """(num_answers,) summed (or mean) log-probabilities of each answer's target tokens after `question`; the
    question runs once, its key/value cache is shared by `chunk_size` answers at a time."""
    splits = [_answer_split(processor, question, answer) for answer in answers]
    prefix = splits[0][0]
    if any(split[0] != prefix for split in splits):
        raise ValueError("the answers change the chat template's text before them; cannot share the question")
    _check_context(model, [{"input_ids": prefix + split[1]} for split in splits], 0)
    device = next(model.parameters()).device
    prefix_ids = torch.tensor([prefix], device=device)
    out = model(input_ids=prefix_ids, use_cache=True)
    first_log_probs = out.logits[:, -1].float().log_softmax(-1)  # (1, vocab): predicts each answer's first token
    scores = torch.empty(len(answers))
    order = sorted(range(len(answers)), key=lambda i: len(splits[i][1]))  # similar lengths together: less padding
    for start in range(0, len(answers), chunk_size):
        indices = order[start:start + chunk_size]
        chunk = [splits[i] for i in indices]
        k, longest = len(chunk), max(len(split[1]) for split in chunk)
        ids = torch.full((k, longest), processor.pad_token_id, dtype=torch.long, device=device)
        real = torch.zeros(k, longest, dtype=torch.bool, device=device)
        target = torch.zeros(k, longest, dtype=torch.bool, device=device)
        for row, (_, answer_ids, is_target) in enumerate(chunk):
            ids[row, :len(answer_ids)] = torch.tensor(answer_ids, device=device)
            real[row, :len(answer_ids)] = True
            target[row, :len(answer_ids)] = torch.tensor(is_target, device=device)
        cache = copy.deepcopy(out.cache)
        cache.batch_repeat_interleave(k)
        mask = torch.cat([torch.ones(k, len(prefix), dtype=torch.long, device=device), real.long()], dim=1)
        positions = len(prefix) + torch.arange(longest, device=device).expand(k, longest)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                       use_cache=True).logits.float()
        log_probs = torch.cat([first_log_probs.expand(k, -1)[:, None], logits[:, :-1].log_softmax(-1)], dim=1)
        token = log_probs.gather(-1, ids[..., None]).squeeze(-1) * target
        total = token.sum(-1)
        scores[indices] = (total / target.sum(-1) if length_normalize else total).cpu()
    return scores


@torch.no_grad()
def score_answers(model, processor, questions: Sequence[Sequence], answers: Sequence[str],
                  audio_guidance_scale: float = 1.0, chunk_size: int = 64, length_normalize: bool = False
                  ) -> torch.Tensor:
    """Answer ranking: how likely the model finds each candidate answer to each question (zero-shot classification
    over a closed label set, as MINT's vocabulary ranking does).

    Each answer is scored as it was trained: the assistant's reply in the chat template, its end-of-turn token
    included (so `dog` does not win by being the start of `dog_bark`). The question and its audio run once; its
    key/value cache is shared by `chunk_size` answers at a time. With audio guidance (w != 1) each token's score
    is `w * log p(y | audio, question) + (1 - w) * log p(y | question)`, the second term from the question with
    its audio spans left out (as `generate_text` decodes): w = 2 ranks by how much the audio raises each answer's
    likelihood over the text prompt's own prior.

    Args:
        questions: the user turns, as segments (e.g. `[audio_segment(codes), text_segment("\\nWhat is it?")]`),
            not yet wrapped in the chat template.
        answers: the candidate answers (non-empty strings).
        audio_guidance_scale: w above; 1 (the default) is the plain log-likelihood.
        chunk_size: answers per forward pass (memory: the question's cache is copied `chunk_size` times).
        length_normalize: the mean instead of the sum of the target tokens' scores.

    Returns:
        `torch.FloatTensor` of shape `(len(questions), len(answers))`, higher is likelier; the argmax of a row is
        the model's pick.
    """
    _check_guidance_scale(audio_guidance_scale)
    if not questions:
        raise ValueError("questions must hold at least one user turn, got none.")
    if isinstance(answers, str) or not answers or not all(isinstance(a, str) and a.strip() for a in answers):
        raise ValueError(f"answers must be a non-empty list of non-empty strings, got {answers!r}.")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int >= 1, got {chunk_size!r}.")
    memo: dict[tuple, torch.Tensor] = {}  # the audio-free question is often the same for every clip

    def scores(question: Sequence) -> torch.Tensor:
        key = tuple(question)
        if key not in memo:
            memo[key] = _answer_log_likelihoods(model, processor, question, answers, chunk_size, length_normalize)
        return memo[key]

    own = torch.stack([scores(question) for question in questions])
    if audio_guidance_scale == 1:
        return own
    prior = torch.stack([scores(_without_audio(question)) for question in questions])
    return audio_guidance_scale * own + (1 - audio_guidance_scale) * prior


def generate_audio(model, processor, prompts: Sequence[Sequence], max_audio_tokens: int, min_audio_tokens: int = 1,
                   sound_tokenizer=None, decode_kwargs: dict | None = None, **generate_kwargs) -> list[GeneratedAudio]:
    """Text in, audio out: the prompt is followed by `<soa>`, the constraint allows only codes until `<eoa>`
    (at least `min_audio_tokens`, at most `max_audio_tokens` codes), and the codes go through the sound
    tokenizer's decoder when one is given.

    Args:
        prompts: one generation prompt per item, as segments (e.g. `processor.chat_segments([text_segment(
            "Generate the sound of rain")])`).
        max_audio_tokens: codes per span at most; the sound tokenizer's frames per window is the natural value.
        sound_tokenizer (`MSNTokenizerModel`, *optional*): decodes the codes to `audio_values`.
        decode_kwargs: passed to `codes_to_audio` (e.g. `num_steps`, `generator`).
        **generate_kwargs: passed to `model.generate`, e.g. `do_sample=True, top_k=50`.
    """
    constraint = AudioSpanLogitsProcessor(processor, min_audio_tokens, max_audio_tokens)
    processors = LogitsProcessorList([constraint])
    processors.extend(generate_kwargs.pop("logits_processor", []))
    generate_kwargs.setdefault("eos_token_id", processor.eoa_token_id)
    output, prompt_length = _generate(model, processor, prompts, (processor.soa_token_id,),
                                      max_new_tokens=max_audio_tokens + 1, logits_processor=processors,
                                      **generate_kwargs)
    results = []
    for row in output:
        read = processor.decode([processor.soa_token_id, *row[prompt_length:].tolist()])
        codes, complete = read.audio_codes[0], read.complete[0]
        if not complete:
            logger.warning("an audio span was left open after %d codes (no <eoa>); decoding what there is",
                           len(codes))
        item = GeneratedAudio(audio_codes=codes, complete=complete)
        if sound_tokenizer is not None and codes:
            item.audio_values = codes_to_audio(sound_tokenizer, codes, **(decode_kwargs or {}))
            item.sampling_rate = sound_tokenizer.config.sampling_rate
        results.append(item)
    return results


def codes_to_audio(sound_tokenizer, codes: Sequence[int], **decode_kwargs) -> torch.Tensor:
    """Decode one span of codes `(num_frames,)` into a waveform `(channels, samples)`, after checking the whole
    span (integers, 1-D, non-empty, inside the codebook). Spans longer than the decoder's window are decoded window
    by window by the sound tokenizer's own `decode` (`config.window_frames`, its training clip)."""
    try:
        codes = torch.as_tensor(codes if torch.is_tensor(codes) else list(codes))
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"codes must be a sequence of integers ({error})") from None
    if codes.numel() and (codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool):
        raise TypeError(f"codes must be integers, got dtype {codes.dtype}")
    codes = codes.long()
    if codes.ndim != 1 or codes.numel() == 0:
        raise ValueError(f"codes must be a non-empty 1-D sequence, got shape {tuple(codes.shape)}.")
    if int(codes.max()) >= sound_tokenizer.config.codebook_size or int(codes.min()) < 0:
        # checked whole before the first window decodes; the words are the quantiser's own check's
        raise ValueError(f"codes must lie in [0, {sound_tokenizer.config.codebook_size}), got values in "
                         f"[{int(codes.min())}, {int(codes.max())}]")
    device = next(sound_tokenizer.parameters()).device
    with torch.no_grad():
        return sound_tokenizer.decode(codes.to(device)[None, None, :], **decode_kwargs).audio_values[0]
