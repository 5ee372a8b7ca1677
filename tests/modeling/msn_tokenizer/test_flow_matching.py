import math

import pytest
import torch

from soundlm.modeling.msn_tokenizer import OTConditionalFlowMatching, make_scheduler


def test_interpolation_and_target_match_hand_computation():
    cfm = OTConditionalFlowMatching(sigma_min=0.1)
    x0, x1, t = torch.tensor([[[2.0]]]), torch.tensor([[[5.0]]]), torch.tensor([0.25])
    # x_t = (1 - 0.9 * 0.25) * 2 + 0.25 * 5 = 1.55 + 1.25
    assert cfm.interpolate(x0, x1, t).item() == pytest.approx(2.8)
    # u = 5 - 0.9 * 2
    assert cfm.target_velocity(x0, x1).item() == pytest.approx(3.2)
    # the target is the time derivative of the path
    eps = 1e-3
    numeric = (cfm.interpolate(x0, x1, t + eps) - cfm.interpolate(x0, x1, t - eps)) / (2 * eps)
    assert numeric.item() == pytest.approx(3.2, rel=1e-3)


def test_compute_loss_is_mse_to_target_for_the_drawn_noise_and_time():
    cfm = OTConditionalFlowMatching(sigma_min=1e-4)
    x1 = torch.randn(3, 4, 2)
    seen = {}

    def estimator(x_t, t, condition, mask):
        seen["x_t"], seen["t"] = x_t, t
        return torch.zeros_like(x_t)

    loss = cfm.compute_loss(estimator, x1, condition=None, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(x1.shape, generator=generator)
    t = torch.rand(3, generator=generator)
    assert torch.allclose(seen["t"], t)
    assert torch.allclose(seen["x_t"], cfm.interpolate(x0, x1, t))
    assert loss.item() == pytest.approx(cfm.target_velocity(x0, x1).pow(2).mean().item(), rel=1e-5)


def _integrate(velocity, x0, scheduler, steps):
    """Integrate dx/dt = velocity(x, t) from x(0) = x0 to t = 1 through the sampler; also return the times seen."""
    cfm = OTConditionalFlowMatching()
    times = []

    def estimator(x, t, condition, mask):
        times.append(t[0].item())
        return velocity(x, t)

    out = cfm.sample(estimator, torch.zeros(1, 1, 1), (1, 1, 1), num_steps=steps, scheduler=scheduler,
                     noise=torch.full((1, 1, 1), x0))
    return out.item(), times


def test_scheduler_direction_constant_velocity_is_exact():
    # dx/dt = 3 from x(0) = 1 gives x(1) = 4 exactly; a sign error in the sigma mapping gives -2.
    for scheduler in ("euler", "heun"):
        value, times = _integrate(lambda x, t: torch.full_like(x, 3.0), 1.0, scheduler, 5)
        assert value == pytest.approx(4.0, abs=1e-5), scheduler
        assert times[0] == pytest.approx(0.0)  # integration starts at the noise end t = 0
        assert all(0.0 <= s <= 1.0 for s in times)


def test_euler_on_exponential_ode_matches_closed_form():
    # dx/dt = x from x(0) = 1: exact e; uniform Euler with N steps gives (1 + 1/N)^N.
    value, times = _integrate(lambda x, t: x, 1.0, "euler", 10)
    assert value == pytest.approx((1 + 1 / 10) ** 10, rel=1e-5)
    assert times == pytest.approx([k / 10 for k in range(10)], abs=1e-6)


def test_heun_is_second_order_on_time_dependent_ode():
    # dx/dt = 2t from x(0) = 0: x(1) = 1. Heun integrates a linear-in-t field exactly per step.
    value, _ = _integrate(lambda x, t: 2 * t.reshape(-1, 1, 1).expand_as(x), 0.0, "heun", 8)
    assert value == pytest.approx(1.0, abs=1e-4)
    # and on dx/dt = x it is far closer to e than Euler with the same number of steps
    heun, _ = _integrate(lambda x, t: x, 1.0, "heun", 16)
    euler, _ = _integrate(lambda x, t: x, 1.0, "euler", 16)
    assert abs(heun - math.e) < abs(euler - math.e) / 10


def test_make_scheduler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scheduler must be one of"):
        make_scheduler("dpm", 4)
    with pytest.raises(ValueError, match="num_steps must be a positive integer"):
        make_scheduler("euler", 0)
    with pytest.raises(ValueError, match="sigma_min"):
        OTConditionalFlowMatching(sigma_min=1.0)


@pytest.mark.parametrize("sigma_min", [0.0, 1e-4])
def test_data_prediction_of_the_true_sample_integrates_to_it(sigma_min):
    """An estimator that always answers x1 (the data form): its velocity (x1 - (1 - s) x_t) / (1 - (1 - s) t) is the
    OT path's own, so the sampler lands on x1 from any noise; with sigma_min = 0 the straight path is exact."""
    flow = OTConditionalFlowMatching(sigma_min=sigma_min, prediction="data")
    target = torch.tensor([[[0.5, -2.0, 3.0]]])
    estimator = lambda x, t, condition, mask: target.expand_as(x)  # noqa: E731
    sample = flow.sample(estimator, target, tuple(target.shape), num_steps=6, scheduler="euler",
                         generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sample, target, atol=1e-3 if sigma_min else 1e-5, rtol=0)
    with pytest.raises(ValueError, match="scheduler='heun' does not suit prediction='data'"):
        flow.sample(estimator, target, tuple(target.shape), num_steps=6, scheduler="heun")
    # its training loss is the x1 MSE: zero for the oracle, the squared error otherwise
    assert flow.compute_loss(estimator, target, target) == pytest.approx(0.0)
    off = lambda x, t, condition, mask: (target + 1.0).expand_as(x)  # noqa: E731
    assert flow.compute_loss(off, target, target) == pytest.approx(1.0)


def test_data_and_velocity_forms_agree_on_the_velocity():
    flow_v = OTConditionalFlowMatching(sigma_min=1e-4)
    flow_d = OTConditionalFlowMatching(sigma_min=1e-4, prediction="data")
    x0, x1 = torch.randn(3, 4, 2), torch.randn(3, 4, 2)
    t = torch.tensor([0.0, 0.3, 0.9])
    x_t = flow_v.interpolate(x0, x1, t)
    from_data = flow_d.velocity(lambda x, tt, c, m: x1, x_t, t, None, None)
    torch.testing.assert_close(from_data, flow_v.target_velocity(x0, x1), atol=1e-5, rtol=1e-5)


def test_logit_normal_times_concentrate_in_the_middle():
    flow = OTConditionalFlowMatching(time_sampling="logit_normal")
    t = flow.sample_times(20000, torch.Generator().manual_seed(0), torch.device("cpu"), torch.float32)
    assert 0 < float(t.min()) and float(t.max()) < 1
    assert abs(float(t.mean()) - 0.5) < 0.01 and float(((t > 0.25) & (t < 0.75)).float().mean()) > 0.6
    with pytest.raises(ValueError, match="prediction must be one of"):
        OTConditionalFlowMatching(prediction="noise")
    with pytest.raises(ValueError, match="time_sampling must be one of"):
        OTConditionalFlowMatching(time_sampling="beta")


def test_preconditioned_oracle_lands_on_the_data_and_has_zero_loss():
    """The oracle residual F = (x1 - c_skip x_t) / c_out (computed from the scaled input it is given) makes the
    data estimate exactly x1: the sampler lands there, and it is also the training target."""
    flow = OTConditionalFlowMatching(sigma_min=1e-4, prediction="preconditioned")
    target = torch.tensor([[[0.5, -2.0, 3.0], [1.0, 0.0, -1.0]]])

    def oracle(scaled, t, condition, mask):
        t_, a = flow._path(t, scaled)
        norm = torch.sqrt(a**2 + t_**2)
        x_t = scaled * norm
        return (target - t_ / norm**2 * x_t) / (a / norm)

    sample = flow.sample(oracle, target, tuple(target.shape), num_steps=5, scheduler="euler",
                         generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sample, target, atol=1e-3, rtol=0)
    assert flow.compute_loss(oracle, target, target, generator=torch.Generator().manual_seed(1)) < 1e-8
    # the residual target has unit variance at every t for unit-variance data (what the preconditioning is for)
    x1 = torch.randn(4000, 1, 1)
    for t in (0.05, 0.5, 0.95):
        x0 = torch.randn(4000, 1, 1)
        t_, a = flow._path(torch.full((4000,), t), x1)
        residual = (a * x1 - t_ * x0) / torch.sqrt(a**2 + t_**2)
        assert float(residual.std()) == pytest.approx(1.0, abs=0.05)


@pytest.mark.reliability(
    "the flow-matching sampler at every step count 1..64, temperature 0 and 1, every prediction form",
    "finite latents and audio (random weights, the least tame)",
)
@pytest.mark.parametrize("prediction", ["velocity", "data", "preconditioned"])
def test_decoding_is_finite_for_every_step_count_from_1_to_64(prediction):
    """A tokenizer's decoder, untrained (random weights, the least tame), gives finite latents and audio for every
    Euler step count 1..64, from noise of temperature 1 and 0; Heun too for the velocity form (the others refuse it)."""
    from helpers import tiny_config_kwargs

    from soundlm import MSNTokenizerConfig, MSNTokenizerModel

    torch.manual_seed(0)
    model = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs(flow_prediction=prediction))).eval()
    codes = torch.randint(0, model.config.codebook_size, (1, 1, 12), generator=torch.Generator().manual_seed(1))
    schedulers = ["euler", "heun"] if prediction == "velocity" else ["euler"]
    for scheduler in schedulers:
        for steps in range(1, 65):
            for temperature in (1.0, 0.0):
                latents = model.decode_latents(codes, num_steps=steps, scheduler=scheduler, temperature=temperature,
                                               generator=torch.Generator().manual_seed(steps))
                assert torch.isfinite(latents).all(), (scheduler, steps, temperature)
    audio = model.decode(codes, num_steps=64).audio_values
    assert torch.isfinite(audio).all()


