"""`zero-shot-audio-classification` for LM-MSN on top of MINT's (which keeps serving MINT and, through it, CLAP)."""

from __future__ import annotations

from typing import Any

from ..modeling.lm_msn.generation_lm_msn import score_answers
from ..processing.feature_extraction_msn import MSNFeatureExtractor
from .base import BatchedAudioPipeline
from .lm_msn_support import clip_questions, default_prompt, is_lm_msn, sound_tokenizer_for
from .zero_shot_audio_classification import MintZeroShotAudioClassificationPipeline, _check_labels, ranked_labels

__all__ = ["LMMSNZeroShotAudioClassificationPipeline"]


class LMMSNZeroShotAudioClassificationPipeline(MintZeroShotAudioClassificationPipeline):
    """Zero-shot audio classification: `candidate_labels` in, `[{"score", "label"}]` out, best first, the scores a
    softmax over the candidates (transformers' CLAP pipeline's shape).

    * LM-MSN (a causal LM with its `AudioTokenProcessor`): the clip becomes sound tokens (at most one decoder
      window, as in training); each label is scored as the assistant's answer to `instruction` about the audio
      (default: the processor's first classification prompt) by its log-likelihood, end-of-turn token included
      (`score_answers`; the audio and the prompt run once per clip). `audio_guidance_scale` w scores each label
      by w log p(label | audio, prompt) + (1 - w) log p(label | prompt): w = 2 ranks by how much the audio raises
      a label's likelihood over the prompt's own prior, which a briefly trained model needs (README "LM-MSN audio
      LLM", label ranking). The sound tokenizer is `sound_tokenizer=` (a folder or `MSNTokenizerModel`), else the
      model folder's `sound_tokenizer/`.
    * MINT and CLAP: `MintZeroShotAudioClassificationPipeline`, unchanged.

    Example:

    ```python
    >>> from transformers import pipeline
    >>> import soundlm  # registers the task
    >>> classify = pipeline("zero-shot-audio-classification", model="runs/demo/lm_msn/merged",
    ...                     sound_tokenizer="runs/demo/tokenizer_fm/final")  # doctest: +SKIP
    >>> classify("dog.wav", candidate_labels=["dog", "applause", "english_speech"], audio_guidance_scale=2)
    ... # doctest: +SKIP
    ```
    """

    def __init__(self, *args: Any, sound_tokenizer: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sound_tokenizer = sound_tokenizer_for(self, sound_tokenizer)
        self.sound_extractor = None
        if self.sound_tokenizer is not None:
            self.sound_extractor = MSNFeatureExtractor.from_tokenizer_config(self.sound_tokenizer.config)

    def __call__(self, audios: Any, **kwargs: Any) -> Any:
        if self.sound_tokenizer is None:
            return super().__call__(audios, **kwargs)
        return BatchedAudioPipeline.__call__(self, audios, **kwargs)

    def _sanitize_parameters(self, candidate_labels: list[str] | None = None, instruction: str | None = None,
                             sampling_rate: int | None = None, audio_guidance_scale: float | None = None,
                             **kwargs: Any):
        if not is_lm_msn(getattr(self, "processor", None)):  # called from Pipeline.__init__ too, before ours ends
            if audio_guidance_scale is not None:
                raise TypeError("audio_guidance_scale is for LM-MSN models (the audio as sound tokens in the LLM's "
                                f"prompt), got a {type(self.model).__name__}")
            return super()._sanitize_parameters(candidate_labels=candidate_labels, instruction=instruction,
                                                sampling_rate=sampling_rate, **kwargs)
        if kwargs:
            raise TypeError(f"zero-shot-audio-classification (LM-MSN) got unexpected argument(s) {sorted(kwargs)}")
        if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
            raise ValueError(f"instruction must be a non-empty string, got {instruction!r}")
        preprocess = {key: value for key, value in {"candidate_labels": candidate_labels, "instruction": instruction,
                                                     "sampling_rate": sampling_rate}.items() if value is not None}
        forward = {} if audio_guidance_scale is None else {"audio_guidance_scale": audio_guidance_scale}
        return preprocess, forward, {}

    def preprocess(self, audio: Any, candidate_labels: list[str] | None = None, instruction: str | None = None,
                   sampling_rate: int | None = None, **kwargs: Any) -> dict[str, Any]:
        if self.sound_tokenizer is None:
            return super().preprocess(audio, candidate_labels=candidate_labels, sampling_rate=sampling_rate,
                                      **({} if instruction is None else {"instruction": instruction}), **kwargs)
        inputs = self.sound_extractor(audio, sampling_rate=sampling_rate, return_tensors="pt")
        return {"input_values": inputs["input_values"], "padding_mask": inputs.get("padding_mask"),
                "candidate_labels": _check_labels(candidate_labels),
                "instruction": instruction or default_prompt(self.processor, "classification")}

    def _forward(self, model_inputs: dict[str, Any], audio_guidance_scale: float = 1.0) -> dict[str, Any]:
        if self.sound_tokenizer is None:
            return super()._forward(model_inputs)
        questions = clip_questions(self.sound_tokenizer, model_inputs["input_values"], model_inputs["padding_mask"],
                                   model_inputs["instruction"])
        labels = model_inputs["candidate_labels"]
        logits = score_answers(self.model, self.processor, questions, labels, audio_guidance_scale=audio_guidance_scale)
        return {"candidate_labels": labels, "logits": logits}

    def postprocess(self, model_outputs: dict[str, Any]) -> Any:
        if self.sound_tokenizer is None:
            return super().postprocess(model_outputs)
        return ranked_labels(model_outputs)
