"""Fréchet distance between two sets of embeddings, and Fréchet Audio Distance (FAD) with FAD-infinity.

FAD (Kilgour et al. 2019) fits a Gaussian to the embeddings of each audio set and reports the Fréchet (2-Wasserstein)
distance between the two Gaussians:

    FD = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))

The matrix square root is taken as the square root of the eigenvalues of ``sqrt(S_a) S_b sqrt(S_a)``, which is
symmetric positive semi-definite, so the result is real without discarding an imaginary part (scipy's `sqrtm`
route, which fadtk uses, needs that clean-up). Computed in float64.

FD is biased upwards for finite sets (it shrinks as sets grow). FAD-infinity (Gui et al. 2024, fadtk's
``fad-inf``) extrapolates to infinitely many samples: compute FD on random subsets of several sizes N, fit
``FD(N) = FD_inf + slope / N`` by least squares and report the intercept ``FD_inf``.

The embeddings come from whichever audio model the caller uses; `fad` names it in its result, and every FAD this
package prints carries that name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FADResult", "frechet_distance", "frechet_distance_inf", "gaussian_statistics", "fad"]


def _check_embeddings(embeddings: Any, name: str) -> np.ndarray:
    if hasattr(embeddings, "detach"):  # torch tensors
        embeddings = embeddings.detach().cpu().numpy()
    embeddings = np.asarray(embeddings)
    if embeddings.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a numeric array of shape (samples, dims), got dtype {embeddings.dtype}")
    if embeddings.ndim != 2:
        raise ValueError(f"{name} must have shape (samples, dims), got {embeddings.shape}")
    samples, dims = embeddings.shape
    if samples < 2:
        raise ValueError(f"{name} needs at least 2 embeddings for a covariance, got {samples}")
    if not np.isfinite(embeddings).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(embeddings)).sum())} NaN or infinite values")
    if samples <= dims:
        raise ValueError(
            f"{name} has {samples} embeddings of {dims} dims: a covariance needs more embeddings than dims (its "
            "estimate is singular otherwise, and the Fréchet distance is dominated by that); embed more audio, or "
            "embed with a shorter hop so that each clip gives more frames"
        )
    return embeddings.astype(np.float64)


def gaussian_statistics(embeddings: Any, name: str = "embeddings") -> tuple[np.ndarray, np.ndarray]:
    """Mean (dims,) and unbiased covariance (dims, dims) of ``embeddings`` (samples, dims), float64."""
    embeddings = _check_embeddings(embeddings, name)
    return embeddings.mean(axis=0), np.cov(embeddings, rowvar=False).reshape(embeddings.shape[1], -1)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(
    mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray
) -> float:
    """Fréchet distance between N(mu_a, sigma_a) and N(mu_b, sigma_b); 0 for identical Gaussians."""
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    sigma_a, sigma_b = np.atleast_2d(np.asarray(sigma_a, np.float64)), np.atleast_2d(np.asarray(sigma_b, np.float64))
    dims = mu_a.shape[0]
    if mu_b.shape != (dims,) or sigma_a.shape != (dims, dims) or sigma_b.shape != (dims, dims):
        raise ValueError(f"statistics do not match: mu_a {mu_a.shape}, mu_b {mu_b.shape}, sigma_a {sigma_a.shape}, "
                         f"sigma_b {sigma_b.shape}; expected ({dims},) means and ({dims}, {dims}) covariances")
    root_a = _psd_sqrt(sigma_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ sigma_b @ root_a), 0.0, None)).sum()
    distance = float(np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * cross)
    return max(distance, 0.0)


def frechet_distance_inf(
    embeddings: Any,
    reference: Any,
    sizes: Sequence[int] | None = None,
    repeats: int = 1,
    seed: int = 0,
) -> tuple[float, dict[int, float]]:
    """FAD-infinity: FD on random subsets of ``embeddings`` of each size in ``sizes`` (against all of
    ``reference``), extrapolated to 1/N = 0 by a least-squares line. Returns (FD_inf, {size: mean FD}).

    ``sizes`` defaults to 15 sizes evenly spaced from half the set to the whole set (fadtk's choice of range).
    """
    embeddings = _check_embeddings(embeddings, "embeddings")
    reference_stats = gaussian_statistics(reference, "reference")
    total = embeddings.shape[0]
    if sizes is None:
        sizes = sorted({int(n) for n in np.linspace(max(embeddings.shape[1] + 1, total // 2), total, 15)})
    sizes = list(sizes)
    dims = embeddings.shape[1]
    if len(sizes) < 2 or any(not dims < n <= total for n in sizes):
        raise ValueError(f"sizes must hold at least 2 subset sizes in ({dims}, {total}] (more than the {dims} dims), "
                         f"got {sizes}")
    rng = np.random.default_rng(seed)
    by_size = {}
    for size in sizes:
        values = []
        for _ in range(repeats):
            subset = embeddings[rng.choice(total, size=size, replace=False)]
            values.append(frechet_distance(*gaussian_statistics(subset), *reference_stats))
        by_size[size] = float(np.mean(values))
    inverse = np.array([1.0 / n for n in by_size])
    slope, intercept = np.polyfit(inverse, np.array(list(by_size.values())), 1)
    return float(intercept), by_size


@dataclass
class FADResult:
    """A Fréchet Audio Distance and what made it.

    Args:
        fad (`float`): FD between the Gaussians of the two embedding sets.
        fad_inf (`float` or None): the FAD-infinity extrapolation, when asked for.
        model (`str`): the embedding model (e.g. "YAMNet (AudioSet, 1024-d)").
        num_samples (`int`), num_reference (`int`): embeddings in each set.
    """

    fad: float
    fad_inf: float | None
    model: str
    num_samples: int
    num_reference: int

    def __str__(self) -> str:
        inf = f", FAD-inf {self.fad_inf:.3f}" if self.fad_inf is not None else ""
        return f"FAD {self.fad:.3f}{inf} ({self.model}; {self.num_samples} vs {self.num_reference} embeddings)"


def fad(embeddings: Any, reference: Any, model: str, with_inf: bool = False, seed: int = 0) -> FADResult:
    """FAD of ``embeddings`` (samples, dims) against ``reference`` (samples, dims), both from the embedding model
    named by ``model`` (required, so that no FAD is ever printed without it)."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError("model must name the embedding model that made the embeddings (e.g. 'YAMNet')")
    stats, reference_stats = gaussian_statistics(embeddings, "embeddings"), gaussian_statistics(reference, "reference")
    if stats[0].shape != reference_stats[0].shape:
        raise ValueError(f"embeddings have {stats[0].shape[0]} dims but reference has {reference_stats[0].shape[0]}")
    value = frechet_distance(*stats, *reference_stats)
    value_inf = frechet_distance_inf(embeddings, reference, seed=seed)[0] if with_inf else None
    return FADResult(value, value_inf, model, len(np.asarray(embeddings)), len(np.asarray(reference)))
