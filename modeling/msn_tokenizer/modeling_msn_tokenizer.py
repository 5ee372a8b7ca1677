"""LM-MSN sound tokenizer: frozen front end -> causal transformer encoder -> VQ -> DiT flow-matching decoder.

Paper: "Make Some Noise: Towards LLM audio reasoning and generation using sound tokens" (Mehta, Jojic,
Gamper), Sections III and IV-A. One token per latent frame of the front end; with the Stable Audio Open
VAE that is 44100 / 2048 = 21.53 tokens per second.

Data flow (shapes for a batch of B clips of T samples, F = ceil(T / hop_length) frames, see `num_frames`):

    audio (B, C, T) --pad to F * hop, front end--> z (B, F, latent_dim) --normalise--> z_n
    z_n --causal encoder--> z_e (B, F, codebook_dim) --VQ--> codes (B, F), q (B, F, codebook_dim)
    (x_t, t, q) --DiT--> velocity (B, F, latent_dim)        [flow matching]
    (0,   0, q) --DiT--> z_n estimate                       [MSE baseline]

The public codes carry a codebook axis, as transformers' EnCodec, DAC and Mimi codes do: `audio_codes` of
shape (B, num_codebooks = 1, F), so code that uses a tokenizer can swap another one in without special cases.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .configuration_msn_tokenizer import MSNTokenizerConfig
from .flow_matching import OTConditionalFlowMatching, masked_mse
from .frontends import MelFrontend, OobleckFrontend, build_frontend
from .quantization import VectorQuantizer


@dataclass
class MSNTokenizerOutput(ModelOutput):
    """Training output of [`MSNTokenizerModel.forward`].

    Args:
        loss (`torch.FloatTensor` of shape `()`): reconstruction_loss + commitment_weight * commitment_loss.
        reconstruction_loss (`torch.FloatTensor` of shape `()`): flow-matching velocity MSE, or latent MSE in
            the `"mse"` objective, in normalised latent units.
        commitment_loss (`torch.FloatTensor` of shape `()`): ||z_e - sg(q)||^2 per dimension.
        audio_codes (`torch.LongTensor` of shape `(batch_size, 1, num_frames)`): token of each latent frame.
        frame_mask (`torch.BoolTensor` of shape `(batch_size, num_frames)`): frames that hold real audio.
        codebook_perplexity (`torch.FloatTensor` of shape `()`): exp(entropy) of the batch's code histogram.
        codebook_usage (`torch.FloatTensor` of shape `()`): fraction of codes used in the batch.
        num_restarted_codes (`int`): dead codes restarted in this step.
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    audio_codes: torch.LongTensor | None = None
    frame_mask: torch.BoolTensor | None = None
    codebook_perplexity: torch.FloatTensor | None = None
    codebook_usage: torch.FloatTensor | None = None
    num_restarted_codes: int | None = None


@dataclass
class MSNTokenizerEncoderOutput(ModelOutput):
    """Output of [`MSNTokenizerModel.encode`].

    Args:
        audio_codes (`torch.LongTensor` of shape `(batch_size, 1, num_frames)`): one token per latent frame
            (one codebook), `num_frames = ceil(samples / hop_length)`.
        frame_mask (`torch.BoolTensor` of shape `(batch_size, num_frames)`, *optional*): frames that hold real
            audio, from `padding_mask` (None when no `padding_mask` was given: every frame is real).
    """

    audio_codes: torch.LongTensor | None = None
    frame_mask: torch.BoolTensor | None = None


@dataclass
class MSNTokenizerDecoderOutput(ModelOutput):
    """Output of [`MSNTokenizerModel.decode`].

    Args:
        audio_values (`torch.FloatTensor` of shape `(batch_size, audio_channels, samples)`): audio at
            `sample_rate`; `samples = num_frames * hop_length`, or the length of `padding_mask` when one is given
            (samples past each clip's length are zero).
    """

    audio_values: torch.FloatTensor | None = None