def test_guidance_extrapolates_from_the_null_condition():
    """Classifier-free guidance with a velocity that is the condition itself: the null (all-zero) condition gives
    0, so the guided velocity is w * c and Euler lands exactly on x0 + w c; w = 1 leaves the estimator untouched."""
    from soundlm.modeling.msn_tokenizer.flow_matching import classifier_free_guidance

    flow = OTConditionalFlowMatching(sigma_min=0.0)
    condition = torch.tensor([[[1.0, -2.0], [0.5, 3.0]]])
    calls = []

    def estimator(x, t, c, mask):
        calls.append(c.shape[0])
        return c.clone()

    noise = torch.tensor([[[0.1, 0.2], [0.3, 0.4]]])
    for scale in (0.0, 1.0, 2.5):
        calls.clear()
        sample = flow.sample(estimator, condition, (1, 2, 2), num_steps=4, noise=noise, guidance_scale=scale)
        torch.testing.assert_close(sample, noise + scale * condition)
        assert set(calls) == ({1} if scale == 1.0 else {2})  # one call of 2 x batch per step when guiding
    mask = torch.tensor([[True, False]])
    guided = classifier_free_guidance(lambda x, t, c, m: c + m[..., None].float(), 3.0)
    # null + 3 (conditional - null): the mask term is in both branches and stays once
    torch.testing.assert_close(guided(noise, torch.zeros(1), condition, mask), 3 * condition + mask[..., None].float())
    with pytest.raises(ValueError, match="guidance_scale must be >= 0"):
        flow.sample(estimator, condition, (1, 2, 2), guidance_scale=-1.0)


