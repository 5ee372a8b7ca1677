"""Vector-quantisation bottleneck of the sound tokenizer.

Codebook learning is by exponential moving averages (van den Oord et al. 2017, appendix; Razavi et al.
2019), not by a codebook loss: the codebook is a buffer the optimiser never sees, the encoder is pulled
towards its codes by the commitment loss, and gradients pass the quantiser straight through. Codes whose
EMA assignment count falls below ``dead_code_threshold`` are restarted from random encoder outputs of the
current batch (Dhariwal et al. 2020, Jukebox), which also initialises the codebook from data on the first
training step. Under ``torch.distributed`` the EMA statistics are summed over processes and the restart
samples are broadcast from rank 0, so every process keeps the same codebook.

The codebook and its statistics stay float32 whatever dtype the model is cast to (``model.to(torch.bfloat16)``,
``.half()``): an EMA of many small updates is lost in bf16's 8-bit mantissa. Inputs of any float dtype are
quantised in float32 and the code vectors are returned in the input's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .precision import Float32BuffersMixin


@dataclass
class QuantizerOutput:
    """Result of [`VectorQuantizer.forward`].

    Args:
        quantized (`torch.FloatTensor` of shape `(batch_size, num_frames, codebook_dim)`):
            code vectors, with straight-through gradients to the encoder output.
        codes (`torch.LongTensor` of shape `(batch_size, num_frames)`): indices into the codebook.
        commitment_loss (`torch.FloatTensor` of shape `()`): mean of ||z_e - sg(q)||^2 over valid frames
            and dimensions (unweighted).
        perplexity (`torch.FloatTensor` of shape `()`): exp(entropy) of the batch's code histogram.
        usage (`torch.FloatTensor` of shape `()`): fraction of the codebook used in the batch.
        num_restarted (`int`): codes restarted by this call (0 outside training).
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    commitment_loss: torch.Tensor
    perplexity: torch.Tensor
    usage: torch.Tensor
    num_restarted: int = 0


