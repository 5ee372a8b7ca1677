"""The LM-MSN audio LLM: new rows, LoRA, frozen text rows, the loss against a hand computation, saving, merging."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_llama_config, tiny_text_tokenizer
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoProcessor, LlamaForCausalLM

from soundlm.modeling.lm_msn import (
    AudioTokenProcessor,
    LMMSNConfig,
    example_losses,
    init_code_rows_from_codebook,
    init_new_embedding_rows,
    lm_msn_loss,
    load_audio_llm,
    merge_audio_llm,
    naive_lm_msn_loss,
    prepare_audio_llm,
)
from soundlm.processing.tasks import lm_msn_chat_example, lm_msn_pretraining_example, row_rng

RECIPE = LMMSNConfig(lora_rank=4, lora_alpha=8, lora_dropout=0.0)


def build(tied: bool = True, codebook_size: int = 16, seed: int = 0):
    processor = AudioTokenProcessor(tiny_text_tokenizer(), codebook_size=codebook_size)
    torch.manual_seed(seed)
    base = LlamaForCausalLM(tiny_llama_config(tie_word_embeddings=tied))
    return prepare_audio_llm(base, processor, RECIPE), processor


def batch_of(processor, n: int = 3):
    examples = [lm_msn_pretraining_example([i, i + 1, 3], f"rain number {i}", row_rng(0, str(i))) for i in range(n)]
    examples.append(lm_msn_chat_example("captioning", [4, 5], caption="a dog barks", rng=row_rng(0, "c")))
    return processor(examples)


@pytest.mark.parametrize("tied", [True, False])
def test_only_lora_and_new_rows_train_and_text_rows_stay_bit_identical(tied):
    model, processor = build(tied)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name or "trainable_tokens_delta" in name for name in trainable)
    assert sum("trainable_tokens_delta" in name for name in trainable) == (1 if tied else 2)
    base = model.get_base_model()
    embed_before = base.get_input_embeddings().weight.detach().clone()
    head_before = base.get_output_embeddings().weight.detach().clone()
    batch = batch_of(processor)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        lm_msn_loss(model, **batch, chunk_size=5).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    text = slice(0, 300)
    embed_after = base.get_input_embeddings().weight.detach()
    head_after = base.get_output_embeddings().weight.detach()
    assert torch.equal(embed_after[text], embed_before[text]) and torch.equal(head_after[text], head_before[text])
    assert not torch.equal(embed_after[300:], embed_before[300:])
    assert not torch.equal(head_after[300:], head_before[300:])


def test_new_rows_start_inside_the_distribution_of_the_old_rows():
    weight = torch.randn(4000, 8) * torch.tensor([1.0, 2, 3, 4, 1, 1, 1, 1]) + 5.0
    init_new_embedding_rows(weight, 2000, "mean_cov", torch.Generator().manual_seed(0))
    old, new = weight[:2000], weight[2000:]
    assert torch.allclose(new.mean(0), old.mean(0), atol=0.2)
    assert torch.allclose(new.std(0), old.std(0), rtol=0.1)
    init_new_embedding_rows(weight, 2000, "mean")
    assert torch.allclose(weight[2000:], old.mean(0).expand(2000, -1), atol=1e-5)


def test_codebook_rows_keep_the_codebook_neighbours_and_the_old_rows_statistics():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(3000, 16, generator=generator) * torch.linspace(0.5, 3, 16) + 2.0
    codebook = torch.randn(1000, 6, generator=generator) @ torch.randn(6, 6, generator=generator)  # correlated dims
    codebook[1] = codebook[0] + 1e-3  # a pair of near-identical codes
    ids = list(range(2000, 3000))
    init_code_rows_from_codebook(weight, 2000, ids, codebook, torch.Generator().manual_seed(1))
    old, new = weight[:2000], weight[2000:]
    assert torch.allclose(new.mean(0), old.mean(0), atol=0.3)
    assert torch.allclose(new.std(0), old.std(0), rtol=0.15)  # rank 6 in 16 dims: the factor mixes correlated dims
    distance = torch.cdist(new, new)
    assert distance[0, 1] < 0.01 * distance[0, 2:].median()
    # the rows' pairwise distances follow the whitened codebook's
    centred = codebook - codebook.mean(0)
    whitened = centred @ torch.linalg.inv(torch.linalg.cholesky(centred.T @ centred / 1000)).T
    pairs = torch.randint(0, 1000, (2, 500), generator=generator)
    code_d = (whitened[pairs[0]] - whitened[pairs[1]]).norm(dim=1)
    row_d = (new[pairs[0]] - new[pairs[1]]).norm(dim=1)
    assert torch.corrcoef(torch.stack([code_d, row_d]))[0, 1] > 0.8
    with pytest.raises(ValueError, match="code_vectors must have shape"):
        init_code_rows_from_codebook(weight, 2000, ids, codebook[:10])
    with pytest.raises(ValueError, match="NaN"):
        init_code_rows_from_codebook(weight, 2000, ids, torch.full((1000, 6), float("nan")))


@pytest.mark.parametrize("tied", [True, False])
def test_prepare_with_codebook_rows(tied):
    processor = AudioTokenProcessor(tiny_text_tokenizer(), codebook_size=16)
    codebook = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    codebook[3] = codebook[2]
    recipe = LMMSNConfig(lora_rank=4, lora_alpha=8, new_row_init="codebook")
    with pytest.raises(ValueError, match="needs code_vectors"):
        prepare_audio_llm(LlamaForCausalLM(tiny_llama_config(tie_word_embeddings=tied)), processor, recipe)
    torch.manual_seed(0)
    base = LlamaForCausalLM(tiny_llama_config(tie_word_embeddings=tied))
    text_before = base.get_input_embeddings().weight[:300].clone()
    model = prepare_audio_llm(base, processor, recipe, code_vectors=codebook).get_base_model()
    for matrix in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        rows = matrix[processor.codes_to_ids([2, 3, 4])]
        assert torch.equal(rows[0], rows[1]) and not torch.equal(rows[0], rows[2])
        assert torch.isfinite(matrix).all()
    assert torch.equal(model.get_input_embeddings().weight[:300], text_before)


def test_loss_matches_a_hand_computation():
    model, processor = build(tied=False)
    batch = batch_of(processor)
    out = lm_msn_loss(model, **batch, z_loss_coefficient=1e-2, chunk_size=7, audio_id_range=processor.audio_id_range)
    per_example = lm_msn_loss(model, **batch, z_loss_coefficient=1e-2, chunk_size=7, normalization="examples")
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.double()
    ce_sum = w_sum = z_sum = count = 0.0
    text_ce, audio_ce, example_means = [], [], []
    for b in range(logits.shape[0]):
        example_ce = example_w = 0.0
        for t in range(logits.shape[1] - 1):
            label = int(batch["labels"][b, t + 1])
            if label == -100:
                continue
            log_probs = F.log_softmax(logits[b, t], dim=-1)
            weight = float(batch["loss_weights"][b, t + 1])
            ce = -float(log_probs[label])
            ce_sum += weight * ce
            w_sum += weight
            example_ce += weight * ce
            example_w += weight
            z_sum += float(torch.logsumexp(logits[b, t], -1)) ** 2
            count += 1
            (audio_ce if label >= processor.audio_id_range[0] else text_ce).append(ce)
        if example_w:
            example_means.append(example_ce / example_w)
    assert audio_ce and text_ce and len(example_means) > 1
    assert out.weighted_ce.item() == pytest.approx(ce_sum / w_sum, rel=1e-5)
    assert out.z_loss.item() == pytest.approx(z_sum / count, rel=1e-5)
    assert out.loss.item() == pytest.approx(ce_sum / w_sum + 1e-2 * z_sum / count, rel=1e-5)
    assert out.audio_loss.item() == pytest.approx(sum(audio_ce) / len(audio_ce), rel=1e-5)
    assert out.text_loss.item() == pytest.approx(sum(text_ce) / len(text_ce), rel=1e-5)
    assert int(out.num_targets) == count
    # "examples": each example's weighted mean, then the mean over examples (here unlike the token average)
    expected = sum(example_means) / len(example_means)
    assert abs(expected - ce_sum / w_sum) > 1e-3
    assert per_example.weighted_ce.item() == pytest.approx(expected, rel=1e-5)
    assert per_example.loss.item() == pytest.approx(expected + 1e-2 * z_sum / count, rel=1e-5)
    with pytest.raises(ValueError, match="normalization must be one of"):
        lm_msn_loss(model, **batch, normalization="sequence")
    with pytest.raises(ValueError, match="loss_normalization must be one of"):
        LMMSNConfig(loss_normalization="sequence")


@pytest.mark.parametrize("normalization", ["tokens", "examples"])
def test_chunked_loss_and_gradients_equal_the_full_logits_loss(normalization):
    model, processor = build(tied=True)
    batch = batch_of(processor)
    params = [p for p in model.parameters() if p.requires_grad]
    chunked = lm_msn_loss(model, **batch, chunk_size=3, normalization=normalization)
    grads = torch.autograd.grad(chunked.loss, params)
    naive = naive_lm_msn_loss(model, **batch, normalization=normalization)
    naive_grads = torch.autograd.grad(naive.loss, params)
    assert chunked.loss.item() == pytest.approx(naive.loss.item(), rel=1e-6)
    for ours, theirs in zip(grads, naive_grads):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


def test_example_losses_are_each_rows_mean_target_cross_entropy():
    model, processor = build(tied=False)
    batch = batch_of(processor)
    batch["labels"][1] = -100  # a row without targets gives NaN, not a division by zero
    with torch.no_grad():
        ours = example_losses(model, batch["input_ids"], batch["labels"], batch["attention_mask"], chunk_size=2)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    for row in range(batch["input_ids"].shape[0]):
        labels = batch["labels"][row, 1:]
        if (labels == -100).all():
            assert torch.isnan(ours[row])
            continue
        expected = F.cross_entropy(logits[row, :-1][labels != -100], labels[labels != -100])
        assert ours[row].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.reliability(
    "an LM-MSN adapter loaded onto another base model (another vocabulary)",
    "`ValueError` naming the base's embedding rows and the processor's text tokens (no silent resize)",
)
def test_adapter_save_load_and_merge_give_the_same_logits(tmp_path):
    model, processor = build(tied=True)
    batch = batch_of(processor)
    # move the adapter away from its zero start so that saving has something to carry
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        lm_msn_loss(model, **batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    base_dir, adapter_dir, merged_dir = tmp_path / "base", tmp_path / "adapter", tmp_path / "merged"
    torch.manual_seed(0)
    LlamaForCausalLM(tiny_llama_config(tie_word_embeddings=True)).save_pretrained(base_dir)  # same seed as build()
    model.save_pretrained(adapter_dir, save_embedding_layers=False)
    processor.save_pretrained(adapter_dir)
    assert not any("embed_tokens.weight" in k or "lm_head.weight" in k for k in load_file(
        adapter_dir / "adapter_model.safetensors"))
    loaded, loaded_processor = load_audio_llm(adapter_dir, base_model=base_dir)
    with torch.no_grad():
        got = loaded.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(got, expected)
    assert loaded_processor.vocab_size == processor.vocab_size
    merge_audio_llm(adapter_dir, merged_dir, base_model=base_dir)
    plain = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    assert not any("lora" in name for name, _ in plain.named_parameters())
    assert isinstance(AutoProcessor.from_pretrained(merged_dir), AudioTokenProcessor)
    with torch.no_grad():
        merged_logits = plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(merged_logits, expected, rtol=1e-4, atol=1e-4)
    # another base model (another vocabulary) is refused, naming both sizes, instead of being resized to fit
    other = LlamaForCausalLM(tiny_llama_config(tie_word_embeddings=True, vocab_size=processor.vocab_size + 7))
    with pytest.raises(ValueError, match=rf"has {processor.vocab_size + 7} embedding rows but the processor .* has "
                                         rf"{min(processor.audio_token_ids)} text tokens"):
        load_audio_llm(adapter_dir, base_model=other)


def test_prepare_refuses_mismatches():
    processor = AudioTokenProcessor(tiny_text_tokenizer(), codebook_size=16)
    with pytest.raises(ValueError, match="config.codebook_size is 32"):
        prepare_audio_llm(LlamaForCausalLM(tiny_llama_config()), processor, LMMSNConfig(codebook_size=32))
    extended = LlamaForCausalLM(tiny_llama_config(vocab_size=310))
    with pytest.raises(ValueError, match="already has 310 rows"):
        prepare_audio_llm(extended, processor, RECIPE)
    with pytest.raises(ValueError, match="new_row_init"):
        LMMSNConfig(new_row_init="zeros")
