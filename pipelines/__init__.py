"""transformers pipelines for the package's models, registered with `PIPELINE_REGISTRY` on `import soundlm`, so that
`transformers.pipeline(task, model=...)` builds them:

- `audio-tokenization` (MSN tokenizer): audio -> `{"audio_codes", "frame_rate"}`; `{"audio_codes"}` ->
  `{"audio", "sampling_rate"}`.
- `zero-shot-audio-classification` (MINT stage 1 or 2; CLAP still served by transformers' own code): audio +
  `candidate_labels` -> `[{"score", "label"}]`.
- `audio-text-to-text` (MINT stage 2): audio + optional `prompt` -> `[{"generated_text"}]`.

Every pipeline takes one clip or a list of clips (paths, arrays with `sampling_rate`, `{"array", "sampling_rate"}`
dicts or dataset rows), `batch_size`, `device` and `dtype`.
"""

from transformers import AutoModel, AutoModelForPreTraining, AutoModelForSpeechSeq2Seq
from transformers.pipelines import PIPELINE_REGISTRY

from .audio_text_to_text import AudioTextToTextPipeline
from .audio_tokenization import AudioTokenizationPipeline
from .zero_shot_audio_classification import MintZeroShotAudioClassificationPipeline


def register_pipelines() -> None:
    """Registers the package's pipelines (idempotent). `zero-shot-audio-classification` keeps transformers' entry
    (its default CLAP checkpoint, its type) and gains the MINT model classes ahead of `AutoModel`, so that a MINT
    folder loads as `MintForPreTraining` / `MintForConditionalGeneration` and a CLAP folder as before."""
    tasks = PIPELINE_REGISTRY.supported_tasks
    for task, pipeline_class, models in (
        ("audio-tokenization", AudioTokenizationPipeline, (AutoModel,)),
        ("audio-text-to-text", AudioTextToTextPipeline, (AutoModelForSpeechSeq2Seq,)),
    ):
        if tasks.get(task, {}).get("impl") is not pipeline_class:
            PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=models, type="audio")
    task = "zero-shot-audio-classification"
    entry = dict(tasks[task])
    entry["impl"] = MintZeroShotAudioClassificationPipeline
    entry["pt"] = (AutoModelForPreTraining, AutoModelForSpeechSeq2Seq,
                   *[cls for cls in entry["pt"] if cls not in (AutoModelForPreTraining, AutoModelForSpeechSeq2Seq)])
    tasks[task] = entry  # set in place: register_pipeline would warn on every import that it overwrites the task


register_pipelines()

__all__ = [
    "AudioTextToTextPipeline",
    "AudioTokenizationPipeline",
    "MintZeroShotAudioClassificationPipeline",
    "register_pipelines",
]
