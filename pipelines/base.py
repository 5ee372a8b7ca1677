"""What the package's pipelines share: one clip or a list of clips in, batches through the processor, one result per
clip out. Pipelines orchestrate; the model math lives in `modeling/`."""

from __future__ import annotations

from typing import Any

import torch
from transformers import Pipeline


def is_instance_by_name(obj: Any, class_name: str) -> bool:
    """Whether `obj`'s class or one of its bases is called `class_name`. The pipelines tell models and processors
    apart this way, not with `isinstance`: an exported folder run as remote code loads the model, the processor and
    the pipeline from separate module copies, whose classes are distinct objects."""
    return class_name in {cls.__name__ for cls in type(obj).__mro__}


def is_batch(inputs: Any) -> bool:
    """A list or tuple is a batch of clips; anything else (a path, an array, a `{"array", "sampling_rate"}` dict,
    a dataset row) is one clip. A 1-D or 2-D array is one clip (samples or channels x samples), never a batch."""
    return isinstance(inputs, (list, tuple))


class BatchedAudioPipeline(Pipeline):
    """A transformers `Pipeline` whose `preprocess` takes a list of clips at once, so that the processor pads a
    batch of them and the model runs once per `batch_size` clips (transformers' own collation only pads the keys it
    knows). `postprocess` returns one result per clip. Everything else (`device`, `dtype`, `pipeline(task,
    model=...)`) is the `Pipeline`'s."""

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        batch_size = kwargs.pop("batch_size", None)
        batch_size = (self._batch_size or 1) if batch_size is None else batch_size
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        preprocess_params, forward_params, postprocess_params = self._sanitize_parameters(**kwargs)
        preprocess_params = {**self._preprocess_params, **preprocess_params}
        forward_params = {**self._forward_params, **forward_params}
        postprocess_params = {**self._postprocess_params, **postprocess_params}
        single = not is_batch(inputs)
        items = [inputs] if single else list(inputs)
        if not items:
            raise ValueError("inputs is an empty list: expected at least one clip")
        results: list[Any] = []
        for start in range(0, len(items), batch_size):
            model_inputs = self.preprocess(items[start: start + batch_size], **preprocess_params)
            with self.device_placement(), torch.inference_mode():
                model_inputs = self._ensure_tensor_on_device(model_inputs, device=self.device)
                model_outputs = self._forward(model_inputs, **forward_params)
                model_outputs = self._ensure_tensor_on_device(model_outputs, device=torch.device("cpu"))
            results.extend(self.postprocess(model_outputs, **postprocess_params))
        return results[0] if single else results

    def _cast_floats(self, tensors: dict[str, Any]) -> dict[str, Any]:
        """Floating-point inputs in the pipeline's `dtype` (ids and masks untouched)."""
        return {key: value.to(self.dtype) if torch.is_tensor(value) and value.is_floating_point() else value
                for key, value in tensors.items()}


def codes_per_clip(codec: Any, input_values: torch.Tensor, padding_mask: torch.Tensor | None) -> list[torch.Tensor]:
    """Each clip's codes `(num_codebooks, frames)` from a codec-shaped model (`encode` -> `audio_codes`,
    `frame_mask`), cut to the clip's own frames (a padded batch encodes each clip as alone)."""
    encoded = codec.encode(input_values.to(codec.dtype), padding_mask=padding_mask)
    if encoded.frame_mask is None:
        return list(encoded.audio_codes)
    return [codes[:, : int(frames)] for codes, frames in zip(encoded.audio_codes, encoded.frame_mask.sum(-1))]
