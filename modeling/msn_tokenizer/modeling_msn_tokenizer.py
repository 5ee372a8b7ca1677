"""LM-MSN sound tokenizer: frozen front end -> causal transformer encoder -> VQ -> DiT flow-matching decoder.

Paper: "Make Some Noise: Towards LLM audio reasoning and generation using sound tokens" (Mehta, Jojic,
Gamper), Sections III and IV-A. One token per latent frame of the front end; with the Stable Audio Open
VAE that is 44100 / 2048 = 21.53 tokens per second.

Data flow (shapes for a batch of B clips of T samples, F = T // hop_length frames):

    audio (B, C, T) --front end--> z (B, F, latent_dim) --normalise--> z_n
    z_n --causal encoder--> z_e (B, F, codebook_dim) --VQ--> codes (B, F), q (B, F, codebook_dim)
    (x_t, t, q) --DiT--> velocity (B, F, latent_dim)        [flow matching]
    (0,   0, q) --DiT--> z_n estimate                       [MSE baseline]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
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
        codes (`torch.LongTensor` of shape `(batch_size, num_frames)`): token of each latent frame.
        frame_mask (`torch.BoolTensor` of shape `(batch_size, num_frames)`): frames that hold real audio.
        codebook_perplexity (`torch.FloatTensor` of shape `()`): exp(entropy) of the batch's code histogram.
        codebook_usage (`torch.FloatTensor` of shape `()`): fraction of codes used in the batch.
        num_restarted_codes (`int`): dead codes restarted in this step.
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    frame_mask: torch.BoolTensor | None = None
    codebook_perplexity: torch.FloatTensor | None = None
    codebook_usage: torch.FloatTensor | None = None
    num_restarted_codes: int | None = None


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


class MSNAttention(nn.Module):
    def __init__(self, config: MSNTokenizerConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = config.dropout

    def forward(
        self,
        hidden_states: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        causal: bool,
        attention_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        batch, frames, _ = hidden_states.shape
        qkv = self.qkv(hidden_states).view(batch, frames, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        query, key, value = qkv.unbind(0)
        query, key = apply_rotary(query, *rotary), apply_rotary(key, *rotary)
        attended = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, is_causal=causal and attention_mask is None,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out_proj(attended.transpose(1, 2).reshape(batch, frames, -1))


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
        self.attn = MSNAttention(config)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MSNMLP(config)

    def forward(self, hidden_states: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        hidden_states = hidden_states + self.attn(self.attn_norm(hidden_states), rotary, True, None)
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))


class MSNDiTLayer(GradientCheckpointingLayer):
    """Non-causal DiT block with adaLN-Zero modulation from the timestep embedding (Peebles & Xie 2023)."""

    def __init__(self, config: MSNTokenizerConfig):
        super().__init__()
        self.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.attn = MSNAttention(config)
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
        hidden_states = hidden_states + gate_a * self.attn(normed, rotary, False, attention_mask)
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
        rotary = rotary_cos_sin(
            latents.shape[1], self.config.head_dim, self.config.rope_theta, latents.device, hidden_states.dtype
        )
        for layer in self.layers:
            hidden_states = layer(hidden_states, rotary)
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
        if mask is not None and not bool(mask.all()):
            # a clip with no valid frame would attend to nothing (NaN); let it attend everywhere instead
            keys = mask | ~mask.any(dim=1, keepdim=True)
            attention_mask = keys[:, None, None, :]
        for layer in self.layers:
            hidden_states = layer(hidden_states, conditioning, rotary, attention_mask)
        shift, scale = self.final_modulation(F.silu(conditioning))[:, None].chunk(2, dim=-1)
        return self.output_proj(self.final_norm(hidden_states) * (1 + scale) + shift)


class MSNTokenizerPreTrainedModel(PreTrainedModel):
    config_class = MSNTokenizerConfig
    base_model_prefix = "msn_tokenizer"
    main_input_name = "input_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MSNEncoderLayer", "MSNDiTLayer"]

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (MelFrontend, OobleckFrontend)):
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


class MSNTokenizerModel(MSNTokenizerPreTrainedModel):
    """The LM-MSN sound tokenizer, with the audiocraft compression-model contract.

    ``sample_rate``, ``frame_rate``, ``codebook_size`` (= ``cardinality``), ``num_codebooks`` (1),
    ``bitrate``; ``encode(audio) -> codes``, ``decode(codes) -> audio``, ``encode_latents`` and
    ``decode_latents`` to skip the front end.

    Example:

    ```python
    >>> import torch
    >>> from soundlm import MSNTokenizerConfig, MSNTokenizerModel
    >>> config = MSNTokenizerConfig(frontend_type="mel", hidden_size=64, encoder_layers=2, decoder_layers=2,
    ...                             intermediate_size=128, codebook_size=256, codebook_dim=16)
    >>> model = MSNTokenizerModel(config).eval()
    >>> audio = torch.randn(2, 1, 22050)  # (batch, channels, samples): 1 s at 22.05 kHz
    >>> codes = model.encode(audio)       # (2, 21): 21.5 tokens per second
    >>> model.decode(codes, num_steps=4).shape
    torch.Size([2, 1, 21504])
    ```
    """

    def __init__(self, config: MSNTokenizerConfig, frontend: nn.Module | None = None):
        super().__init__(config)
        if frontend is None:
            frontend = build_frontend(config.frontend_type, config.frontend_config)
        self.frontend = frontend
        for module in self.frontend.modules():
            module._is_hf_initialized = True  # frozen: never re-initialised by post_init
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
        self.flow_matching = OTConditionalFlowMatching(config.sigma_min)
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
        """Tokens for a clip of ``num_samples`` samples (``samples // hop_length``)."""
        return num_samples // self.hop_length

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

    # ----- input checks --------------------------------------------------------------------------------
    def _check_audio(self, audio: torch.Tensor) -> torch.Tensor:
        if not isinstance(audio, torch.Tensor):
            raise TypeError(
                f"audio must be a torch.Tensor of shape (batch, channels, samples), got {type(audio).__name__}"
            )
        if not audio.is_floating_point():
            raise TypeError(f"audio must be a floating-point tensor, got dtype {audio.dtype}")
        if audio.dim() == 2 and self.channels == 1:
            audio = audio[:, None]
        if audio.dim() != 3 or audio.shape[1] != self.channels:
            raise ValueError(
                f"audio must have shape (batch, {self.channels}, samples) for this {self.sample_rate} Hz front end, "
                f"got {tuple(audio.shape)}; use MSNFeatureExtractor to resample and map channels"
            )
        if audio.shape[-1] < self.hop_length:
            raise ValueError(f"audio must hold at least hop_length={self.hop_length} samples, got {audio.shape[-1]}")
        if not bool(torch.isfinite(audio).all()):
            raise ValueError("audio contains NaN or infinite values")
        return audio

    def _check_latents(self, latents: torch.Tensor) -> None:
        if latents.dim() != 3 or latents.shape[-1] != self.config.latent_dim:
            raise ValueError(
                f"latents must have shape (batch, frames, {self.config.latent_dim}), got {tuple(latents.shape)}"
            )

    def _check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        if not isinstance(codes, torch.Tensor):
            raise TypeError(f"codes must be a torch.LongTensor of shape (batch, frames), got {type(codes).__name__}")
        if codes.dim() == 1:
            codes = codes[None]
        if codes.dim() != 2:
            raise ValueError(f"codes must have shape (batch, frames), got {tuple(codes.shape)}")
        return codes

    def frame_mask_from_lengths(self, lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
        """lengths (batch,) in samples -> frame mask (batch, num_frames): frames holding any audio."""
        valid_frames = (lengths.long() + self.hop_length - 1) // self.hop_length
        return torch.arange(num_frames, device=lengths.device)[None] < valid_frames[:, None]

    def frame_mask_from_padding_mask(self, padding_mask: torch.Tensor, num_frames: int) -> torch.Tensor:
        """padding_mask (batch, samples), 1 = audio -> frame mask (batch, num_frames): frames holding any audio."""
        return self.frame_mask_from_lengths(padding_mask.long().sum(-1), num_frames)

    # ----- forward: training losses --------------------------------------------------------------------
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        latents: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
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
            lengths (`torch.LongTensor` of shape `(batch,)`, *optional*): samples of real audio per clip, used when
                `padding_mask` is absent (so that `model(**feature_extractor(...))` works).
            generator (`torch.Generator`, *optional*): noise and times of the flow-matching loss.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if (input_values is None) == (latents is None):
            raise ValueError("pass exactly one of input_values (audio) or latents")
        if latents is None:
            latents = self.frontend.encode(self._check_audio(input_values))
            if frame_mask is None and padding_mask is not None:
                frame_mask = self.frame_mask_from_padding_mask(padding_mask, latents.shape[1])
            elif frame_mask is None and lengths is not None:
                frame_mask = self.frame_mask_from_lengths(lengths, latents.shape[1])
        self._check_latents(latents)
        if frame_mask is not None:
            frame_mask = frame_mask.bool()
        target = self.normalize_latents(latents)
        quantized = self.quantizer(self.encoder(target), frame_mask)
        if self.config.decoder_objective == "flow_matching":
            reconstruction_loss = self.flow_matching.compute_loss(
                self.decoder, target, quantized.quantized, frame_mask, generator=generator
            )
        else:
            prediction = self._regress(quantized.quantized, frame_mask)
            reconstruction_loss = masked_mse(prediction, target, frame_mask)
        loss = reconstruction_loss + self.config.commitment_weight * quantized.commitment_loss
        output = MSNTokenizerOutput(
            loss=loss,
            reconstruction_loss=reconstruction_loss,
            commitment_loss=quantized.commitment_loss,
            codes=quantized.codes,
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
    def encode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Front-end latents (batch, frames, latent_dim) -> codes (batch, frames)."""
        self._check_latents(latents)
        return self.quantizer.nearest_codes(self.encoder(self.normalize_latents(latents)))

    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio (batch, channels, samples) at ``sample_rate`` -> codes (batch, samples // hop_length).

        Padding at the end of a clip does not change the codes of the frames before it (causal encoder).
        """
        return self.encode_latents(self.frontend.encode(self._check_audio(audio)))

    @torch.no_grad()
    def decode_latents(
        self,
        codes: torch.Tensor,
        num_steps: int = 10,
        scheduler: str = "euler",
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        frame_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Codes (batch, frames) -> front-end latents (batch, frames, latent_dim).

        Flow matching integrates the ODE with a diffusers scheduler (``"euler"`` or ``"heun"``) in
        ``num_steps`` steps from ``temperature`` x N(0, I) noise; the MSE baseline is one forward pass
        (``num_steps``, ``scheduler``, ``temperature`` unused).
        """
        codes = self._check_codes(codes)
        condition = self.quantizer.lookup(codes.to(self.latent_mean.device)).to(self.latent_mean.dtype)
        if self.config.decoder_objective == "mse":
            normalized = self._regress(condition, frame_mask)
        else:
            shape = (*codes.shape, self.config.latent_dim)
            normalized = self.flow_matching.sample(
                self.decoder, condition, shape, frame_mask, num_steps=num_steps, scheduler=scheduler,
                temperature=temperature, generator=generator,
            )
        return self.denormalize_latents(normalized)

    @torch.no_grad()
    def decode(
        self,
        codes: torch.Tensor,
        num_steps: int = 10,
        scheduler: str = "euler",
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Codes (batch, frames) -> audio (batch, channels, frames * hop_length) at ``sample_rate``."""
        latents = self.decode_latents(codes, num_steps, scheduler, temperature, generator)
        return self.frontend.decode(latents)
