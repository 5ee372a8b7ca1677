"""Frozen audio front ends of the sound tokenizer: waveform <-> latent frames.

Both front ends follow one small contract so the tokenizer does not care which it has:

- ``sample_rate`` (Hz), ``audio_channels``, ``hop_length`` (samples per latent frame), ``latent_dim``;
- ``encode(audio)``: audio of shape (batch, audio_channels, samples) -> latents of shape
  (batch, samples // hop_length, latent_dim);
- ``decode(latents)``: latents of shape (batch, frames, latent_dim) -> audio of shape
  (batch, audio_channels, frames * hop_length).

Neither front end is trained: the tokenizer freezes them and caches their latents.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .precision import Float32BuffersMixin


class MelFrontend(Float32BuffersMixin):
    """Weight-free front end: stacked log-mel frames, inverted with Griffin-Lim.

    ``frames_per_latent`` consecutive STFT frames (hop ``stft_hop_length``) are stacked into one latent
    frame, so that the latent frame rate can match the Oobleck VAE's (21.53 Hz) while the STFT keeps a
    hop short enough for Griffin-Lim to give intelligible sound. The latent of one frame is
    ``[mel(frame 0), mel(frame 1), ...]``, each ``num_mel_bins`` natural-log magnitudes.

    It holds no parameters and no saved buffers: the mel basis, its pseudo-inverse and the STFT window are
    built from the config at construction as non-persistent float32 buffers (they follow the model's device,
    stay float32 under any model dtype, and are not written to checkpoints).
    """

    float32_buffers = ("mel_filters", "mel_inverse", "window")

    def __init__(
        self,
        sampling_rate: int = 22050,
        audio_channels: int = 1,
        n_fft: int = 1024,
        stft_hop_length: int = 256,
        frames_per_latent: int = 4,
        num_mel_bins: int = 80,
        f_min: float = 0.0,
        f_max: float | None = None,
        log_floor: float = 1e-5,
        griffin_lim_iters: int = 32,
    ):
        super().__init__()
        if audio_channels != 1:
            raise ValueError(f"MelFrontend is mono: audio_channels must be 1, got {audio_channels}")
        if stft_hop_length > n_fft:
            raise ValueError(f"stft_hop_length ({stft_hop_length}) must not exceed n_fft ({n_fft})")
        self.sample_rate = int(sampling_rate)
        self.audio_channels = 1
        self.n_fft = int(n_fft)
        self.stft_hop_length = int(stft_hop_length)
        self.frames_per_latent = int(frames_per_latent)
        self.num_mel_bins = int(num_mel_bins)
        self.f_min = float(f_min)
        self.f_max = float(f_max) if f_max is not None else sampling_rate / 2
        self.log_floor = float(log_floor)
        self.griffin_lim_iters = int(griffin_lim_iters)
        self.hop_length = self.stft_hop_length * self.frames_per_latent
        self.latent_dim = self.num_mel_bins * self.frames_per_latent
        filters, inverse, window = self._transforms()
        self.register_buffer("mel_filters", filters, persistent=False)  # (freq, mels)
        self.register_buffer("mel_inverse", inverse, persistent=False)  # (mels, freq)
        self.register_buffer("window", window, persistent=False)  # (n_fft,)

    def _transforms(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mel filters (freq, mels), their pseudo-inverse (mels, freq) and the STFT window (n_fft,), float32 on the
        CPU, computed in float64 from the config."""
        from transformers.audio_utils import mel_filter_bank

        filters = mel_filter_bank(
            num_frequency_bins=self.n_fft // 2 + 1,
            num_mel_filters=self.num_mel_bins,
            min_frequency=self.f_min,
            max_frequency=self.f_max,
            sampling_rate=self.sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        filters = torch.from_numpy(np.asarray(filters, dtype=np.float64)).to("cpu")
        window = torch.hann_window(self.n_fft, dtype=torch.float64, device="cpu")
        return filters.float(), torch.linalg.pinv(filters).float(), window.float()

    def reset_buffers(self) -> None:
        """Recompute the transforms into the buffers (after `from_pretrained` left non-persistent buffers empty)."""
        from transformers import initialization as init

        for name, value in zip(("mel_filters", "mel_inverse", "window"), self._transforms(), strict=True):
            init.copy_(getattr(self, name), value)

    def _stft(self, audio: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        return torch.stft(
            audio, self.n_fft, self.stft_hop_length, window=window, center=True, pad_mode="constant",
            return_complex=True,
        )

    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (batch, 1, samples) -> latents (batch, samples // hop_length, num_mel_bins * frames_per_latent)."""
        batch, _, samples = audio.shape
        num_frames = samples // self.hop_length
        if num_frames == 0:
            raise ValueError(f"audio must hold at least hop_length={self.hop_length} samples, got {samples}")
        magnitude = self._stft(audio[:, 0].float(), self.window).abs()  # (batch, freq, stft_frames)
        magnitude = magnitude[..., : num_frames * self.frames_per_latent]
        mel = torch.log(torch.clamp(self.mel_filters.T @ magnitude, min=self.log_floor))  # (batch, mels, stft_frames)
        mel = mel.transpose(1, 2).reshape(batch, num_frames, self.latent_dim)
        return mel.to(audio.dtype)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """latents (batch, frames, latent_dim) -> audio (batch, 1, frames * hop_length) by Griffin-Lim.

        Uses the "fast Griffin-Lim" momentum of Perraudin et al. (0.99); the initial phase is random from
        ``generator`` (seeded with 0 when none is given, so that decoding is deterministic).
        """
        batch, num_frames, _ = latents.shape
        window = self.window
        mel = latents.float().reshape(batch, num_frames * self.frames_per_latent, self.num_mel_bins)
        magnitude = torch.clamp(self.mel_inverse.T @ torch.exp(mel).transpose(1, 2), min=0.0)  # (batch, freq, frames)
        # centred STFT of N hops has N + 1 frames: repeat the last so that istft gives exactly N hops.
        magnitude = torch.cat([magnitude, magnitude[..., -1:]], dim=-1)
        length = num_frames * self.hop_length
        if generator is None:
            generator = torch.Generator(device="cpu").manual_seed(0)
        phase = torch.rand(magnitude.shape, generator=generator, device="cpu").to(magnitude.device)
        angles = torch.polar(torch.ones_like(magnitude), 2 * math.pi * phase)
        previous = torch.zeros_like(angles)
        momentum = 0.99 / (1 + 0.99)
        for _ in range(self.griffin_lim_iters):
            waveform = torch.istft(magnitude * angles, self.n_fft, self.stft_hop_length, window=window, length=length)
            rebuilt = self._stft(waveform, window)
            angles = rebuilt - momentum * previous
            angles = angles / angles.abs().clamp(min=1e-16)
            previous = rebuilt
        waveform = torch.istft(magnitude * angles, self.n_fft, self.stft_hop_length, window=window, length=length)
        return waveform[:, None].to(latents.dtype)


class OobleckFrontend(nn.Module):
    """Stable Audio Open's VAE (diffusers ``AutoencoderOobleck``), frozen. 44.1 kHz stereo, hop 2048, 64 channels.

    ``encode`` returns the mean of the posterior (deterministic latents, as is usual when a VAE feeds a
    tokenizer). Build it from a config dict (random weights, for tests and benchmarks) or load the real
    VAE with [`OobleckFrontend.from_pretrained`].

    On the CPU, ``encode`` and ``decode`` run the VAE on ``cpu_clips_per_call`` clips at a time (default 1)
    and concatenate: its activations (128+ channels at up to 44.1 kHz) fall out of the caches, so bigger
    calls are slower per clip. Measured on 2 cores (paper-size VAE, random weights): 8 x 10-s clips
    encode in 247 s in one call and 176 s one by one; 4 x 2-s clips decode in 18.5 s vs 16.6 s. Results
    match the batched call to float rounding (2e-7). On other devices the whole batch goes in one call.
    """

    cpu_clips_per_call: int = 1

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae
        self.vae.requires_grad_(False)
        self.vae.eval()
        cfg = vae.config
        if cfg.encoder_hidden_size // 2 != cfg.decoder_input_channels:
            raise ValueError(
                f"the VAE's encoder gives encoder_hidden_size // 2 = {cfg.encoder_hidden_size // 2} latent channels "
                f"but its decoder expects decoder_input_channels={cfg.decoder_input_channels}"
            )
        self.sample_rate = int(cfg.sampling_rate)
        self.audio_channels = int(cfg.audio_channels)
        self.hop_length = int(math.prod(cfg.downsampling_ratios))
        self.latent_dim = int(cfg.decoder_input_channels)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OobleckFrontend:
        from diffusers import AutoencoderOobleck

        return cls(AutoencoderOobleck(**config))

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str, subfolder: str | None = "vae", **kwargs
    ) -> OobleckFrontend:
        """Load the VAE, e.g. ``OobleckFrontend.from_pretrained("stabilityai/stable-audio-open-1.0")``."""
        from diffusers import AutoencoderOobleck

        return cls(AutoencoderOobleck.from_pretrained(pretrained_model_name_or_path, subfolder=subfolder, **kwargs))

    def train(self, mode: bool = True) -> OobleckFrontend:
        # The VAE is frozen: keep it in eval mode whatever the tokenizer's mode.
        super().train(mode)
        self.vae.eval()
        return self

    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (batch, audio_channels, samples) -> latents (batch, samples // 2048, 64)."""
        num_frames = audio.shape[-1] // self.hop_length
        if num_frames == 0:
            raise ValueError(f"audio must hold at least hop_length={self.hop_length} samples, got {audio.shape[-1]}")
        latents = self._in_calls(lambda part: self.vae.encode(part).latent_dist.mean, audio)
        return latents[..., :num_frames].transpose(1, 2)  # (batch, 64, frames) -> (batch, frames, 64)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """latents (batch, frames, 64) -> audio (batch, audio_channels, frames * 2048)."""
        del generator  # the VAE decoder is deterministic
        return self._in_calls(lambda part: self.vae.decode(part).sample, latents.transpose(1, 2))

    def _in_calls(self, vae_call: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor) -> torch.Tensor:
        """``vae_call`` on the batch, in pieces of ``cpu_clips_per_call`` clips on the CPU (class docstring)."""
        if batch.device.type != "cpu" or batch.shape[0] <= self.cpu_clips_per_call:
            return vae_call(batch)  # one call, no concatenation copy
        return torch.cat([vae_call(part) for part in batch.split(self.cpu_clips_per_call)])


def build_frontend(frontend_type: str, frontend_config: dict[str, Any]) -> nn.Module:
    """The front end named by a tokenizer config (random weights for the VAE: load real ones separately)."""
    if frontend_type == "mel":
        return MelFrontend(**frontend_config)
    if frontend_type == "oobleck":
        return OobleckFrontend.from_config(frontend_config)
    raise ValueError(f"frontend_type must be 'oobleck' or 'mel', got {frontend_type!r}")
