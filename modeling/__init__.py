"""Model families. Importing this module registers them with the transformers Auto classes."""

from transformers import AutoConfig, AutoModel

from .msn_tokenizer import (
    MSNTokenizerConfig,
    MSNTokenizerModel,
    MSNTokenizerOutput,
    MSNTokenizerPreTrainedModel,
)

AutoConfig.register(MSNTokenizerConfig.model_type, MSNTokenizerConfig, exist_ok=True)
AutoModel.register(MSNTokenizerConfig, MSNTokenizerModel, exist_ok=True)

__all__ = ["MSNTokenizerConfig", "MSNTokenizerModel", "MSNTokenizerOutput", "MSNTokenizerPreTrainedModel"]