def test_guidance_interval_guides_only_the_steps_that_start_inside_it():
    """With velocity = condition, each guided Euler step of 1/4 adds w c / 4 and each unguided one c / 4; the null
    branch runs only on guided steps. [0.25, 0.75) holds the steps starting at t = 0.25 and 0.5 (float32 times
    a few ulps off included), so the sample is x0 + (2 w + 2) c / 4."""
    flow = OTConditionalFlowMatching(sigma_min=0.0)
    condition = torch.tensor([[[1.0, -2.0], [0.5, 3.0]]])
    noise = torch.tensor([[[0.1, 0.2], [0.3, 0.4]]])
    calls = []

    def estimator(x, t, c, mask):
        calls.append((round(float(t[0]), 2), c.shape[0]))
        return c.clone()

    sample = flow.sample(estimator, condition, (1, 2, 2), num_steps=4, noise=noise, guidance_scale=3.0,
                         guidance_interval=(0.25, 0.75))
    torch.testing.assert_close(sample, noise + (2 * 3.0 + 2) / 4 * condition)
    assert calls == [(0.0, 1), (0.25, 2), (0.5, 2), (0.75, 1)]
    calls.clear()
    everywhere = flow.sample(estimator, condition, (1, 2, 2), num_steps=4, noise=noise, guidance_scale=3.0,
                             guidance_interval=(0.0, 1.0))
    torch.testing.assert_close(everywhere, noise + 3.0 * condition)
    assert [size for _, size in calls] == [2, 2, 2, 2]
    for bad in [(0.5, 0.5), (-0.1, 0.5), (0.2, 1.5), (0.3,), "0.1,0.9"]:
        with pytest.raises(ValueError, match="guidance_interval"):
            flow.sample(estimator, condition, (1, 2, 2), guidance_scale=2.0, guidance_interval=bad)


