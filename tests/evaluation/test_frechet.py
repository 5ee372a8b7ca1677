"""evaluation/frechet.py: the closed form for Gaussians, FAD-infinity's limit, bad input."""

import numpy as np
import pytest

from soundlm.evaluation.frechet import fad, frechet_distance, frechet_distance_inf, gaussian_statistics


def _spd(rng, dims, eigenvalues=None):
    basis, _ = np.linalg.qr(rng.normal(size=(dims, dims)))
    values = rng.uniform(0.2, 3.0, dims) if eigenvalues is None else eigenvalues
    return basis, (basis * values) @ basis.T


def test_closed_form_for_gaussians_that_commute():
    rng = np.random.default_rng(0)
    basis, sigma_a = _spd(rng, 6)
    values_b = rng.uniform(0.2, 3.0, 6)
    sigma_b = (basis * values_b) @ basis.T  # same eigenvectors: (S_a S_b)^(1/2) = S_a^(1/2) S_b^(1/2)
    mu_a, mu_b = rng.normal(size=6), rng.normal(size=6)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum(
        (np.sqrt(np.diag(basis.T @ sigma_a @ basis)) - np.sqrt(values_b)) ** 2
    )
    assert frechet_distance(mu_a, sigma_a, mu_b, sigma_b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu_a, sigma_a, mu_a, sigma_a) == pytest.approx(0.0, abs=1e-9)
    # one dimension: (mu_a - mu_b)^2 + (s_a - s_b)^2
    one_dim = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]]))
    assert one_dim == pytest.approx(5.0)


def test_general_covariances_match_the_trace_of_the_matrix_square_root():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    _, sigma_a = _spd(rng, 5)
    _, sigma_b = _spd(rng, 5)
    mu_a, mu_b = rng.normal(size=5), rng.normal(size=5)
    root = scipy_linalg.sqrtm(sigma_a @ sigma_b).real
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a + sigma_b - 2 * root)
    assert frechet_distance(mu_a, sigma_a, mu_b, sigma_b) == pytest.approx(expected, rel=1e-8)


def test_samples_converge_to_the_closed_form():
    rng = np.random.default_rng(2)
    a = rng.normal(0.0, 1.0, size=(40000, 3))
    b = rng.normal(0.5, 2.0, size=(40000, 3))
    truth = 3 * 0.5**2 + 3 * (2.0 - 1.0) ** 2
    assert frechet_distance(*gaussian_statistics(a), *gaussian_statistics(b)) == pytest.approx(truth, rel=0.02)


def test_fad_infinity_extrapolates_to_the_known_limit():
    """Samples of N(0, I) against a reference estimated from a huge set of the same law: the true distance is 0,
    but FD on N samples is biased by about d^2 / (2N) (the covariance estimate's noise); FAD-inf removes it."""
    rng = np.random.default_rng(3)
    dims = 16
    samples = rng.normal(size=(800, dims))
    reference = rng.normal(size=(200000, dims))
    full = frechet_distance(*gaussian_statistics(samples), *gaussian_statistics(reference))
    limit, by_size = frechet_distance_inf(samples, reference, sizes=[100, 200, 400, 800], repeats=8)
    assert full > 0.04 and by_size[100] > 4 * full  # the finite-sample bias, shrinking with N
    assert abs(limit) < full / 3  # the extrapolation removes most of it
    result = fad(samples, reference, model="synthetic Gaussian", with_inf=True)
    assert result.fad == pytest.approx(full) and "synthetic Gaussian" in str(result)


@pytest.mark.parametrize(
    ("embeddings", "reference", "message"),
    [
        (np.full((20, 3), np.nan), np.zeros((20, 3)), "NaN or infinite"),
        (np.zeros((20, 3)), np.zeros((20, 4)), "3 dims but reference has 4"),
        (np.zeros((5, 8)), np.zeros((50, 8)), "5 embeddings of 8 dims: a covariance needs more embeddings"),
        (np.zeros((1, 2)), np.zeros((50, 2)), "at least 2 embeddings"),
        (np.zeros(20), np.zeros((50, 2)), r"shape \(samples, dims\)"),
        ([], np.zeros((50, 2)), r"shape \(samples, dims\)"),
    ],
)
def test_bad_input_is_refused_with_the_numbers(embeddings, reference, message):
    with pytest.raises(ValueError, match=message):
        fad(embeddings, reference, model="m")


def test_fad_must_name_its_embedding_model():
    with pytest.raises(ValueError, match="model must name the embedding model"):
        fad(np.random.default_rng(0).normal(size=(10, 2)), np.random.default_rng(1).normal(size=(10, 2)), model="")