def is_tracing() -> bool:
    """Whether torch.compile, torch.export or torch.jit is tracing: data-dependent checks are skipped then."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()


def rotary_cos_sin(num_frames: int, head_dim: int, theta: float, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (num_frames, head_dim) for rotary position embeddings (half-split layout)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    angles = torch.arange(num_frames, device=device, dtype=torch.float32)[:, None] * inv_freq[None]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (batch, heads, frames, head_dim) rotated by position."""
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of t (batch,) in [0, 1], scaled by 1000 as in DiT -> (batch, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T * scaling + mask) V, written out. query/key/value (batch, heads, frames, head_dim),
    attention_mask additive (batch, 1, frames or 1, frames) -> (batch, frames, heads, head_dim), weights."""
    weights = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class MSNAttention(nn.Module):
    """Multi-head self-attention with rotary positions, through the attention function the config names
    (`attn_implementation`: `"sdpa"` by default, `"eager"`; they give the same outputs)."""

    def __init__(self, config: MSNTokenizerConfig, is_causal: bool):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.scaling = config.head_dim**-0.5
        self.is_causal = is_causal
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = config.dropout

    def forward(
        self,
        hidden_states: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        batch, frames, _ = hidden_states.shape
        qkv = self.qkv(hidden_states).view(batch, frames, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        query, key, value = qkv.unbind(0)
        query, key = apply_rotary(query, *rotary), apply_rotary(key, *rotary)
        attention = eager_attention_forward
        if self.config._attn_implementation != "eager":
            attention = ALL_ATTENTION_FUNCTIONS[self.config._attn_implementation]
        attended, _ = attention(
            self, query, key, value, attention_mask, dropout=self.dropout if self.training else 0.0,
            scaling=self.scaling, is_causal=self.is_causal and attention_mask is None,
        )
        return self.out_proj(attended.reshape(batch, frames, -1))


class MSNMLP(nn.Module):
    def __init__(self, config: MSNTokenizerConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(F.gelu(self.fc1(hidden_states), approximate="tanh")))


class MSNEncoderLayer(GradientCheckpointingLayer):
    """Pre-norm causal transformer block."""

    def __init__(self, config: MSNTokenizerConfig):
        super().__init__()
        self.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn = MSNAttention(config, is_causal=True)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MSNMLP(config)

    def forward(
        self, hidden_states: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor], causal_mask: torch.Tensor | None
    ) -> torch.Tensor:
        hidden_states = hidden_states + self.attn(self.attn_norm(hidden_states), rotary, causal_mask)
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))


class MSNDiTLayer(GradientCheckpointingLayer):
    """Non-causal DiT block with adaLN-Zero modulation from the timestep embedding (Peebles & Xie 2023)."""

    def __init__(self, config: MSNTokenizerConfig):
        super().__init__()
        self.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.attn = MSNAttention(config, is_causal=False)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.mlp = MSNMLP(config)
        self.modulation = nn.Linear(config.hidden_size, 6 * config.hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        conditioning: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        modulation = self.modulation(F.silu(conditioning))[:, None]  # (batch, 1, 6 * hidden)
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = modulation.chunk(6, dim=-1)
        normed = self.attn_norm(hidden_states) * (1 + scale_a) + shift_a
        hidden_states = hidden_states + gate_a * self.attn(normed, rotary, attention_mask)
        normed = self.mlp_norm(hidden_states) * (1 + scale_m) + shift_m
        return hidden_states + gate_m * self.mlp(normed)


class MSNCausalEncoder(nn.Module):
    """Normalised latents (batch, frames, latent_dim) -> pre-quantisation vectors (batch, frames, codebook_dim).

    Causal: the output at frame k depends on frames <= k only, so right padding never changes real frames.
    """

    def __init__(self, config: MSNTokenizerConfig):
        super().__init__()
        self.config = config
        self.input_proj = nn.Linear(config.latent_dim, config.hidden_size)
        self.layers = nn.ModuleList(MSNEncoderLayer(config) for _ in range(config.encoder_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.output_proj = nn.Linear(config.hidden_size, config.codebook_dim)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        hidden_states = self.input_proj(latents)
        frames = latents.shape[1]
        rotary = rotary_cos_sin(
            frames, self.config.head_dim, self.config.rope_theta, latents.device, hidden_states.dtype
        )
        causal_mask = None  # SDPA and the other kernels take is_causal; the eager path needs the mask written out
        if self.config._attn_implementation == "eager":
            future = torch.ones(frames, frames, dtype=torch.bool, device=latents.device).triu(1)
            causal_mask = torch.zeros(frames, frames, dtype=hidden_states.dtype, device=latents.device)
            causal_mask = causal_mask.masked_fill(future, torch.finfo(hidden_states.dtype).min)[None, None]
        for layer in self.layers:
            hidden_states = layer(hidden_states, rotary, causal_mask)
        return self.output_proj(self.norm(hidden_states))


class MSNDiTDecoder(nn.Module):
    """Velocity estimator v(x_t, t, q): (batch, frames, latent_dim), (batch,), (batch, frames, codebook_dim)
    -> (batch, frames, latent_dim). Non-causal; ``mask`` (batch, frames) hides padded frames from attention.
    """

    def __init__(self, config: MSNTokenizerConfig):
        super().__init__()
        self.config = config
        self.input_proj = nn.Linear(config.latent_dim + config.codebook_dim, config.hidden_size)
        self.time_mlp = nn.Sequential(
            nn.Linear(config.timestep_embedding_dim, config.hidden_size),
            nn.SiLU(),
            nn.Linear(config.hidden_size, config.hidden_size),
        )
        self.layers = nn.ModuleList(MSNDiTLayer(config) for _ in range(config.decoder_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.final_modulation = nn.Linear(config.hidden_size, 2 * config.hidden_size)
        self.output_proj = nn.Linear(config.hidden_size, config.latent_dim)

    def forward(
        self, sample: torch.Tensor, t: torch.Tensor, condition: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        hidden_states = self.input_proj(torch.cat([sample, condition], dim=-1))
        conditioning = self.time_mlp(timestep_embedding(t, self.config.timestep_embedding_dim).to(hidden_states.dtype))
        rotary = rotary_cos_sin(
            sample.shape[1], self.config.head_dim, self.config.rope_theta, sample.device, hidden_states.dtype
        )
        attention_mask = None
        if mask is not None:
            # a clip with no valid frame would attend to nothing (NaN); let it attend everywhere instead
            keys = mask.bool() | ~mask.bool().any(dim=1, keepdim=True)
            attention_mask = torch.zeros(keys.shape, dtype=hidden_states.dtype, device=keys.device)
            attention_mask = attention_mask.masked_fill(~keys, torch.finfo(hidden_states.dtype).min)[:, None, None]
        for layer in self.layers:
            hidden_states = layer(hidden_states, conditioning, rotary, attention_mask)
        shift, scale = self.final_modulation(F.silu(conditioning))[:, None].chunk(2, dim=-1)
        return self.output_proj(self.final_norm(hidden_states) * (1 + scale) + shift)


class MSNTokenizerPreTrainedModel(PreTrainedModel):
    config_class = MSNTokenizerConfig
    base_model_prefix = "msn_tokenizer"
    main_input_name = "input_values"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["MSNEncoderLayer", "MSNDiTLayer"]
    # EMA statistics accumulate many small updates: they stay float32 whatever dtype the model is loaded in
    _keep_in_fp32_modules = ["quantizer"]

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, MelFrontend):
            module.reset_buffers()  # fixed transforms, computed from the config (non-persistent buffers)
            return
        if isinstance(module, OobleckFrontend):
            return
        super()._init_weights(module)
        if isinstance(module, MSNDiTLayer):
            # adaLN-Zero: every block starts as the identity
            init.zeros_(module.modulation.weight)
            init.zeros_(module.modulation.bias)
        elif isinstance(module, MSNDiTDecoder):
            init.zeros_(module.final_modulation.weight)
            init.zeros_(module.final_modulation.bias)
            init.zeros_(module.output_proj.weight)
            init.zeros_(module.output_proj.bias)
        elif isinstance(module, VectorQuantizer):
            init.normal_(module.codebook, mean=0.0, std=1.0)
            init.zeros_(module.ema_cluster_size)
            init.zeros_(module.ema_embed_sum)
        elif isinstance(module, MSNTokenizerModel):
            init.zeros_(module.latent_mean)
            init.ones_(module.latent_std)


def _comparable_config(config: dict[str, Any]) -> dict[str, Any]:
    """A config as JSON keeps it (integer keys become strings), without what differs between two saves of the same
    model (private keys, versions)."""
    kept = {key: value for key, value in config.items()
            if not key.startswith("_") and key not in ("transformers_version", "architectures", "dtype")}
    return json.loads(json.dumps(kept, sort_keys=True, default=str))


class MSNTokenizerModel(MSNTokenizerPreTrainedModel):
    """The LM-MSN sound tokenizer, codec-shaped like transformers' `EncodecModel`, `DacModel` and `MimiModel`.

    ``encode(input_values, padding_mask)`` -> `audio_codes` of shape (batch, 1, frames);
    ``decode(audio_codes, padding_mask)`` -> `audio_values` of shape (batch, channels, samples); ``forward`` gives
    the training losses. The audiocraft compression-model properties are there too: ``sample_rate``,
    ``frame_rate``, ``codebook_size`` (= ``cardinality``), ``num_codebooks`` (1), ``bitrate``, plus
    ``num_frames`` (the frame-count rule) and ``encode_latents`` / ``decode_latents`` to skip the front end.

    Example:

    ```python
    >>> import torch
    >>> from soundlm import MSNTokenizerConfig, MSNTokenizerModel
    >>> config = MSNTokenizerConfig(frontend_type="mel", hidden_size=64, encoder_layers=2, decoder_layers=2,
    ...                             intermediate_size=128, codebook_size=256, codebook_dim=16)
    >>> model = MSNTokenizerModel(config).eval()
    >>> audio = torch.randn(2, 1, 22050)  # (batch, channels, samples): 1 s at 22.05 kHz
    >>> codes = model.encode(audio).audio_codes  # (2, 1, 22): ceil(22050 / 1024) tokens per clip
    >>> model.decode(codes, num_steps=4).audio_values.shape
    torch.Size([2, 1, 22528])
    ```
    """

    def __init__(self, config: MSNTokenizerConfig, frontend: nn.Module | None = None):
        super().__init__(config)
        if frontend is None:
            frontend = build_frontend(config.frontend_type, config.frontend_config)
        self.frontend = frontend
        if not isinstance(frontend, MelFrontend):
            for module in self.frontend.modules():
                module._is_hf_initialized = True  # frozen pretrained weights: never re-initialised by post_init
        self.frontend.requires_grad_(False)
        if (self.frontend.hop_length, self.frontend.latent_dim) != (config.hop_length, config.latent_dim):
            raise ValueError(
                f"frontend has hop_length={self.frontend.hop_length}, latent_dim={self.frontend.latent_dim} "
                f"but the config expects hop_length={config.hop_length}, latent_dim={config.latent_dim}"
            )
        self.encoder = MSNCausalEncoder(config)
        self.quantizer = VectorQuantizer(
            config.codebook_size,
            config.codebook_dim,
            decay=config.codebook_decay,
            epsilon=config.codebook_epsilon,
            dead_code_threshold=config.dead_code_threshold,
        )
        self.decoder = MSNDiTDecoder(config)
        self.flow_matching = OTConditionalFlowMatching(
            config.sigma_min, prediction=config.flow_prediction, time_sampling=config.flow_time_sampling
        )
        # per-channel statistics of the front end's latents (set from training data with set_latent_statistics)
        self.register_buffer("latent_mean", torch.zeros(config.latent_dim))
        self.register_buffer("latent_std", torch.ones(config.latent_dim))
        self.post_init()

    @classmethod
    def from_frontend_pretrained(
        cls, pretrained_model_name_or_path: str, subfolder: str | None = "vae", **config_kwargs: Any
    ) -> MSNTokenizerModel:
        """A new (untrained) tokenizer on a pretrained Oobleck VAE, e.g. ``"stabilityai/stable-audio-open-1.0"``."""
        frontend = OobleckFrontend.from_pretrained(pretrained_model_name_or_path, subfolder=subfolder)
        frontend_config = {k: v for k, v in dict(frontend.vae.config).items() if not k.startswith("_")}
        config = MSNTokenizerConfig(frontend_type="oobleck", frontend_config=frontend_config, **config_kwargs)
        return cls(config, frontend=frontend)

    # ----- the compression-model contract -------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sampling_rate

    @property
    def channels(self) -> int:
        return self.config.audio_channels

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def cardinality(self) -> int:
        return self.config.codebook_size

    @property
    def num_codebooks(self) -> int:
        return 1

    @property
    def bitrate(self) -> float:
        """Bits per second: frame_rate x log2(codebook_size)."""
        return self.config.bitrate

    def num_frames(self, num_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Tokens for a clip of ``num_samples`` samples: ``ceil(num_samples / hop_length)``; see
        [`MSNTokenizerConfig.num_frames`], the one frame-count rule that every caller uses."""
        return self.config.num_frames(num_samples)

    # ----- hub card ----------------------------------------------------------------------------------
    hub_card_template = "msn_tokenizer.md"

    def hub_card_fields(self) -> dict[str, str]:
        """The values `export_for_hub` fills into `hub_cards/msn_tokenizer.md`."""
        config = self.config
        trainable = sum(p.numel() for name, p in self.named_parameters() if not name.startswith("frontend."))
        return {
            "frontend_type": config.frontend_type,
            "sample_rate": str(config.sampling_rate),
            "audio_channels": str(config.audio_channels),
            "hop_length": str(config.hop_length),
            "frame_rate": f"{config.frame_rate:.2f}",
            "codebook_size": str(config.codebook_size),
            "bitrate": f"{config.bitrate:.0f}",
            "decoder_objective": config.decoder_objective,
            "hidden_size": str(config.hidden_size),
            "encoder_layers": str(config.encoder_layers),
            "decoder_layers": str(config.decoder_layers),
            "trainable_parameters": f"{trainable / 1e6:.1f} M",
        }

    def hub_model_index(self, report: dict[str, Any], dataset: dict[str, str], row: str | None = None
                        ) -> list[dict[str, Any]]:
        """`model-index` results of this tokenizer from a tokenizer report (`evaluation/tokenizer_report.py`'s
        `report.json`): its row's latent error, level, clipping, MR-STFT and mel distances, FAD (named with its
        embedding model) and predicted MOS, on ``dataset`` (`{"name", "type", "split"}`). The row is ``row``, or the
        one whose saved config equals this model's (private and version keys aside)."""
        systems, configs = report.get("systems", {}), report.get("configs", {})
        if row is None:
            mine = _comparable_config(self.config.to_dict())
            matches = [name for name, config in configs.items() if _comparable_config(config) == mine]
            if len(matches) != 1:
                raise ValueError(f"cannot tell this tokenizer's row in the report: {len(matches)} of its rows "
                                 f"{sorted(configs)} have this config; name it (row=...)")
            row = matches[0]
        if row not in systems:
            raise ValueError(f"the report has no row {row!r} (rows: {sorted(systems)})")
        values = systems[row]
        named = {"latent_error": "latent error (Table I, all clips)", "level_db": "level vs the front end (dB)",
                 "clipped_pct": "clipped samples (%)", "mr_stft": "multi-resolution STFT distance",
                 "mel_distance": "mel distance", "fad": f"FAD ({report.get('fad_model') or 'embedding model'})",
                 "mos_ovrl": "DNSMOS OVRL (speech)"}
        metrics = [{"type": key, "value": round(float(values[key]), 4), "name": name}
                   for key, name in named.items() if values.get(key) is not None]
        return [{"task": {"type": "audio-to-audio", "name": "reconstruction from codes"},
                 "dataset": {"name": dataset["name"], "type": dataset["type"], "split": dataset["split"]},
                 "metrics": metrics}]

    # ----- latent normalisation ----------------------------------------------------------------------
    def set_latent_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-channel mean and std (latent_dim,) of the front end's latents, measured on training data."""
        for name, value in (("mean", mean), ("std", std)):
            if value.shape != (self.config.latent_dim,):
                raise ValueError(f"{name} must have shape ({self.config.latent_dim},), got {tuple(value.shape)}")
        if not bool((std > 0).all()):
            raise ValueError("std must be positive in every channel")
        with torch.no_grad():
            self.latent_mean.copy_(mean)
            self.latent_std.copy_(std)

    def normalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return (latents - self.latent_mean) / self.latent_std

    def denormalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return latents * self.latent_std + self.latent_mean

    # ----- input checks (the boundary: shapes and types always, values in eager mode) -------------------
    def _check_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, channels, samples) audio cast to the model's dtype, as transformers' audio models do."""
        if not isinstance(audio, torch.Tensor):
            raise TypeError(
                f"input_values must be a torch.Tensor of shape (batch, channels, samples), got {type(audio).__name__}"
            )
        if not audio.is_floating_point():
            raise TypeError(f"input_values must be a floating-point tensor, got dtype {audio.dtype}")
        if audio.dim() == 2 and self.channels == 1:
            audio = audio[:, None]
        if audio.dim() != 3 or audio.shape[1] != self.channels:
            raise ValueError(
                f"input_values must have shape (batch, {self.channels}, samples) for this {self.sample_rate} Hz "
                f"front end, got {tuple(audio.shape)}; use MSNFeatureExtractor to resample and map channels"
            )
        if audio.shape[-1] < 1:
            raise ValueError(f"input_values must hold at least one sample, got shape {tuple(audio.shape)}")
        # data-dependent, so eager only: the feature extractor and the data loaders check it where audio enters
        if not is_tracing() and not bool(torch.isfinite(audio).all()):
            raise ValueError("input_values contains NaN or infinite values")
        return audio.to(self.dtype)

    def _check_latents(self, latents: torch.Tensor) -> torch.Tensor:
        if not isinstance(latents, torch.Tensor) or latents.dim() != 3 or latents.shape[-1] != self.config.latent_dim:
            shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
            raise ValueError(f"latents must have shape (batch, frames, {self.config.latent_dim}), got {shape}")
        return latents.to(self.dtype)

    def _check_codes(self, audio_codes: torch.Tensor) -> torch.Tensor:
        """(batch, 1, frames) codes -> (batch, frames) on the model's device."""
        if not isinstance(audio_codes, torch.Tensor):
            raise TypeError(
                f"audio_codes must be a torch.LongTensor of shape (batch, 1, frames), got {type(audio_codes).__name__}"
            )
        if audio_codes.dim() != 3 or audio_codes.shape[1] != self.num_codebooks:
            hint = "; add the codebook axis with codes[:, None]" if audio_codes.dim() == 2 else ""
            raise ValueError(
                f"audio_codes must have shape (batch, {self.num_codebooks}, frames), got {tuple(audio_codes.shape)}"
                + hint
            )
        if audio_codes.shape[-1] == 0 and not is_tracing():
            raise ValueError(f"audio_codes has 0 frames (shape {tuple(audio_codes.shape)}): nothing to decode")
        return audio_codes[:, 0].to(self.latent_mean.device)

    def _check_padding_mask(self, padding_mask: torch.Tensor | None, num_frames: int) -> torch.Tensor | None:
        """padding_mask (batch, samples) whose length gives ``num_frames`` frames -> frame mask (batch, num_frames)."""
        if padding_mask is None:
            return None
        if not isinstance(padding_mask, torch.Tensor) or padding_mask.dim() != 2:
            shape = tuple(padding_mask.shape) if isinstance(padding_mask, torch.Tensor) else type(padding_mask).__name__
            raise ValueError(f"padding_mask must have shape (batch, samples), got {shape}")
        samples = padding_mask.shape[-1]
        if self.num_frames(samples) != num_frames:
            raise ValueError(
                f"padding_mask has {samples} samples, which give {self.num_frames(samples)} frames, but the codes "
                f"have {num_frames}"
            )
        return self.frame_mask_from_padding_mask(padding_mask, num_frames)

    def frame_mask_from_lengths(self, lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
        """lengths (batch,) in samples -> frame mask (batch, num_frames): the first ``num_frames(length)`` frames."""
        valid_frames = self.num_frames(lengths.long())
        return torch.arange(num_frames, device=lengths.device)[None] < valid_frames[:, None]

    def frame_mask_from_padding_mask(self, padding_mask: torch.Tensor, num_frames: int) -> torch.Tensor:
        """padding_mask (batch, samples), 1 = audio (right padding) -> frame mask (batch, num_frames)."""
        return self.frame_mask_from_lengths(padding_mask.long().sum(-1), num_frames)

    # ----- audio <-> front-end latents ----------------------------------------------------------------
    def audio_to_latents(self, input_values: torch.Tensor) -> torch.Tensor:
        """Audio (batch, channels, samples) -> front-end latents (batch, num_frames(samples), latent_dim).

        The audio is zero-padded at its end to whole frames first (`num_frames`), so no sample is dropped.
        """
        audio = self._check_audio(input_values)
        samples = audio.shape[-1]
        audio = F.pad(audio, (0, self.num_frames(samples) * self.hop_length - samples))
        return self.frontend.encode(audio)  # frozen: the front ends run without gradients

    def latents_to_audio(self, latents: torch.Tensor) -> torch.Tensor:
        """Front-end latents (batch, frames, latent_dim) -> audio (batch, channels, frames * hop_length)."""
        return self.frontend.decode(self._check_latents(latents))

    # ----- forward: training losses --------------------------------------------------------------------
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        latents: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> MSNTokenizerOutput | tuple:
        """Training losses from audio or from cached front-end latents.

        Args:
            input_values (`torch.FloatTensor` of shape `(batch, channels, samples)`, *optional*): audio.
            padding_mask (`torch.LongTensor` of shape `(batch, samples)`, *optional*): 1 = audio, 0 = padding.
            latents (`torch.FloatTensor` of shape `(batch, frames, latent_dim)`, *optional*): front-end latents
                (un-normalised), instead of audio.
            frame_mask (`torch.BoolTensor` of shape `(batch, frames)`, *optional*): valid latent frames.
            generator (`torch.Generator`, *optional*): noise and times of the flow-matching loss.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if (input_values is None) == (latents is None):
            raise ValueError("pass exactly one of input_values (audio) or latents")
        if latents is None:
            latents = self.audio_to_latents(input_values)
            if frame_mask is None and padding_mask is not None:
                frame_mask = self.frame_mask_from_padding_mask(padding_mask, latents.shape[1])
        latents = self._check_latents(latents)
        if frame_mask is not None:
            frame_mask = frame_mask.bool()
        target = self.normalize_latents(latents)
        quantized = self.quantizer(self.encoder(target), frame_mask)
        if self.config.decoder_objective == "flow_matching":
            condition = quantized.quantized
            if self.training and self.config.condition_dropout > 0:
                # classifier-free guidance's null condition is all zeros (see `classifier_free_guidance`)
                draw = torch.rand(condition.shape[0], generator=generator, device="cpu").to(condition.device)
                condition = condition * (draw >= self.config.condition_dropout).to(condition.dtype)[:, None, None]
            reconstruction_loss = self.flow_matching.compute_loss(
                self.decoder, target, condition, frame_mask, generator=generator
            )
        else:
            prediction = self._regress(quantized.quantized, frame_mask)
            reconstruction_loss = masked_mse(prediction, target, frame_mask)
        loss = reconstruction_loss + self.config.commitment_weight * quantized.commitment_loss
        output = MSNTokenizerOutput(
            loss=loss,
            reconstruction_loss=reconstruction_loss,
            commitment_loss=quantized.commitment_loss,
            audio_codes=quantized.codes[:, None],
            frame_mask=frame_mask,
            codebook_perplexity=quantized.perplexity,
            codebook_usage=quantized.usage,
            num_restarted_codes=quantized.num_restarted,
        )
        return output if return_dict else output.to_tuple()

    def _regress(self, condition: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The "VQ + MSE" decoder: the same DiT with its noisy input and its timestep held at 0."""
        batch, frames, _ = condition.shape
        zeros = condition.new_zeros(batch, frames, self.config.latent_dim)
        return self.decoder(zeros, condition.new_zeros(batch), condition, mask)

    # ----- inference -----------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_latents(self, latents: torch.Tensor) -> torch.LongTensor:
        """Front-end latents (batch, frames, latent_dim) -> audio_codes (batch, 1, frames); more frames than
        `config.window_frames` are encoded window by window, each from a fresh causal context."""
        latents = self._check_latents(latents)
        window = self.config.window_frames
        pieces = [
            self.quantizer.nearest_codes(self.encoder(self.normalize_latents(latents[:, start:start + window])))
            for start in range(0, max(latents.shape[1], 1), window)
        ]
        return torch.cat(pieces, dim=-1)[:, None]

    @torch.no_grad()
    def encode(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> MSNTokenizerEncoderOutput | tuple:
        """Audio -> codes, one per `hop_length` samples (a partial last frame is zero-padded, see `num_frames`).

        Args:
            input_values (`torch.FloatTensor` of shape `(batch, channels, samples)`): audio at `sample_rate`
                (what [`MSNFeatureExtractor`] returns); cast to the model's dtype.
            padding_mask (`torch.LongTensor` of shape `(batch, samples)`, *optional*): 1 = audio, 0 = right
                padding; gives `frame_mask`. The encoder is causal, so padding never changes earlier codes.

        Returns:
            [`MSNTokenizerEncoderOutput`] with `audio_codes` (batch, 1, ceil(samples / hop_length)) and `frame_mask`.
            Audio longer than `config.window_frames` frames is encoded window by window (each window from a fresh
            causal context, windows on the frame grid), so the count is the same.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        # audio longer than one window (`config.window_frames` frames) goes through the front end and the encoder
        # one window at a time: an hour of audio costs one window's activations, and its codes stay on the frame grid
        input_values = self._check_audio(input_values)
        window = self.config.window_frames * self.hop_length
        audio_codes = torch.cat([
            self.encode_latents(self.audio_to_latents(input_values[..., start:start + window]))
            for start in range(0, max(input_values.shape[-1], 1), window)
        ], dim=-1)
        frame_mask = self._check_padding_mask(padding_mask, audio_codes.shape[-1])
        output = MSNTokenizerEncoderOutput(audio_codes=audio_codes, frame_mask=frame_mask)
        return output if return_dict else output.to_tuple()

    @torch.no_grad()
    def decode_latents(
        self,
        audio_codes: torch.Tensor,
        num_steps: int = 10,
        scheduler: str = "euler",
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        frame_mask: torch.Tensor | None = None,
        guidance_scale: float | None = None,
        start_time: float | None = None,
        guidance_interval: tuple[float, float] | None = None,
    ) -> torch.Tensor:
        """audio_codes (batch, 1, frames) -> front-end latents (batch, frames, latent_dim).

        Flow matching integrates the ODE with a diffusers scheduler (``"euler"`` or ``"heun"``) in
        ``num_steps`` steps from ``temperature`` x N(0, I) noise; the MSE baseline is one forward pass
        (``num_steps``, ``scheduler``, ``temperature`` unused). ``frame_mask`` (batch, frames) hides padded
        frames from the non-causal decoder. ``guidance_scale``, ``start_time`` and ``guidance_interval`` default to
        the config's `guidance_scale`, `flow_start_time` and `guidance_interval` (see
        [`OTConditionalFlowMatching.sample`]).
        """
        codes = self._check_codes(audio_codes)
        if not is_tracing():
            self.quantizer.check_codes(codes)
        condition = self.quantizer.lookup(codes).to(self.dtype)
        if self.config.decoder_objective == "mse":
            normalized = self._regress(condition, frame_mask)
        else:
            shape = (*codes.shape, self.config.latent_dim)
            normalized = self.flow_matching.sample(
                self.decoder, condition, shape, frame_mask, num_steps=num_steps, scheduler=scheduler,
                temperature=temperature, generator=generator,
                guidance_scale=self.config.guidance_scale if guidance_scale is None else guidance_scale,
                start_time=self.config.flow_start_time if start_time is None else start_time,
                guidance_interval=tuple(self.config.guidance_interval if guidance_interval is None
                                        else guidance_interval),
            )
        return self.denormalize_latents(normalized)

    @torch.no_grad()
    def decode(
        self,
        audio_codes: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        num_steps: int = 10,
        scheduler: str = "euler",
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
        guidance_scale: float | None = None,
        start_time: float | None = None,
        guidance_interval: tuple[float, float] | None = None,
    ) -> MSNTokenizerDecoderOutput | tuple:
        """Codes -> audio.

        Args:
            audio_codes (`torch.LongTensor` of shape `(batch, 1, frames)`): what `encode` returned.
            padding_mask (`torch.LongTensor` of shape `(batch, samples)`, *optional*): the padding mask of the
                encoded batch. The output is trimmed to its length and zero past each clip's length, and padded
                frames are hidden from the decoder, so each clip decodes as if it were alone.
            num_steps, scheduler, temperature, generator, guidance_scale, start_time, guidance_interval: the
                flow-matching sampler
                (see `decode_latents`).

        Returns:
            [`MSNTokenizerDecoderOutput`] with `audio_values` (batch, channels, samples) at `sample_rate`. Codes
            longer than `config.window_frames` are decoded window by window and the audio concatenated.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        codes = self._check_codes(audio_codes)
        frame_mask = self._check_padding_mask(padding_mask, codes.shape[-1])
        # more frames than one window (`config.window_frames`) are decoded window by window: the DiT attends over
        # all frames, so one pass over an hour of codes would cost the square of its length
        window = self.config.window_frames
        audio = torch.cat([
            self.frontend.decode(self.decode_latents(
                audio_codes[..., start:start + window], num_steps, scheduler, temperature, generator,
                None if frame_mask is None else frame_mask[:, start:start + window], guidance_scale, start_time,
                guidance_interval,
            ))
            for start in range(0, max(codes.shape[-1], 1), window)
        ], dim=-1)
        if padding_mask is not None:
            audio = audio[..., : padding_mask.shape[-1]] * padding_mask[:, None].to(audio.dtype)
        output = MSNTokenizerDecoderOutput(audio_values=audio)
        return output if return_dict else output.to_tuple()
