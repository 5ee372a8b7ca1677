"""The LM-MSN audio LLM family: a causal text LM extended with sound tokens (LoRA + new embedding rows), its loss
and its generation. Importing it registers `LMMSNConfig` with `AutoConfig` and `AudioTokenProcessor` with
`AutoProcessor`."""

from transformers import AutoConfig, AutoProcessor

from ...processing.processing_lm_msn import AudioTextOutput, AudioTokenProcessor
from .configuration_lm_msn import LMMSNConfig
from .generation_lm_msn import (
    AudioSpanLogitsProcessor,
    GeneratedAudio,
    codes_to_audio,
    generate_audio,
    generate_text,
    score_answers,
)
from .modeling_lm_msn import (
    LMMSNLossOutput,
    example_losses,
    init_code_rows_from_codebook,
    init_new_embedding_rows,
    lm_msn_card_fields,
    lm_msn_loss,
    load_audio_llm,
    merge_audio_llm,
    naive_lm_msn_loss,
    prepare_audio_llm,
)
from .pretrained import load_pretrained_smollm2

AutoConfig.register(LMMSNConfig.model_type, LMMSNConfig, exist_ok=True)
AutoProcessor.register(LMMSNConfig, AudioTokenProcessor, exist_ok=True)

__all__ = [
    "AudioSpanLogitsProcessor",
    "AudioTextOutput",
    "AudioTokenProcessor",
    "GeneratedAudio",
    "LMMSNConfig",
    "LMMSNLossOutput",
    "codes_to_audio",
    "example_losses",
    "generate_audio",
    "generate_text",
    "init_code_rows_from_codebook",
    "init_new_embedding_rows",
    "lm_msn_loss",
    "load_audio_llm",
    "load_pretrained_smollm2",
    "lm_msn_card_fields",
    "merge_audio_llm",
    "naive_lm_msn_loss",
    "prepare_audio_llm",
    "score_answers",
]
