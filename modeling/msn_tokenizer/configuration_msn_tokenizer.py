"""Configuration of the LM-MSN sound tokenizer ("Make Some Noise", Sections III and IV-A)."""

from __future__ import annotations

import math
from typing import Any

from transformers import PretrainedConfig

FRONTEND_TYPES = ("oobleck", "mel")
DECODER_OBJECTIVES = ("flow_matching", "mse")


def default_mel_frontend_config() -> dict[str, Any]:
    """Weight-free log-mel front end whose frame rate matches the Oobleck VAE (21.53 frames/s).

    22.05 kHz mono, STFT hop 256 samples, 4 STFT frames stacked per latent frame -> 1024 samples
    (46.4 ms) per latent frame, as 2048 samples are at 44.1 kHz. Latent dim = 4 x 80 mels = 320.
    """
    return {
        "sampling_rate": 22050,
        "audio_channels": 1,
        "n_fft": 1024,
        "stft_hop_length": 256,
        "frames_per_latent": 4,
        "num_mel_bins": 80,
        "f_min": 0.0,
        "f_max": None,
        "log_floor": 1e-5,
        "griffin_lim_iters": 32,
    }


def default_oobleck_frontend_config() -> dict[str, Any]:
    """`diffusers.AutoencoderOobleck` arguments of Stable Audio Open's VAE (hop 2048, 64 latent channels)."""
    return {
        "encoder_hidden_size": 128,
        "downsampling_ratios": [2, 4, 4, 8, 8],
        "channel_multiples": [1, 2, 4, 8, 16],
        "decoder_channels": 128,
        "decoder_input_channels": 64,
        "audio_channels": 2,
        "sampling_rate": 44100,
    }


def check_guidance_interval(interval) -> tuple[float, float]:
    """`interval` as a (lo, hi) pair of floats with 0 <= lo < hi <= 1, or a ValueError saying what it got."""
    try:
        lo, hi = (float(value) for value in interval)
    except (TypeError, ValueError):
        raise ValueError(f"guidance_interval must be a pair (lo, hi) of times in [0, 1], got {interval!r}") from None
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"guidance_interval must satisfy 0 <= lo < hi <= 1, got {interval!r}")
    return lo, hi


