"""The LM-MSN sound tokenizer family. Importing it registers its classes with the transformers Auto classes."""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from ...processing.feature_extraction_msn import MSNFeatureExtractor
from .configuration_msn_tokenizer import MSNTokenizerConfig
from .flow_matching import OTConditionalFlowMatching, make_scheduler
from .frontends import MelFrontend, OobleckFrontend, build_frontend
from .modeling_msn_tokenizer import (
    MSNTokenizerDecoderOutput,
    MSNTokenizerEncoderOutput,
    MSNTokenizerModel,
    MSNTokenizerOutput,
    MSNTokenizerPreTrainedModel,
)
from .quantization import QuantizerOutput, VectorQuantizer, code_statistics

AutoConfig.register(MSNTokenizerConfig.model_type, MSNTokenizerConfig, exist_ok=True)
AutoModel.register(MSNTokenizerConfig, MSNTokenizerModel, exist_ok=True)
AutoFeatureExtractor.register(MSNTokenizerConfig, MSNFeatureExtractor, exist_ok=True)

__all__ = [
    "MSNFeatureExtractor",
    "MSNTokenizerConfig",
    "MSNTokenizerDecoderOutput",
    "MSNTokenizerEncoderOutput",
    "MSNTokenizerModel",
    "MSNTokenizerOutput",
    "MSNTokenizerPreTrainedModel",
    "MelFrontend",
    "OobleckFrontend",
    "OTConditionalFlowMatching",
    "QuantizerOutput",
    "VectorQuantizer",
    "build_frontend",
    "code_statistics",
    "make_scheduler",
]
