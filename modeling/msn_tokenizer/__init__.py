from .configuration_msn_tokenizer import MSNTokenizerConfig
from .flow_matching import OTConditionalFlowMatching, make_scheduler
from .frontends import MelFrontend, OobleckFrontend, build_frontend
from .modeling_msn_tokenizer import MSNTokenizerModel, MSNTokenizerOutput, MSNTokenizerPreTrainedModel
from .quantization import QuantizerOutput, VectorQuantizer, code_statistics

__all__ = [
    "MSNTokenizerConfig",
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