class MSNTokenizerConfig(PretrainedConfig):
    r"""Configuration of [`MSNTokenizerModel`]: frozen front end -> causal transformer encoder -> VQ ->
    DiT decoder trained with OT-CFM (or with plain MSE, the paper's "VQ + MSE" baseline).

    The defaults are the paper's configuration (Stable Audio Open VAE, 12 + 12 blocks of width 768,
    head dim 64, codebook 8196 x 64). For CPU work use ``frontend_type="mel"`` and small sizes.
    ``num_hidden_layers`` is another name for ``encoder_layers`` (transformers' standard name, as BART maps it);
    ``num_attention_heads`` is ``hidden_size // head_dim``. ``attn_implementation`` (``"sdpa"`` or ``"eager"``) is
    the usual transformers argument. ``num_frames(samples)`` is the package's one frame-count rule.

    Args:
        frontend_type (`str`, *optional*, defaults to `"oobleck"`):
            `"oobleck"` (diffusers `AutoencoderOobleck`, frozen) or `"mel"` (weight-free log-mel frames
            with Griffin-Lim inversion).
        frontend_config (`dict`, *optional*):
            Arguments of the front end. Defaults to [`default_oobleck_frontend_config`] or
            [`default_mel_frontend_config`] by `frontend_type`.
        hidden_size (`int`, *optional*, defaults to 768): width of encoder and decoder blocks.
        encoder_layers (`int`, *optional*, defaults to 12): causal transformer blocks in the encoder.
        decoder_layers (`int`, *optional*, defaults to 12): non-causal DiT blocks in the decoder.
        head_dim (`int`, *optional*, defaults to 64): attention head size; heads = hidden_size / head_dim.
        intermediate_size (`int`, *optional*, defaults to 3072): MLP width of every block.
        codebook_size (`int`, *optional*, defaults to 8196): number of VQ codes (the paper's value).
        codebook_dim (`int`, *optional*, defaults to 64): dimension of each code vector.
        commitment_weight (`float`, *optional*, defaults to 0.25): weight of ||z_e - sg(q)||^2.
        codebook_decay (`float`, *optional*, defaults to 0.99): EMA decay of the codebook statistics.
        codebook_epsilon (`float`, *optional*, defaults to 1e-5): Laplace smoothing of EMA cluster sizes.
        dead_code_threshold (`float`, *optional*, defaults to 1.0): codes whose EMA cluster size falls
            below this many assignments are restarted from random encoder outputs of the batch.
        timestep_embedding_dim (`int`, *optional*, defaults to 256): sinusoidal timestep features.
        decoder_objective (`str`, *optional*, defaults to `"flow_matching"`): `"flow_matching"` (OT-CFM)
            or `"mse"` (same network, timestep and noisy input held at 0, regression of z).
        sigma_min (`float`, *optional*, defaults to 1e-4): OT-CFM's sigma_min (Lipman et al.).
        flow_prediction (`str`, *optional*, defaults to `"velocity"`): what the DiT outputs under flow matching:
            `"velocity"` (u_t), `"data"` (an x1 estimate, turned into the velocity for the ODE) or
            `"preconditioned"` (a unit-variance residual beside a skip connection from x_t); see
            [`OTConditionalFlowMatching`].
        flow_time_sampling (`str`, *optional*, defaults to `"uniform"`): the law of the training times t:
            `"uniform"` or `"logit_normal"`.
        condition_dropout (`float`, *optional*, defaults to 0.0): probability that a training clip's code
            condition is replaced by zeros under flow matching, so the DiT also learns the unconditional field that
            classifier-free guidance needs.
        guidance_scale (`float`, *optional*, defaults to 1.0): the classifier-free guidance scale `decode` uses
            when none is passed (1 = no guidance; > 1 needs `condition_dropout > 0` in training).
        guidance_interval (`tuple[float, float]`, *optional*, defaults to `(0.0, 1.0)`): `decode` applies the
            guidance only on the ODE steps that start at lo <= t < hi, the conditional field alone on the others;
            (0, 1) guides every step. The demo's measurements (README, third round) show that leaving out the
            last step cuts the clipping of guided decoding.
        flow_start_time (`float`, *optional*, defaults to 0.0): the time in [0, 1) at which `decode` starts the
            ODE when none is passed: 0 starts from noise; t0 > 0 starts from the decoder's own conditional-mean
            estimate mixed with noise as on the path at t0 (see [`OTConditionalFlowMatching.sample`]).
        rope_theta (`float`, *optional*, defaults to 10000.0): rotary position embedding base.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6)
        dropout (`float`, *optional*, defaults to 0.0): dropout on attention and MLP outputs.
        initializer_range (`float`, *optional*, defaults to 0.02): std of the normal weight init.
        clip_seconds (`float`, *optional*, defaults to 10.0): training clip length in seconds.
    """

    model_type = "msn_tokenizer"
    # The standard names that mean something here (as BART maps them): the layer count of the model's
    # encoder, which makes the codes. `decoder_layers` keeps its own name.
    attribute_map = {"num_hidden_layers": "encoder_layers"}

    def __init__(
        self,
        frontend_type: str = "oobleck",
        frontend_config: dict[str, Any] | None = None,
        hidden_size: int = 768,
        encoder_layers: int = 12,
        decoder_layers: int = 12,
        head_dim: int = 64,
        intermediate_size: int = 3072,
        codebook_size: int = 8196,
        codebook_dim: int = 64,
        commitment_weight: float = 0.25,
        codebook_decay: float = 0.99,
        codebook_epsilon: float = 1e-5,
        dead_code_threshold: float = 1.0,
        timestep_embedding_dim: int = 256,
        decoder_objective: str = "flow_matching",
        sigma_min: float = 1e-4,
        flow_prediction: str = "velocity",
        flow_time_sampling: str = "uniform",
        condition_dropout: float = 0.0,
        guidance_scale: float = 1.0,
        flow_start_time: float = 0.0,
        guidance_interval: tuple[float, float] | list[float] = (0.0, 1.0),
        rope_theta: float = 10000.0,
        layer_norm_eps: float = 1e-6,
        dropout: float = 0.0,
        initializer_range: float = 0.02,
        clip_seconds: float = 10.0,
        **kwargs,
    ):
        if frontend_type not in FRONTEND_TYPES:
            raise ValueError(f"frontend_type must be one of {FRONTEND_TYPES}, got {frontend_type!r}")
        if decoder_objective not in DECODER_OBJECTIVES:
            raise ValueError(f"decoder_objective must be one of {DECODER_OBJECTIVES}, got {decoder_objective!r}")
        if hidden_size % head_dim != 0:
            raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of head_dim ({head_dim})")
        if head_dim % 2 != 0:
            raise ValueError(f"head_dim must be even for rotary embeddings, got {head_dim}")
        if codebook_size < 2:
            raise ValueError(f"codebook_size must be at least 2, got {codebook_size}")
        if timestep_embedding_dim % 2 != 0:
            raise ValueError(f"timestep_embedding_dim must be even, got {timestep_embedding_dim}")
        if not 0.0 <= sigma_min < 1.0:
            raise ValueError(f"sigma_min must be in [0, 1), got {sigma_min}")
        if flow_prediction not in ("velocity", "data", "preconditioned"):
            raise ValueError(f"flow_prediction must be 'velocity', 'data' or 'preconditioned', got {flow_prediction!r}")
        if flow_time_sampling not in ("uniform", "logit_normal"):
            raise ValueError(f"flow_time_sampling must be 'uniform' or 'logit_normal', got {flow_time_sampling!r}")
        if not 0.0 <= condition_dropout < 1.0:
            raise ValueError(f"condition_dropout must be in [0, 1), got {condition_dropout}")
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")
        if not 0.0 <= flow_start_time < 1.0:
            raise ValueError(f"flow_start_time must be in [0, 1), got {flow_start_time}")
        if clip_seconds <= 0:
            raise ValueError(f"clip_seconds must be positive, got {clip_seconds}")
        if frontend_config is None:
            frontend_config = (
                default_oobleck_frontend_config() if frontend_type == "oobleck" else default_mel_frontend_config()
            )
        elif frontend_type == "mel":
            frontend_config = {**default_mel_frontend_config(), **frontend_config}
        self.frontend_type = frontend_type
        self.frontend_config = dict(frontend_config)
        self.hidden_size = hidden_size
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.head_dim = head_dim
        self.intermediate_size = intermediate_size
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.commitment_weight = commitment_weight
        self.codebook_decay = codebook_decay
        self.codebook_epsilon = codebook_epsilon
        self.dead_code_threshold = dead_code_threshold
        self.timestep_embedding_dim = timestep_embedding_dim
        self.decoder_objective = decoder_objective
        self.sigma_min = sigma_min
        self.flow_prediction = flow_prediction
        self.flow_time_sampling = flow_time_sampling
        self.condition_dropout = condition_dropout
        self.guidance_scale = guidance_scale
        self.flow_start_time = flow_start_time
        self.guidance_interval = list(check_guidance_interval(guidance_interval))
        self.rope_theta = rope_theta
        self.layer_norm_eps = layer_norm_eps
        self.dropout = dropout
        self.initializer_range = initializer_range
        self.clip_seconds = clip_seconds
        super().__init__(**kwargs)

    @property
    def num_attention_heads(self) -> int:
        return self.hidden_size // self.head_dim

    @property
    def sampling_rate(self) -> int:
        return int(self.frontend_config["sampling_rate"])

    @property
    def audio_channels(self) -> int:
        return int(self.frontend_config["audio_channels"])

    @property
    def hop_length(self) -> int:
        """Audio samples per latent frame (= per token)."""
        if self.frontend_type == "oobleck":
            return math.prod(self.frontend_config["downsampling_ratios"])
        return int(self.frontend_config["stft_hop_length"]) * int(self.frontend_config["frames_per_latent"])

    @property
    def latent_dim(self) -> int:
        """Channels of one latent frame of the front end."""
        if self.frontend_type == "oobleck":
            return int(self.frontend_config["decoder_input_channels"])
        return int(self.frontend_config["num_mel_bins"]) * int(self.frontend_config["frames_per_latent"])

    @property
    def frame_rate(self) -> float:
        """Latent frames (= tokens) per second of audio, in Hz."""
        return self.sampling_rate / self.hop_length

    @property
    def bitrate(self) -> float:
        """Bits per second of audio: frame_rate x log2(codebook_size)."""
        return self.frame_rate * math.log2(self.codebook_size)

    @property
    def window_frames(self) -> int:
        """Frames of one window: the training clip (`clip_seconds`) by the frame rule. Audio or codes longer than
        this are encoded and decoded window by window (each with a fresh context), so memory stays bounded."""
        return int(self.num_frames(round(self.clip_seconds * self.sampling_rate)))

    def num_frames(self, num_samples: int | Any) -> int | Any:
        """Tokens for a clip of ``num_samples`` samples: ``ceil(num_samples / hop_length)``.

        The one frame-count rule of the package (the model, its feature extractor's callers, the CLI and
        pre-tokenisation all use it): a partial last frame is kept, zero-padded, so no audio is dropped and
        ``decode`` can return exactly as many samples as went in. 10 s at 44.1 kHz (441000 samples) give 216
        tokens; the paper's "215 x 64" is the VAE's own floor, which drops the last 680 samples. Works on
        Python ints and on integer tensors alike.
        """
        if isinstance(num_samples, bool) or not hasattr(num_samples, "__floordiv__"):
            raise TypeError(f"num_samples must be an integer or an integer tensor, got {num_samples!r}")
        if isinstance(num_samples, int) and num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        return -(-num_samples // self.hop_length)
