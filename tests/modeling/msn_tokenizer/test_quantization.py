import pytest
import torch

from soundlm.modeling.msn_tokenizer import VectorQuantizer


def make_quantizer(**kwargs):
    torch.manual_seed(0)
    quantizer = VectorQuantizer(codebook_size=16, codebook_dim=4, **kwargs)
    quantizer.reset_parameters()
    return quantizer


def test_nearest_code_lookup_matches_brute_force():
    quantizer = make_quantizer()
    latents = torch.randn(3, 5, 4)
    codes = quantizer.nearest_codes(latents)
    brute = torch.cdist(latents.reshape(-1, 4), quantizer.codebook).argmin(-1).reshape(3, 5)
    assert torch.equal(codes, brute)
    assert codes.shape == (3, 5) and codes.dtype == torch.long


def test_straight_through_gradient_is_identity_and_codebook_gets_none():
    quantizer = make_quantizer().eval()
    latents = torch.randn(2, 6, 4, requires_grad=True)
    out = quantizer(latents)
    assert torch.allclose(out.quantized, quantizer.codebook[out.codes])
    upstream = torch.randn_like(out.quantized)
    (out.quantized * upstream).sum().backward()
    assert torch.equal(latents.grad, upstream)
    assert not quantizer.codebook.requires_grad


def test_commitment_loss_pulls_encoder_towards_codes():
    quantizer = make_quantizer().eval()
    latents = torch.randn(2, 6, 4, requires_grad=True)
    out = quantizer(latents)
    expected = (latents - quantizer.codebook[out.codes]).pow(2).mean()
    assert torch.allclose(out.commitment_loss, expected)
    out.commitment_loss.backward()
    expected_grad = 2 * (latents - quantizer.codebook[out.codes]).detach() / latents.numel()
    assert torch.allclose(latents.grad, expected_grad)


def test_ema_update_moves_used_code_towards_assigned_mean():
    quantizer = make_quantizer(decay=0.5, dead_code_threshold=0.0, epsilon=0.0)
    quantizer.ema_cluster_size.fill_(1.0)  # all codes alive
    quantizer.ema_embed_sum.copy_(quantizer.codebook)  # consistent with a count of 1 per code
    target = quantizer.codebook[3].clone() + 0.01
    latents = target.expand(1, 4, 4).clone()
    out = quantizer.train()(latents)
    assert set(out.codes.flatten().tolist()) == {3}
    # counts: 0.5 * 1 + 0.5 * 4 = 2.5; sums: 0.5 * c + 0.5 * 4 * target
    total = quantizer.ema_cluster_size.sum()
    smoothed = quantizer.ema_cluster_size[3] / total * total
    expected = (0.5 * (target - 0.01) + 0.5 * 4 * target) / smoothed
    assert torch.allclose(quantizer.codebook[3], expected, atol=1e-6)
    assert quantizer.ema_cluster_size[3] == pytest.approx(2.5)
    untouched = [k for k in range(16) if k != 3]
    assert quantizer.ema_cluster_size[untouched].allclose(torch.full((15,), 0.5))


def test_dead_codes_restart_from_batch_vectors_and_stats_are_reported():
    # 100 frames add at most 100 * (1 - 0.99) = 1 to a fresh count of 0: below 2, so every code restarts
    quantizer = make_quantizer(dead_code_threshold=2.0).train()
    latents = torch.randn(2, 50, 4) * 5 + 20  # far from every N(0, 1) code
    out = quantizer(latents)
    assert out.num_restarted == 16
    assert torch.equal(quantizer.ema_cluster_size, torch.full((16,), 2.0))
    batch_vectors = latents.reshape(-1, 4)
    for code in quantizer.codebook:
        assert torch.isclose(batch_vectors, code).all(-1).any()
    assert 1.0 <= out.perplexity.item() <= 16.0
    assert 0 < out.usage.item() <= 1.0
    eval_out = quantizer.eval()(latents)
    assert eval_out.num_restarted == 0


def test_mask_excludes_padding_from_statistics():
    quantizer = make_quantizer(dead_code_threshold=0.0).train()
    latents = torch.randn(1, 8, 4)
    mask = torch.tensor([[True] * 3 + [False] * 5])
    quantizer(latents, mask)
    assert quantizer.ema_cluster_size.sum().item() == pytest.approx(3 * (1 - quantizer.decay))


def test_check_codes_rejects_out_of_range_and_float_codes():
    quantizer = make_quantizer()
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 16\)"):
        quantizer.check_codes(torch.tensor([[0, 16]]))
    with pytest.raises(ValueError, match="codes must lie"):
        quantizer.check_codes(torch.tensor([[-1]]))
    with pytest.raises(TypeError, match="integer tensor"):
        quantizer.check_codes(torch.tensor([[0.0]]))
    quantizer.check_codes(torch.tensor([[0, 15]]))  # in range: no error


def test_codebook_statistics_stay_float32_and_unrounded_under_a_bf16_cast():
    quantizer = make_quantizer().train()
    quantizer(torch.randn(2, 8, 4))  # some EMA state
    before = {name: getattr(quantizer, name).clone() for name in ("codebook", "ema_cluster_size", "ema_embed_sum")}
    quantizer.to(torch.bfloat16)
    for name, value in before.items():
        assert getattr(quantizer, name).dtype == torch.float32 and torch.equal(getattr(quantizer, name), value), name
    output = quantizer(torch.randn(2, 8, 4, dtype=torch.bfloat16))  # bf16 input: float32 statistics updated
    assert output.quantized.dtype == torch.bfloat16 and quantizer.ema_embed_sum.dtype == torch.float32