def test_guidance_interval_is_a_config_field_that_decode_uses():
    from soundlm.modeling.msn_tokenizer import MSNTokenizerConfig

    config = MSNTokenizerConfig(guidance_interval=(0.1, 0.9))
    assert MSNTokenizerConfig.from_dict(config.to_dict()).guidance_interval == [0.1, 0.9]
    assert MSNTokenizerConfig().guidance_interval == [0.0, 1.0]
    with pytest.raises(ValueError, match="guidance_interval must satisfy"):
        MSNTokenizerConfig(guidance_interval=(0.9, 0.1))


@pytest.mark.parametrize("prediction", ["velocity", "data"])
def test_late_start_begins_on_the_path_from_the_conditional_mean(prediction):
    """start_time t0: x_t0 = (1 - (1 - s) t0) x0 + t0 x1_hat(x0, 0), then Euler over [t0, 1] only. An oracle that
    knows x1 lands on it from t0 in either form; the first time the ODE sees is t0."""
    flow = OTConditionalFlowMatching(sigma_min=0.0, prediction=prediction)
    target = torch.tensor([[[0.5, -2.0, 3.0]]])
    noise = torch.tensor([[[1.0, 1.0, -1.0]]])
    times = []

    def oracle(x, t, c, m):
        times.append(round(float(t[0]), 6))
        if prediction == "data":
            return target.expand_as(x)
        return (target - x) / (1 - t.reshape(-1, 1, 1))  # the OT velocity towards x1 from x at time t

    sample = flow.sample(oracle, target, (1, 1, 3), num_steps=4, noise=noise, start_time=0.5)
    torch.testing.assert_close(sample, target, atol=1e-5, rtol=0)
    assert times == [0.0, 0.5, 0.625, 0.75, 0.875]  # the mean estimate at t = 0, then 4 steps over [0.5, 1]
    # the velocity form's x1 estimate is exact on the OT path
    x0, x1 = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    flow_v = OTConditionalFlowMatching(sigma_min=1e-3)
    t = torch.tensor([0.2, 0.7])
    x_t = flow_v.interpolate(x0, x1, t)
    estimate = flow_v.data_estimate(lambda x, tt, c, m: flow_v.target_velocity(x0, x1), x_t, t, None, None)
    torch.testing.assert_close(estimate, x1, atol=1e-5, rtol=1e-5)


def test_late_start_scheduler_and_refusals():
    sigmas = make_scheduler("euler", 4, start_time=0.5).sigmas
    torch.testing.assert_close(sigmas, torch.tensor([0.5, 0.375, 0.25, 0.125, 0.0]))
    with pytest.raises(ValueError, match="needs scheduler='euler'"):
        make_scheduler("heun", 4, start_time=0.5)
    with pytest.raises(ValueError, match=r"start_time must be in \[0, 1\)"):
        make_scheduler("euler", 4, start_time=1.0)
    flow = OTConditionalFlowMatching()
    with pytest.raises(ValueError, match="start_time needs a scheduler name"):
        flow.sample(lambda x, t, c, m: x, torch.zeros(1, 1, 1), (1, 1, 1), scheduler=make_scheduler("euler", 2),
                    start_time=0.5)
