"""Optimal-transport conditional flow matching (Lipman et al. 2023), separate from the network.

Time convention of the papers, used everywhere in this package: ``t = 0`` is noise, ``t = 1`` is data,

    x_t = (1 - (1 - sigma_min) t) x_0 + t x_1,       u_t = x_1 - (1 - sigma_min) x_0,

with x_0 ~ N(0, I) and x_1 the data. The estimator predicts u_t = dx/dt from (x_t, t, condition).

diffusers' flow-matching schedulers integrate in ``sigma`` from 1 (noise) to 0 (data) and their ``step``
expects dx/dsigma. The mapping is ``sigma = 1 - t`` and therefore ``dx/dsigma = -dx/dt``: the velocity is
negated before it is handed to the scheduler (tested against ODEs with known solutions).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from .configuration_msn_tokenizer import check_guidance_interval

# estimator(x_t (batch, frames, dim), t (batch,) in [0, 1], condition, mask) -> velocity (batch, frames, dim)
Estimator = Callable[..., torch.Tensor]

SCHEDULERS = {"euler": FlowMatchEulerDiscreteScheduler, "heun": FlowMatchHeunDiscreteScheduler}


def make_scheduler(name: str, num_steps: int, start_time: float = 0.0) -> SchedulerMixin:
    """A diffusers flow-matching scheduler with ``num_steps`` steps from sigma = 1 - start_time to sigma = 0.

    Euler gets uniform sigmas s, s - s/N, ..., s/N (then 0) with s = 1 - start_time, so N steps cost N estimator
    calls. Heun uses the scheduler's own spacing (N sigmas from 1 to 1/1000, then 0), costs 2N - 1 calls and
    cannot start later than t = 0 (diffusers' Heun scheduler takes no custom sigmas).
    """
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {sorted(SCHEDULERS)}, got {name!r}")
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    if not 0.0 <= start_time < 1.0:
        raise ValueError(f"start_time must be in [0, 1), got {start_time}")
    if name == "heun" and start_time > 0:
        raise ValueError(f"start_time={start_time} needs scheduler='euler': diffusers' Heun scheduler has fixed sigmas")
    scheduler = SCHEDULERS[name](num_train_timesteps=1000, shift=1.0)
    if name == "euler":
        scheduler.set_timesteps(sigmas=np.linspace(1.0 - start_time, 0.0, num_steps + 1)[:-1].tolist())
    else:
        scheduler.set_timesteps(num_steps)
    # the sampler walks the timesteps in order: starting at index 0 spares the scheduler its data-dependent
    # search for the first timestep (`nonzero`), which torch.export and torch.compile(fullgraph=True) cannot trace
    scheduler.set_begin_index(0)
    return scheduler


PREDICTIONS = ("velocity", "data", "preconditioned")
TIME_SAMPLINGS = ("uniform", "logit_normal")


class OTConditionalFlowMatching:
    """OT-CFM objective and ODE sampler around a swappable estimator network.

    Args:
        sigma_min (`float`): width of the probability path at the data end (t = 1).
        prediction (`str`): what the estimator outputs. `"velocity"`: u_t itself (Lipman et al.), trained with
            the velocity MSE. `"data"`: an estimate of x1, trained with the x1 MSE and turned into the velocity
            the ODE needs, u = (x1_hat - (1 - sigma_min) x_t) / (1 - (1 - sigma_min) t). The data form lets the
            network pass x_t through to its output without representing it: with `"velocity"` a network narrower
            than the data must carry x_t through its hidden width to cancel the noise. `"preconditioned"`: the
            x1 estimate is D = c_skip x_t + c_out F(c_in x_t, t), with a = 1 - (1 - sigma_min) t, n = sqrt(a^2 + t^2),
            c_in = 1 / n, c_skip = t / n^2 (the least-squares estimate of unit-variance data from x_t), c_out = a / n,
            and F trained towards its unit-variance target (a x1 - t x0) / n (Karras et al. 2022's preconditioning,
            on the OT path; the target is the "v" of Salimans & Ho 2022): the skip connection carries x_t, so the
            network only adds what x_t does not tell, at the same scale for every t.
        time_sampling (`str`): the law of t in training: `"uniform"` on [0, 1], or `"logit_normal"`
            (sigmoid of N(0, 1), Esser et al. 2024: more weight on the middle of the path).
    """

    def __init__(self, sigma_min: float = 1e-4, prediction: str = "velocity", time_sampling: str = "uniform"):
        if not 0.0 <= sigma_min < 1.0:
            raise ValueError(f"sigma_min must be in [0, 1), got {sigma_min}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if time_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"time_sampling must be one of {TIME_SAMPLINGS}, got {time_sampling!r}")
        self.sigma_min = sigma_min
        self.prediction = prediction
        self.time_sampling = time_sampling

    def _path(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """t reshaped to broadcast against ``like``, and the noise coefficient a = 1 - (1 - sigma_min) t."""
        t = t.reshape(-1, *([1] * (like.dim() - 1)))
        return t, 1 - (1 - self.sigma_min) * t

    def data_estimate(
        self, estimator: Estimator, x_t: torch.Tensor, t: torch.Tensor, condition: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """The x1 estimate at (x_t, t) of every form; for `"velocity"` it is (1 - sigma_min) x_t + a u_t, exact on
        the OT path (x_t = a x0 + t x1, u = x1 - (1 - sigma_min) x0)."""
        if self.prediction == "data":
            return estimator(x_t, t, condition, mask)
        t_, a = self._path(t, x_t)
        if self.prediction == "velocity":
            return (1 - self.sigma_min) * x_t + a * estimator(x_t, t, condition, mask)
        norm = torch.sqrt(a**2 + t_**2)
        return t_ / norm**2 * x_t + a / norm * estimator(x_t / norm, t, condition, mask)

    def velocity(
        self, estimator: Estimator, x_t: torch.Tensor, t: torch.Tensor, condition: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """dx/dt at (x_t, t): the estimator's output, or (x1_hat - (1 - sigma_min) x_t) / a from an x1 estimate."""
        if self.prediction == "velocity":
            return estimator(x_t, t, condition, mask)
        _, a = self._path(t, x_t)
        return (self.data_estimate(estimator, x_t, t, condition, mask) - (1 - self.sigma_min) * x_t) / a

    def sample_times(
        self, batch: int, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        """Training times t (batch,) in [0, 1] from `time_sampling`."""
        if self.time_sampling == "uniform":
            return torch.rand(batch, generator=generator, device=device, dtype=dtype)
        return torch.sigmoid(torch.randn(batch, generator=generator, device=device, dtype=dtype))

    def interpolate(self, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t for t of shape (batch,): (1 - (1 - sigma_min) t) x0 + t x1."""
        t = t.reshape(-1, *([1] * (x1.dim() - 1)))
        return (1 - (1 - self.sigma_min) * t) * x0 + t * x1

    def target_velocity(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """u_t = x1 - (1 - sigma_min) x0 (constant along the OT path)."""
        return x1 - (1 - self.sigma_min) * x0

    def compute_loss(
        self,
        estimator: Estimator,
        x1: torch.Tensor,
        condition: torch.Tensor,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Masked mean squared error between the estimator's output and its target (velocity or x1).

        Args:
            x1 (`torch.FloatTensor` of shape `(batch, frames, dim)`): data (normalised latents).
            condition (`torch.FloatTensor` of shape `(batch, frames, cond_dim)`): quantised vectors.
            mask (`torch.BoolTensor` of shape `(batch, frames)`, *optional*): valid frames.
        """
        x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
        t = self.sample_times(x1.shape[0], generator, x1.device, x1.dtype)
        x_t = self.interpolate(x0, x1, t)
        if self.prediction == "preconditioned":
            t_, a = self._path(t, x1)
            norm = torch.sqrt(a**2 + t_**2)
            return masked_mse(estimator(x_t / norm, t, condition, mask), (a * x1 - t_ * x0) / norm, mask)
        prediction = estimator(x_t, t, condition, mask)
        target = self.target_velocity(x0, x1) if self.prediction == "velocity" else x1
        return masked_mse(prediction, target, mask)

    @torch.no_grad()
    def sample(
        self,
        estimator: Estimator,
        condition: torch.Tensor,
        shape: tuple[int, ...],
        mask: torch.Tensor | None = None,
        num_steps: int = 10,
        scheduler: str | SchedulerMixin = "euler",
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
        start_time: float = 0.0,
        guidance_interval: tuple[float, float] = (0.0, 1.0),
    ) -> torch.Tensor:
        """Integrate dx/dt = estimator(x, t, condition) from t = 0 (x0 = temperature * noise) to t = 1.

        ``scheduler`` is ``"euler"``, ``"heun"`` or a ready diffusers flow-matching scheduler whose
        ``set_timesteps`` was already called (then ``num_steps`` is ignored). ``noise`` (of shape ``shape``)
        replaces the draw from ``generator`` as the starting point before scaling by ``temperature``.
        ``guidance_scale`` w != 1 is classifier-free guidance: the estimator runs with the condition and with a
        null (all-zero) condition, and its output becomes null + w (conditional - null) (an estimator trained
        with condition dropout knows the null condition). ``start_time`` t0 > 0 starts the ODE late, from
        x_t0 = a(t0) x0 + t0 x1_hat with x1_hat the estimator's x1 estimate at t = 0, i.e. its conditional mean
        (the "MSE prediction"), plus noise (DiffSinger's shallow diffusion, with the flow's own mean estimate);
        the ``num_steps`` Euler steps then cover [t0, 1]. ``guidance_interval`` (lo, hi) limits guidance to the
        steps that start at lo <= t < hi (Kynkaenniemi et al. 2024, "Applying guidance in a limited interval");
        the other steps follow the conditional field alone, at half the cost. With the data form and Euler, the
        last step's output is the x1 estimate itself, so guidance there extrapolates the final sample by
        w (conditional - null): leaving it out removes most of guidance's clipped samples (README, third round).
        Returns x1 of shape ``shape``.
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")
        if not 0.0 <= start_time < 1.0:
            raise ValueError(f"start_time must be in [0, 1), got {start_time}")
        check_guidance_interval(guidance_interval)
        if self.prediction != "velocity" and (scheduler == "heun" or isinstance(scheduler, SCHEDULERS["heun"])):
            # Heun's corrector evaluates the field at the next sigma; its spacing ends at sigma = 1/1000, where the
            # velocity of an x1 estimate is its error divided by 1/1000 (measured: latent error 1.30 vs 0.31, +30 dB)
            raise ValueError(
                f"scheduler='heun' does not suit prediction={self.prediction!r}: its last corrector step evaluates "
                "(x1_hat - x_t) / (1 - t) at t = 0.999 and amplifies the estimate's error 1000 times; use 'euler'"
            )
        if isinstance(scheduler, str):
            scheduler = make_scheduler(scheduler, num_steps, start_time)
        elif start_time > 0:
            raise ValueError("start_time needs a scheduler name; a ready scheduler carries its own sigmas")
        if guidance_scale != 1.0:
            estimator = classifier_free_guidance(estimator, guidance_scale, guidance_interval)
        if noise is None:
            noise = torch.randn(shape, generator=generator, device="cpu", dtype=torch.float32)
        elif tuple(noise.shape) != tuple(shape):
            raise ValueError(f"noise must have shape {tuple(shape)}, got {tuple(noise.shape)}")
        sample = (temperature * noise).to(device=condition.device, dtype=condition.dtype)
        if start_time > 0:
            zero = sample.new_zeros(shape[0])
            mean = self.data_estimate(estimator, sample, zero, condition, mask)
            sample = self.interpolate(sample, mean, zero + start_time)
        num_train_timesteps = scheduler.config.num_train_timesteps
        for timestep in scheduler.timesteps:
            # tensor arithmetic, not float(timestep): no data-dependent read under torch.export / torch.compile
            sigma = timestep.to(device=sample.device, dtype=sample.dtype) / num_train_timesteps
            t = (1.0 - sigma).expand(shape[0])
            velocity = self.velocity(estimator, sample, t, condition, mask)
            sample = scheduler.step(-velocity, timestep, sample).prev_sample  # dx/dsigma = -dx/dt
        return sample


def classifier_free_guidance(estimator: Estimator, guidance_scale: float,
                             interval: tuple[float, float] = (0.0, 1.0)) -> Estimator:
    """The estimator with classifier-free guidance: null + w (conditional - null), null = the all-zero condition,
    where lo <= t < hi (`interval`); the conditional output alone elsewhere.

    Both branches run as one batch of 2 x batch. Every form's output is affine in what it estimates (velocity,
    x1, or the preconditioned residual), so guiding the raw output guides the velocity the ODE follows. The
    interval's ends are compared with a tolerance of 1e-6, since the scheduler's float32 times land a few ulps off
    their decimal values (t = 0.8 is 0.80000001).
    """
    lo, hi = check_guidance_interval(interval)

    def guided(x_t: torch.Tensor, t: torch.Tensor, condition: torch.Tensor, mask: torch.Tensor | None):
        inside = (t >= lo - 1e-6) & (t < hi - 1e-6)
        if not bool(inside.any()):
            return estimator(x_t, t, condition, mask)
        both = estimator(
            torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([condition, torch.zeros_like(condition)]),
            None if mask is None else torch.cat([mask, mask]),
        )
        conditional, null = both.chunk(2)
        guided_output = null + guidance_scale * (conditional - null)
        return torch.where(inside.reshape(-1, *([1] * (conditional.dim() - 1))), guided_output, conditional)

    return guided


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error over valid frames (mask (batch, frames)) and all feature dimensions."""
    error = (prediction - target).pow(2)
    if mask is None:
        return error.mean()
    weights = mask.to(error.dtype)[..., None]
    return (error * weights).sum() / (weights.sum().clamp(min=1.0) * error.shape[-1])