def code_statistics(codes: torch.Tensor, codebook_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """codes (any shape) -> (perplexity = exp(entropy) of their histogram, number of distinct codes used)."""
    counts = torch.bincount(codes.flatten(), minlength=codebook_size).float()
    probabilities = counts / counts.sum().clamp(min=1.0)
    perplexity = torch.exp(-(probabilities * torch.log(probabilities.clamp(min=1e-10))).sum())
    return perplexity, (counts > 0).sum().float()


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class VectorQuantizer(Float32BuffersMixin):
    """Nearest-code quantiser with EMA codebook, straight-through gradients and dead-code restart.

    Args:
        codebook_size (`int`): number of codes K.
        codebook_dim (`int`): dimension D of each code.
        decay (`float`): EMA decay of assignment counts and sums.
        epsilon (`float`): Laplace smoothing of the counts.
        dead_code_threshold (`float`): EMA count below which a code is restarted (0 disables restarts).
    """

    def __init__(
        self,
        codebook_size: int,
        codebook_dim: int,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        dead_code_threshold: float = 1.0,
    ):
        super().__init__()
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.decay = decay
        self.epsilon = epsilon
        self.dead_code_threshold = dead_code_threshold
        # float32 even when the model is built under another default dtype (from_pretrained(dtype=...))
        self.register_buffer("codebook", torch.randn(codebook_size, codebook_dim, dtype=torch.float32))
        self.register_buffer("ema_cluster_size", torch.zeros(codebook_size, dtype=torch.float32))
        self.register_buffer("ema_embed_sum", torch.zeros(codebook_size, codebook_dim, dtype=torch.float32))

    float32_buffers = ("codebook", "ema_cluster_size", "ema_embed_sum")

    def reset_parameters(self) -> None:
        """Codes ~ N(0, 1); EMA counts and sums 0 (consistent), so the first training step restarts codes from data."""
        with torch.no_grad():
            self.codebook.normal_()
            self.ema_cluster_size.zero_()
            self.ema_embed_sum.zero_()

    def nearest_codes(self, latents: torch.Tensor) -> torch.Tensor:
        """latents (..., codebook_dim) -> codes (...) by squared L2 distance."""
        if latents.shape[-1] != self.codebook_dim:
            raise ValueError(
                f"latents must end with codebook_dim={self.codebook_dim}, got shape {tuple(latents.shape)}"
            )
        flat = latents.reshape(-1, self.codebook_dim).float()
        codebook = self.codebook.float()
        distances = flat.pow(2).sum(-1, keepdim=True) - 2 * flat @ codebook.T + codebook.pow(2).sum(-1)[None]
        return distances.argmin(dim=-1).reshape(latents.shape[:-1])

    def check_codes(self, codes: torch.Tensor) -> None:
        """Raises `TypeError` for a non-integer tensor and `ValueError` for indices outside [0, codebook_size).

        Data-dependent (it reads the values), so callers run it in eager mode only; `lookup` does not.
        """
        if codes.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise TypeError(f"codes must be an integer tensor, got dtype {codes.dtype}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(
                f"codes must lie in [0, {self.codebook_size}), got values in [{int(codes.min())}, {int(codes.max())}]"
            )

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (...) -> float32 code vectors (..., codebook_dim). Check them first with `check_codes`."""
        return F.embedding(codes.long(), self.codebook)

    def forward(self, latents: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput:
        """latents (batch, frames, codebook_dim), mask (batch, frames) bool of valid frames (None = all)."""
        codes = self.nearest_codes(latents)
        if mask is None:
            mask = torch.ones(codes.shape, dtype=torch.bool, device=codes.device)
        num_restarted = 0
        if self.training:
            num_restarted = self._update_codebook(latents.detach(), codes, mask)
            codes = self.nearest_codes(latents) if num_restarted else codes
        quantized = self.lookup(codes).to(latents.dtype)  # the codebook is float32 (module docstring)
        weights = mask.to(latents.dtype)[..., None]
        denominator = weights.sum().clamp(min=1.0) * self.codebook_dim
        commitment_loss = ((latents - quantized.detach()).pow(2) * weights).sum() / denominator
        perplexity, used = code_statistics(codes[mask], self.codebook_size)
        usage = used / self.codebook_size
        # straight-through: the forward value is the code, the gradient reaches the encoder unchanged.
        quantized = latents + (quantized - latents).detach()
        return QuantizerOutput(quantized, codes, commitment_loss, perplexity, usage, num_restarted)

    @torch.no_grad()
    def _update_codebook(self, latents: torch.Tensor, codes: torch.Tensor, mask: torch.Tensor) -> int:
        valid = latents[mask].float()  # (valid_frames, dim)
        valid_codes = codes[mask]
        counts = torch.bincount(valid_codes, minlength=self.codebook_size).float()
        sums = torch.zeros_like(self.ema_embed_sum).index_add_(0, valid_codes, valid)
        if _distributed():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.ema_cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.ema_cluster_size.sum()
        smoothed = (self.ema_cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total
        live = self.ema_cluster_size >= self.dead_code_threshold
        # codes never assigned keep their vector rather than collapsing to the smoothed zero mean
        self.codebook.copy_(torch.where(live[:, None], self.ema_embed_sum / smoothed[:, None], self.codebook))
        if self.dead_code_threshold <= 0:
            return 0
        dead = ~live
        num_dead = int(dead.sum())
        if num_dead == 0 or valid.shape[0] == 0:
            return 0
        picks = torch.randint(0, valid.shape[0], (num_dead,), device=valid.device)
        replacements = valid[picks]
        if _distributed():
            dist.broadcast(replacements, src=0)
        self.codebook[dead] = replacements.to(self.codebook.dtype)
        self.ema_embed_sum[dead] = replacements.to(self.codebook.dtype) * self.dead_code_threshold
        self.ema_cluster_size[dead] = self.dead_code_threshold
        return num_dead
