"""transformers pipelines for the package's models, registered with `PIPELINE_REGISTRY` on `import soundlm`, so that
`transformers.pipeline(task, model=...)` builds them:

- `audio-tokenization` (MSN tokenizer): audio -> `{"audio_codes", "frame_rate"}`; `{"audio_codes"}` ->
  `{"audio", "sampling_rate"}`.
- `zero-shot-audio-classification` (MINT stage 1 or 2, or LM-MSN with `sound_tokenizer=`; CLAP still served by
  transformers' own code): audio + `candidate_labels` -> `[{"score", "label"}]`.
- `audio-text-to-text` (MINT stage 2, or LM-MSN with `sound_tokenizer=`): audio + optional `prompt` ->
  `[{"generated_text"}]`.
- `text-to-audio` (LM-MSN with `sound_tokenizer=`; other models still served by transformers' own code): text ->
  `{"audio", "sampling_rate"}`.

Every pipeline takes one clip or a list of clips (paths, arrays with `sampling_rate`, `{"array", "sampling_rate"}`
dicts or dataset rows), `batch_size`, `device` and `dtype`.
"""

from transformers import AutoModel, AutoModelForCausalLM, AutoModelForPreTraining, AutoModelForSpeechSeq2Seq
from transformers.pipelines import PIPELINE_REGISTRY

from .audio_text_to_text import AudioTextToTextPipeline
from .audio_tokenization import AudioTokenizationPipeline
from .lm_msn_zero_shot_audio_classification import LMMSNZeroShotAudioClassificationPipeline
from .text_to_audio import LMMSNTextToAudioPipeline
from .zero_shot_audio_classification import MintZeroShotAudioClassificationPipeline


def _extend_task(task: str, pipeline_class: type, first: tuple = (), last: tuple = ()) -> None:
    """Serve transformers' own `task` with `pipeline_class` (which hands other models back to transformers' code),
    keeping the entry's default checkpoint and type; `first` / `last` model classes are tried before / after the
    task's own when a folder is loaded. Set in place: `register_pipeline` would warn on every import."""
    tasks = PIPELINE_REGISTRY.supported_tasks
    entry = dict(tasks[task])
    own = tuple(cls for cls in entry["pt"] if cls not in first + last)
    entry.update(impl=pipeline_class, pt=(*first, *own, *last))
    tasks[task] = entry


def register_pipelines() -> None:
    """Registers the package's pipelines (idempotent). `zero-shot-audio-classification` tries the MINT classes ahead
    of `AutoModel`, so that a MINT folder loads as `MintForPreTraining` / `MintForConditionalGeneration`, a merged
    LM-MSN folder as its causal LM (`AutoModel` would drop the LM head) and a CLAP folder as before; `text-to-audio`
    tries `AutoModelForCausalLM` (a merged LM-MSN folder) after its own classes."""
    tasks = PIPELINE_REGISTRY.supported_tasks
    for task, pipeline_class, models in (
        ("audio-tokenization", AudioTokenizationPipeline, (AutoModel,)),
        ("audio-text-to-text", AudioTextToTextPipeline, (AutoModelForSpeechSeq2Seq, AutoModelForCausalLM)),
    ):
        if tasks.get(task, {}).get("impl") is not pipeline_class:
            PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=models, type="audio")
    _extend_task("zero-shot-audio-classification", LMMSNZeroShotAudioClassificationPipeline,
                 first=(AutoModelForPreTraining, AutoModelForSpeechSeq2Seq, AutoModelForCausalLM))
    _extend_task("text-to-audio", LMMSNTextToAudioPipeline, last=(AutoModelForCausalLM,))


def remote_pipelines(model, processor=None) -> dict[str, tuple[type, tuple[str, ...]]]:
    """The pipelines an exported folder of ``model`` (with its ``processor``) carries as `custom_pipelines` (for
    `export_for_hub`), so that `pipeline(task, model=folder, trust_remote_code=True)` runs where soundlm is not
    installed. Their task names carry a `soundlm-` prefix: a folder's `custom_pipelines` task would otherwise shadow
    the task soundlm registers and demand `trust_remote_code` where the package is imported.

    - MSN tokenizer: `soundlm-audio-tokenization`;
    - MINT stage 1: `soundlm-zero-shot-audio-classification`; stage 2 adds `soundlm-audio-text-to-text` (the
      MINT-only class, whose code holds no LM-MSN module);
    - a merged LM-MSN causal LM (recognised by its `AudioTokenProcessor`): `soundlm-audio-text-to-text`,
      `soundlm-text-to-audio` and `soundlm-zero-shot-audio-classification`; they read the folder's
      `sound_tokenizer/` (`soundlm export` writes it)."""
    from ..modeling.mint.modeling_mint import MintForConditionalGeneration, MintForPreTraining
    from ..modeling.msn_tokenizer.modeling_msn_tokenizer import MSNTokenizerModel
    from .lm_msn_support import is_lm_msn
    from .mint_audio_text_to_text import MintAudioTextToTextPipeline

    if isinstance(model, MSNTokenizerModel):
        return {"soundlm-audio-tokenization": (AudioTokenizationPipeline, ("AutoModel",))}
    if isinstance(model, MintForPreTraining):
        return {"soundlm-zero-shot-audio-classification": (MintZeroShotAudioClassificationPipeline,
                                                           (model.hub_auto_class,))}
    if isinstance(model, MintForConditionalGeneration):
        return {"soundlm-zero-shot-audio-classification": (MintZeroShotAudioClassificationPipeline,
                                                           (model.hub_auto_class,)),
                "soundlm-audio-text-to-text": (MintAudioTextToTextPipeline, (model.hub_auto_class,))}
    if processor is not None and is_lm_msn(processor):
        return {"soundlm-audio-text-to-text": (AudioTextToTextPipeline, ("AutoModelForCausalLM",)),
                "soundlm-text-to-audio": (LMMSNTextToAudioPipeline, ("AutoModelForCausalLM",)),
                "soundlm-zero-shot-audio-classification": (LMMSNZeroShotAudioClassificationPipeline,
                                                           ("AutoModelForCausalLM",))}
    return {}


register_pipelines()

__all__ = [
    "AudioTextToTextPipeline",
    "AudioTokenizationPipeline",
    "LMMSNTextToAudioPipeline",
    "LMMSNZeroShotAudioClassificationPipeline",
    "MintZeroShotAudioClassificationPipeline",
    "register_pipelines",
    "remote_pipelines",
]
