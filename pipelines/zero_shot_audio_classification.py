"""`zero-shot-audio-classification` for MINT, in the shape of transformers' CLAP pipeline (which it keeps serving)."""

from __future__ import annotations

from typing import Any

from transformers import ZeroShotAudioClassificationPipeline

from .base import BatchedAudioPipeline, is_instance_by_name

PAPER_PROMPT = "This is a sound of"  # MINT's Table 1 classification prompt (AudioSet, VGGSound, FSD50K)


class MintZeroShotAudioClassificationPipeline(BatchedAudioPipeline, ZeroShotAudioClassificationPipeline):
    """Zero-shot audio classification: `candidate_labels` in, `[{"score", "label"}]` out, best first, the scores a
    softmax over the candidates, as transformers' CLAP pipeline returns them.

    * A MINT stage-1 model (`MintForPreTraining`) scores each label by the ALC similarity of the audio with the text
      `hypothesis_template.format(label)` (default `"This is a sound of {}"`: the paper's prompt, then the label),
      divided by the model's learned temperature.
    * A MINT stage-2 model (`MintForConditionalGeneration`) ranks the labels by their log-likelihood as the LLM's
      response to `instruction` (default: the paper's `"This is a sound of"`), audio and prompt encoded once
      (`score_candidates`); the softmax is over those log-likelihoods.
    * Any other model (CLAP) goes to transformers' own pipeline, unchanged.

    Example:

    ```python
    >>> from transformers import pipeline
    >>> import soundlm  # registers MINT with the task
    >>> classify = pipeline("zero-shot-audio-classification", model="runs/demo/mint/stage1/final")  # doctest: +SKIP
    >>> classify("dog.wav", candidate_labels=["dog barking", "applause"])  # doctest: +SKIP
    [{'score': 0.93, 'label': 'dog barking'}, {'score': 0.07, 'label': 'applause'}]
    ```
    """

    _load_processor = None  # MINT: its MintProcessor; CLAP: its feature extractor and tokenizer
    _load_image_processor = False
    _load_feature_extractor = None
    _load_tokenizer = None

    @property
    def _mint_stage(self) -> str | None:
        """`"pretraining"` (stage 1), `"generation"` (stage 2) or None, by class name (`is_instance_by_name`)."""
        if is_instance_by_name(self.model, "MintForPreTraining"):
            return "pretraining"
        return "generation" if is_instance_by_name(self.model, "MintForConditionalGeneration") else None

    @property
    def _is_mint(self) -> bool:
        return self._mint_stage is not None

    def __call__(self, audios: Any, **kwargs: Any) -> Any:
        if not self._is_mint:
            return ZeroShotAudioClassificationPipeline.__call__(self, audios, **kwargs)
        if self.processor is None:
            raise ValueError("a MINT model needs its MintProcessor: pass processor=... or a folder that holds one")
        return BatchedAudioPipeline.__call__(self, audios, **kwargs)

    def _sanitize_parameters(self, candidate_labels: list[str] | None = None, hypothesis_template: str | None = None,
                             instruction: str | None = None, sampling_rate: int | None = None, **kwargs: Any):
        if not self._is_mint:
            if instruction is not None or sampling_rate is not None:
                raise TypeError("instruction and sampling_rate are for MINT models")
            return ZeroShotAudioClassificationPipeline._sanitize_parameters(
                self, **({} if candidate_labels is None else {"candidate_labels": candidate_labels}),
                **({} if hypothesis_template is None else {"hypothesis_template": hypothesis_template}), **kwargs)
        if kwargs:
            raise TypeError(f"zero-shot-audio-classification got unexpected argument(s) {sorted(kwargs)}")
        preprocess = {"sampling_rate": sampling_rate}
        if candidate_labels is not None:
            preprocess["candidate_labels"] = candidate_labels
        if hypothesis_template is not None:
            preprocess["hypothesis_template"] = hypothesis_template
        if instruction is not None:
            preprocess["instruction"] = instruction
        return preprocess, {}, {}

    def preprocess(self, audio: Any, candidate_labels: list[str] | None = None,
                   hypothesis_template: str = PAPER_PROMPT + " {}", instruction: str = PAPER_PROMPT,
                   sampling_rate: int | None = None) -> dict[str, Any]:
        if not self._is_mint:
            return ZeroShotAudioClassificationPipeline.preprocess(self, audio, candidate_labels, hypothesis_template)
        labels = _check_labels(candidate_labels)
        inputs: dict[str, Any] = {"candidate_labels": labels,
                                  **self._cast_floats(self.processor.audio_inputs(audio, sampling_rate))}
        if self._mint_stage == "pretraining":
            if "{}" not in hypothesis_template:
                raise ValueError(f"hypothesis_template must hold '{{}}' where the label goes, got "
                                 f"{hypothesis_template!r}")
            inputs["text"] = self.processor.qformer_text([hypothesis_template.format(label) for label in labels])
        else:
            prompt = self.processor.llm_text([instruction])
            qformer = self.processor.qformer_text([instruction], truncate=False)
            inputs["prompt"] = {"input_ids": prompt["input_ids"], "attention_mask": prompt["attention_mask"],
                                "qformer_input_ids": qformer["input_ids"],
                                "qformer_attention_mask": qformer["attention_mask"]}
            inputs["candidates"] = self.processor.candidate_ids(labels)
        return inputs

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        if not self._is_mint:
            return ZeroShotAudioClassificationPipeline._forward(self, model_inputs)
        labels = model_inputs.pop("candidate_labels")
        audio = {key: model_inputs[key] for key in ("audio_values", "audio_attention_mask") if key in model_inputs}
        if self._mint_stage == "pretraining":
            similarity = self.model.similarity(self.model.get_audio_features(**audio),
                                               self.model.get_text_features(**model_inputs["text"]))
            logits = similarity / self.model.temperature.clamp(0.001, 0.5)
        else:
            batch = audio["audio_values"].shape[0]
            prompt = {key: value.expand(batch, -1) for key, value in model_inputs["prompt"].items()}
            logits = self.model.score_candidates(model_inputs["candidates"], **prompt, **audio)
        return {"candidate_labels": labels, "logits": logits.float()}

    def postprocess(self, model_outputs: dict[str, Any]) -> Any:
        if not self._is_mint:
            return ZeroShotAudioClassificationPipeline.postprocess(self, model_outputs)
        return ranked_labels(model_outputs)


def ranked_labels(model_outputs: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """`{"candidate_labels", "logits" (batch, labels)}` -> per clip `[{"score", "label"}]`, best first, the scores a
    softmax over the labels."""
    labels = model_outputs["candidate_labels"]
    results = []
    for row in model_outputs["logits"].softmax(dim=-1):
        ranked = sorted(zip(row.tolist(), labels), key=lambda pair: -pair[0])
        results.append([{"score": score, "label": label} for score, label in ranked])
    return results


def _check_labels(candidate_labels: Any) -> list[str]:
    if isinstance(candidate_labels, str):
        candidate_labels = [label.strip() for label in candidate_labels.split(",")]
    if (not isinstance(candidate_labels, (list, tuple)) or not candidate_labels
            or not all(isinstance(label, str) and label.strip() for label in candidate_labels)):
        raise ValueError(f"candidate_labels must be a non-empty list of non-empty strings, got {candidate_labels!r}")
    return list(candidate_labels)
