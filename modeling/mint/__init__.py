"""The MINT family: a Q-Former ("Bridge-Net") between a frozen audio encoder and a frozen LLM, its stage-1 objectives
(ALC, ALM, ATG), stage-2 instruction tuning, vocabulary ranking and retrieval. Importing it registers `MintConfig`
and `MintQFormerConfig` with `AutoConfig`, `MintQFormerModel` with `AutoModel`, `MintForPreTraining` with
`AutoModelForPreTraining`, `MintForConditionalGeneration` with `AutoModelForSpeechSeq2Seq` (audio in, text out) and
`MintProcessor` with `AutoProcessor`."""

from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, AutoModelForSpeechSeq2Seq, AutoProcessor

from ...processing.processing_mint import MintProcessor, pad_audio_embeds
from .configuration_mint import MintConfig, MintQFormerConfig, audio_hidden_size
from .modeling_mint import (
    MASK_KINDS,
    MintForConditionalGeneration,
    MintForConditionalGenerationOutput,
    MintForPreTraining,
    MintForPreTrainingOutput,
    MintPreTrainedModel,
    MintQFormerLMHead,
    MintQFormerModel,
    MintQFormerOutput,
    MintQFormerPreTrainedModel,
    build_mint_for_pretraining,
    encode_audio,
    encode_audio_rows,
    load_bert_into_qformer,
    mint_attention_mask,
)

AutoConfig.register(MintConfig.model_type, MintConfig, exist_ok=True)
AutoConfig.register(MintQFormerConfig.model_type, MintQFormerConfig, exist_ok=True)
AutoModel.register(MintQFormerConfig, MintQFormerModel, exist_ok=True)
AutoModelForPreTraining.register(MintConfig, MintForPreTraining, exist_ok=True)
AutoModelForSpeechSeq2Seq.register(MintConfig, MintForConditionalGeneration, exist_ok=True)
AutoProcessor.register(MintConfig, MintProcessor, exist_ok=True)

__all__ = [
    "MASK_KINDS",
    "MintConfig",
    "MintForConditionalGeneration",
    "MintForConditionalGenerationOutput",
    "MintForPreTraining",
    "MintForPreTrainingOutput",
    "MintPreTrainedModel",
    "MintProcessor",
    "MintQFormerConfig",
    "MintQFormerLMHead",
    "MintQFormerModel",
    "MintQFormerOutput",
    "MintQFormerPreTrainedModel",
    "audio_hidden_size",
    "build_mint_for_pretraining",
    "encode_audio",
    "encode_audio_rows",
    "load_bert_into_qformer",
    "mint_attention_mask",
    "pad_audio_embeds",
]
