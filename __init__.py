"""soundlm: LM-MSN sound tokenizer and audio LLM, and MINT, on the Hugging Face stack.

Importing the package registers its configurations, models and feature extractors with the
transformers Auto classes, so ``AutoModel.from_pretrained(local_dir)`` works without remote code.
"""

from .modeling import MSNTokenizerConfig, MSNTokenizerModel, MSNTokenizerOutput  # noqa: F401
from .processing import MSNFeatureExtractor  # noqa: F401

__version__ = "0.1.0"

__all__ = ["MSNTokenizerConfig", "MSNTokenizerModel", "MSNTokenizerOutput", "MSNFeatureExtractor"]
