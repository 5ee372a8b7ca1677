# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""The LM-MSN audio LLM: any causal text LM, its vocabulary extended with the audio tokens, LoRA in every block,
only the new embedding rows trained; the weighted cross-entropy with z-loss it is trained with.

The model stays a stock `transformers` causal LM wrapped in a stock `peft` model, so everything that works with
those (generate, Trainer, accelerate, merging, quantised loading) works here:

```python
>>> processor = AudioTokenProcessor(AutoTokenizer.from_pretrained(llm_path), codebook_size=sound_tokenizer_path)
>>> model = prepare_audio_llm(AutoModelForCausalLM.from_pretrained(llm_path), processor, LMMSNConfig())
>>> out = lm_msn_loss(model, **processor([example]))  # out.loss, out.text_loss, out.audio_loss, out.z_loss
>>> model.save_pretrained(run_dir); processor.save_pretrained(run_dir)
>>> model = load_audio_llm(run_dir)  # base LLM + adapter + the new rows
```
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from transformers import AutoModelForCausalLM, PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_lm_msn import LOSS_NORMALIZATIONS, LMMSNConfig

logger = logging.getLogger(__name__)

__all__ = [
    "LMMSNLossOutput",
    "init_code_rows_from_codebook",
    "init_new_embedding_rows",
    "lm_msn_loss",
    "load_audio_llm",
    "merge_audio_llm",
    "naive_lm_msn_loss",
    "prepare_audio_llm",
]


# ----------------------------------------------------------------------------------------------------------
# Building the model
# ----------------------------------------------------------------------------------------------------------


def _row_statistics(weight: torch.Tensor, num_old: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean `(hidden,)` and Cholesky factor `(hidden, hidden)` of the covariance of rows `:num_old`, in float64, the
    covariance shrunk by 1e-5 so that it is positive definite."""
    old = weight[:num_old].to(torch.float64)
    mean = old.mean(dim=0)
    centred = old - mean
    covariance = centred.T @ centred / num_old + 1e-5 * torch.eye(old.shape[1], dtype=torch.float64)
    return mean, torch.linalg.cholesky(covariance)


@torch.no_grad()
def init_new_embedding_rows(weight: torch.Tensor, num_old: int, method: str = "mean_cov",
                            generator: torch.Generator | None = None) -> None:
    """Initialise rows `num_old:` of an embedding (or LM-head) matrix `(vocab, hidden)` in place.

    `"mean_cov"`: draws from N(mean, cov) of the old rows, the covariance shrunk by 1e-5 so that it is
    positive definite (computed in float64, written in the matrix's dtype); `"mean"`: the mean row.
    """
    if not 0 < num_old <= weight.shape[0]:
        raise ValueError(f"num_old must be in 1..{weight.shape[0]} (the rows of the matrix), got {num_old}.")
    count = weight.shape[0] - num_old
    if count == 0:
        return
    if method == "mean":
        new = weight[:num_old].to(torch.float64).mean(dim=0).expand(count, -1)
    elif method == "mean_cov":
        mean, scale = _row_statistics(weight, num_old)
        noise = torch.randn(count, weight.shape[1], generator=generator, dtype=torch.float64)
        new = mean + noise @ scale.T
    else:
        raise ValueError(f"method must be 'mean_cov' or 'mean', got {method!r}.")
    weight[num_old:] = new.to(device=weight.device, dtype=weight.dtype)


@torch.no_grad()
def init_code_rows_from_codebook(weight: torch.Tensor, num_old: int, code_ids: list[int] | torch.Tensor,
                                 code_vectors: torch.Tensor, generator: torch.Generator | None = None) -> None:
    """Initialise the audio-code rows `code_ids` of an embedding (or LM-head) matrix `(vocab, hidden)` in place
    from the sound tokenizer's code vectors `(codebook_size, codebook_dim)`, row `i` of `code_ids` from code `i`.

    The code vectors are whitened (PCA, float64, eigenvalues floored at 1e-6 of the largest), sent through a fixed
    random map `(codebook_dim, hidden)` whose columns are random unit vectors, and shaped by the mean and the
    Cholesky factor of the covariance of the first `num_old` rows. The new rows then have the old rows' mean and
    about their per-coordinate spread, as with `"mean_cov"` (their covariance has rank `codebook_dim` at most),
    but codes that sit close in the codebook (frames that sound alike) start close in the LLM's space too, so what
    training teaches about one code carries over to its neighbours instead of every row being learned on its own.
    """
    code_ids = torch.as_tensor(code_ids, dtype=torch.long)
    if code_vectors.ndim != 2 or code_vectors.shape[0] != len(code_ids):
        raise ValueError(f"code_vectors must have shape (codebook_size={len(code_ids)}, codebook_dim), got "
                         f"{tuple(code_vectors.shape)}.")
    if not 0 < num_old <= weight.shape[0]:
        raise ValueError(f"num_old must be in 1..{weight.shape[0]} (the rows of the matrix), got {num_old}.")
    if not torch.isfinite(code_vectors).all():
        raise ValueError("code_vectors hold NaN or infinite values.")
    mean, scale = _row_statistics(weight, num_old)
    codes = code_vectors.to(torch.float64)
    codes = codes - codes.mean(dim=0)
    eigenvalues, eigenvectors = torch.linalg.eigh(codes.T @ codes / codes.shape[0])
    eigenvalues = eigenvalues.clamp_min(1e-6 * eigenvalues.max().clamp_min(1e-30))
    whitened = codes @ eigenvectors / eigenvalues.sqrt()
    projection = torch.randn(codes.shape[1], weight.shape[1], generator=generator, dtype=torch.float64)
    projection /= projection.norm(dim=0, keepdim=True)  # unit columns: every coordinate gets variance 1 exactly
    rows = mean + (whitened @ projection) @ scale.T
    weight[code_ids.to(weight.device)] = rows.to(device=weight.device, dtype=weight.dtype)


def _module_name(model: torch.nn.Module, module: torch.nn.Module | None) -> str | None:
    for name, candidate in model.named_modules():
        if candidate is module:
            return name.rsplit(".", 1)[-1]
    return None


def prepare_audio_llm(model: PreTrainedModel, processor, config: LMMSNConfig | None = None, seed: int = 0,
                      code_vectors: torch.Tensor | None = None):
    """Turn a causal text LM into the LM-MSN audio LLM (a `peft.PeftModel`).

    1. resize the input and output embeddings to `processor.vocab_size` and initialise the new rows
       (`config.new_row_init`; tied heads share the rows);
    2. LoRA (`config.lora_rank`, `lora_alpha`, `lora_dropout`) on `config.lora_target_modules`;
    3. only the new rows of the input embedding and of the LM head are trainable (peft
       `trainable_token_indices`): the text rows stay bit-identical through training.

    Args:
        model (`PreTrainedModel`): a causal LM (`AutoModelForCausalLM`), in any dtype.
        processor (`AudioTokenProcessor`): gives the vocabulary size and the ids of the audio tokens.
        config (`LMMSNConfig`, *optional*): the recipe; defaults to the paper's.
        seed (`int`): seed of the `"mean_cov"` draw and of the `"codebook"` map.
        code_vectors (`torch.Tensor` of shape `(codebook_size, codebook_dim)`, *optional*): the sound tokenizer's
            codebook (`MSNTokenizerModel.quantizer.codebook`); required by `new_row_init="codebook"`.

    Returns:
        `peft.PeftModel` whose trainable parameters are the LoRA matrices and the new-row deltas.
    """
    from peft import LoraConfig, get_peft_model

    config = config or LMMSNConfig()
    if config.codebook_size is not None and config.codebook_size != processor.codebook_size:
        raise ValueError(f"config.codebook_size is {config.codebook_size} but the processor's audio tokens cover "
                         f"{processor.codebook_size} codes.")
    if config.new_row_init == "codebook" and code_vectors is None:
        raise ValueError("new_row_init='codebook' needs code_vectors (the sound tokenizer's quantizer.codebook, "
                         f"shape ({processor.codebook_size}, codebook_dim)); got None.")
    num_old = model.get_input_embeddings().weight.shape[0]
    new_ids = processor.audio_token_ids
    if min(new_ids) < num_old <= max(new_ids):
        raise ValueError(f"The model's embedding already has {num_old} rows, some of them audio ids "
                         f"({min(new_ids)}..{max(new_ids)}): prepare the text LLM, not an already extended one.")
    num_text = min(num_old, min(new_ids))
    model.resize_token_embeddings(processor.vocab_size, mean_resizing=False)
    if config.new_row_init != "model":
        generator = torch.Generator().manual_seed(seed)
        matrices = [model.get_input_embeddings().weight]
        head = model.get_output_embeddings()
        if head is not None and head.weight is not model.get_input_embeddings().weight:
            matrices.append(head.weight)
        code_ids = processor.codes_to_ids(range(processor.codebook_size))
        for weight in matrices:
            # <soa>/<eoa> (and, except for "codebook", the codes) from the old rows' statistics
            init_new_embedding_rows(weight, num_text, "mean_cov" if config.new_row_init == "codebook"
                                    else config.new_row_init, generator)
            if config.new_row_init == "codebook":
                init_code_rows_from_codebook(weight, num_text, code_ids, code_vectors, generator)
    if processor.pad_token_id is not None:
        model.config.pad_token_id = processor.pad_token_id

    embed_name = _module_name(model, model.get_input_embeddings())
    head_name = _module_name(model, model.get_output_embeddings())
    tied = model.get_output_embeddings() is not None and (
        model.get_output_embeddings().weight is model.get_input_embeddings().weight)
    # a tied head follows the embedding's adapter (peft ties them); an untied one gets its own new rows
    trainable = {embed_name: new_ids} if tied or head_name is None else {embed_name: new_ids, head_name: new_ids}
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
        trainable_token_indices=trainable,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    return peft_model


def load_audio_llm(path: str | os.PathLike, base_model: str | os.PathLike | PreTrainedModel | None = None,
                   is_trainable: bool = False, **model_kwargs):
    """Load a saved audio LLM (adapter folder written by `save_pretrained` or `training/finetune.py`).

    Args:
        path: the folder with `adapter_config.json`, the adapter weights and the processor.
        base_model: the base LLM (folder, Hub id or model); defaults to the adapter's `base_model_name_or_path`.
        is_trainable: load the adapter for further training (stage 2 from stage 1).
        **model_kwargs: passed to `AutoModelForCausalLM.from_pretrained` (e.g. `dtype=torch.bfloat16`,
            `quantization_config=BitsAndBytesConfig(load_in_4bit=True)` when bitsandbytes is installed).

    Returns:
        `(peft.PeftModel, AudioTokenProcessor)`

    Save with `model.save_pretrained(path, save_embedding_layers=False)`: the adapter's trainable-token weights
    hold the new rows' values, so the resized embedding matrices need not be stored (peft would otherwise copy
    them whole, 330 MB for Vicuna-7B in bf16).
    """
    from peft import PeftConfig, PeftModel

    from ...processing.processing_lm_msn import AudioTokenProcessor

    processor = AudioTokenProcessor.from_pretrained(path)
    if base_model is None:
        base_model = PeftConfig.from_pretrained(path).base_model_name_or_path
    if not isinstance(base_model, PreTrainedModel):
        base_model = AutoModelForCausalLM.from_pretrained(base_model, **model_kwargs)
    rows, text_rows = base_model.get_input_embeddings().weight.shape[0], min(processor.audio_token_ids)
    if rows not in (text_rows, processor.vocab_size):
        # another base model than the adapter's: resizing it would pair the adapter with the wrong vocabulary
        raise ValueError(
            f"the base model has {rows} embedding rows but the processor in {os.fspath(path)!r} has {text_rows} text "
            f"tokens (+ {processor.vocab_size - text_rows} audio tokens): the adapter was trained on another base "
            "model; pass the one it was trained on (base_model=...)"
        )
    if rows != processor.vocab_size:
        base_model.resize_token_embeddings(processor.vocab_size, mean_resizing=False)
    model = PeftModel.from_pretrained(base_model, path, is_trainable=is_trainable)
    return model, processor


def merge_audio_llm(adapter_path: str | os.PathLike, out_dir: str | os.PathLike,
                    base_model: str | os.PathLike | None = None, dtype: torch.dtype | None = None) -> str:
    """Fold the adapter (LoRA and the new rows) into the base weights and save a plain model folder that loads
    with `AutoModelForCausalLM.from_pretrained(out_dir)` and `AutoProcessor.from_pretrained(out_dir)`, no peft.

    Returns:
        `str`: `out_dir`.
    """
    kwargs = {} if dtype is None else {"dtype": dtype}
    model, processor = load_audio_llm(adapter_path, base_model=base_model, **kwargs)
    merged = model.merge_and_unload()
    merged.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return os.fspath(out_dir)


def lm_msn_card_fields(model: PreTrainedModel, processor, sound_tokenizer: str, base_model: str | None = None,
                       repo_id: str = "your-org/lm-msn", bundled: bool = False) -> dict[str, str]:
    """The values of `hub_cards/lm_msn.md` for a merged audio LLM and its `AudioTokenProcessor`; ``sound_tokenizer``
    names the tokenizer (Hub id or folder) whose codes the model reads and writes, ``base_model`` the LLM it was
    fine-tuned from (a Hub id goes into the card's front matter); ``bundled``: the folder carries the tokenizer in
    `sound_tokenizer/` and its pipelines as remote code."""
    if bundled:
        pipelines = (
            "The sound tokenizer travels in this repository's `sound_tokenizer/` folder and the pipelines as remote "
            "code, so neither needs `soundlm`:\n\n```python\n"
            f'speak = pipeline("soundlm-text-to-audio", model="{repo_id}", trust_remote_code=True)\n'
            'audio = speak("rain on a tin roof", seed=0)       # {"audio": (channels, samples), "sampling_rate"}\n'
            f'caption = pipeline("soundlm-audio-text-to-text", model="{repo_id}", trust_remote_code=True)\n'
            'caption("clip.wav")                                # [{"generated_text": ...}]\n```\n\n'
            "With `soundlm` installed, `import soundlm` serves the same folder as `text-to-audio` and "
            "`audio-text-to-text` without remote code.")
    else:
        pipelines = (
            "With `soundlm` installed (`import soundlm` registers the processor and the pipelines):\n\n```python\n"
            f'speak = pipeline("text-to-audio", model="{repo_id}", sound_tokenizer="{sound_tokenizer}")\n'
            'audio = speak("rain on a tin roof", seed=0)       # {"audio": (channels, samples), "sampling_rate"}\n'
            f'caption = pipeline("audio-text-to-text", model="{repo_id}", sound_tokenizer="{sound_tokenizer}")\n```')
    return {
        "pipelines_section": pipelines,
        "base_model": base_model or "not recorded",
        "base_model_line": f"base_model: {base_model}\n" if base_model else "",
        "codebook_size": str(processor.codebook_size),
        "last_code": str(processor.codebook_size - 1),
        "vocab_size": str(processor.vocab_size),
        "audio_token_offset": str(processor.audio_token_offset),
        "sound_tokenizer": sound_tokenizer,
        "parameters": f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M",
    }


# ----------------------------------------------------------------------------------------------------------
# Loss
# ----------------------------------------------------------------------------------------------------------


@dataclass
class LMMSNLossOutput(ModelOutput):
    """The LM-MSN training loss and its parts.

    Args:
        loss (`torch.FloatTensor` of shape `()`): `weighted_ce + z_loss_coefficient * z_loss`.
        weighted_ce (`torch.FloatTensor` of shape `()`): `sum(w * ce) / sum(w)` over target positions, `w` the
            processor's `loss_weights` (audio 10, text 1).
        text_loss (`torch.FloatTensor` of shape `()`): mean cross-entropy of the text targets (NaN if none).
        audio_loss (`torch.FloatTensor` of shape `()`): mean cross-entropy of the audio targets (NaN if none).
        z_loss (`torch.FloatTensor` of shape `()`): mean `logsumexp(logits)^2` over target positions
            (before the coefficient).
        num_targets (`torch.LongTensor` of shape `()`): target positions in the batch.
    """

    loss: torch.FloatTensor | None = None
    weighted_ce: torch.FloatTensor | None = None
    text_loss: torch.FloatTensor | None = None
    audio_loss: torch.FloatTensor | None = None
    z_loss: torch.FloatTensor | None = None
    num_targets: torch.LongTensor | None = None


def _chunk_terms(hidden: torch.Tensor, head: torch.nn.Module, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-position cross-entropy and log-partition of one chunk, `(chunk,)` each, logits in float32."""
    logits = head(hidden).float()
    lse = torch.logsumexp(logits, dim=-1)
    target_logit = logits.gather(-1, targets[:, None]).squeeze(-1)
    return lse - target_logit, lse


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside DDP / accelerate / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def _base(model: torch.nn.Module) -> PreTrainedModel:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _example_sums(values: torch.Tensor, weights: torch.Tensor, example: torch.Tensor,
                  num_examples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example, `(num_examples,)` each: the sum of weight x value over its targets, and the sum of its weights
    (`example`: each target's example index)."""
    return (values.new_zeros(num_examples).index_add(0, example, weights * values),
            values.new_zeros(num_examples).index_add(0, example, weights))


def _summarise(ce: torch.Tensor, lse: torch.Tensor, weights: torch.Tensor, audio: torch.Tensor,
               z_loss_coefficient: float, example: torch.Tensor, normalization: str = "tokens") -> LMMSNLossOutput:
    tiny = torch.finfo(ce.dtype).tiny
    if normalization == "tokens":
        weighted_ce = (weights * ce).sum() / weights.sum().clamp_min(tiny)
    elif normalization == "examples":
        numerator, denominator = _example_sums(ce, weights, example, int(example.max()) + 1 if example.numel() else 0)
        has_target = denominator > 0
        weighted_ce = ((numerator[has_target] / denominator[has_target]).mean() if has_target.any()
                       else (weights * ce).sum())
    else:
        raise ValueError(f"normalization must be one of {LOSS_NORMALIZATIONS}, got {normalization!r}.")
    z_loss = lse.square().mean() if lse.numel() else ce.new_zeros(())
    nan = ce.new_tensor(float("nan"))
    text_loss = ce[~audio].mean().detach() if (~audio).any() else nan
    audio_loss = ce[audio].mean().detach() if audio.any() else nan
    return LMMSNLossOutput(loss=weighted_ce + z_loss_coefficient * z_loss, weighted_ce=weighted_ce.detach(),
                           text_loss=text_loss, audio_loss=audio_loss, z_loss=z_loss.detach(),
                           num_targets=torch.tensor(ce.numel()))


def _select_targets(labels: torch.Tensor, loss_weights: torch.Tensor | None,
                    audio_id_range: tuple[int, int] | None):
    """Target mask `(batch, seq_len - 1)` of the shifted labels, and per target: id, weight, is-audio, the index of
    its example in the batch."""
    labels = labels[:, 1:]
    mask = labels != -100
    targets = labels[mask]
    weights = (loss_weights[:, 1:][mask].float() if loss_weights is not None
               else torch.ones(targets.shape[0], device=labels.device))
    if audio_id_range is None:
        audio = weights > 1.0
    else:
        audio = (targets >= audio_id_range[0]) & (targets < audio_id_range[1])
    return mask, targets, weights, audio, mask.nonzero()[:, 0]


def _target_terms(model: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor,
                  attention_mask: torch.Tensor | None, loss_weights: torch.Tensor | None, chunk_size: int,
                  audio_id_range: tuple[int, int] | None) -> tuple[torch.Tensor, ...]:
    """Per target position, `(num_targets,)` each: cross-entropy, log-partition, weight, is-audio and the index of
    its example, with the LM head run on the target positions only (`lm_msn_loss` says how)."""
    # The forward goes through the model (and any DDP / peft wrapper around it, so gradient hooks fire) with
    # the LM head on one position only; the head then runs on the target positions below.
    outputs = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, output_hidden_states=True,
                    logits_to_keep=1)
    hidden = outputs.hidden_states[-1]  # the final-norm output, what the LM head reads
    head = _base(_unwrap(model)).get_output_embeddings()
    mask, targets, weights, audio, example = _select_targets(labels, loss_weights, audio_id_range)
    selected = hidden[:, :-1][mask]
    ce_parts, lse_parts = [], []
    for start in range(0, selected.shape[0], chunk_size):
        chunk = slice(start, start + chunk_size)
        if torch.is_grad_enabled() and selected.requires_grad:
            ce, lse = checkpoint(_chunk_terms, selected[chunk], head, targets[chunk], use_reentrant=False)
        else:
            ce, lse = _chunk_terms(selected[chunk], head, targets[chunk])
        ce_parts.append(ce)
        lse_parts.append(lse)
    ce = torch.cat(ce_parts) if ce_parts else hidden.new_zeros(0, dtype=torch.float32)
    lse = torch.cat(lse_parts) if lse_parts else hidden.new_zeros(0, dtype=torch.float32)
    return ce, lse, weights, audio, example


def lm_msn_loss(model: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor,
                attention_mask: torch.Tensor | None = None, loss_weights: torch.Tensor | None = None,
                z_loss_coefficient: float = 1e-4, chunk_size: int = 1024,
                audio_id_range: tuple[int, int] | None = None, normalization: str = "tokens",
                **_: object) -> LMMSNLossOutput:
    """Weighted next-token cross-entropy plus z-loss, without a full `(batch, seq, vocab)` logits tensor.

    The model runs once with its LM head on a single position (`logits_to_keep=1`); the head is then applied only
    to the final hidden states of target positions, `chunk_size` positions at a time, each chunk under activation
    checkpointing, so at most one `(chunk, vocab)` float32 logits block is alive in the forward and in the
    backward pass. Under FSDP the head's weights are not gathered outside the forward: use `naive_lm_msn_loss`
    there (`train.chunked_loss: false` in `training/finetune.py`).

    Args:
        model: the audio LLM (a peft model or a plain causal LM with `get_decoder()`-style `.model`).
        input_ids (`torch.LongTensor` of shape `(batch, seq_len)`).
        labels (`torch.LongTensor` of shape `(batch, seq_len)`): -100 off target, not yet shifted.
        attention_mask (`torch.LongTensor` of shape `(batch, seq_len)`, *optional*).
        loss_weights (`torch.FloatTensor` of shape `(batch, seq_len)`, *optional*): per-label weights aligned with
            `labels` (audio targets weigh more than 1, text targets 1); ones if omitted.
        z_loss_coefficient (`float`): PaLM's 1e-4 by default.
        chunk_size (`int`): target positions per LM-head chunk.
        audio_id_range (`tuple[int, int]`, *optional*): `[first, end)` ids of the audio tokens
            (`processor.audio_id_range`), to report text and audio cross-entropy apart; without it a target counts
            as audio when its weight is above 1.
        normalization (`str`): `"tokens"` or `"examples"`, how the weighted cross-entropy is averaged
            (`LMMSNConfig.loss_normalization`).
    """
    ce, lse, weights, audio, example = _target_terms(model, input_ids, labels, attention_mask, loss_weights,
                                                     chunk_size, audio_id_range)
    return _summarise(ce, lse, weights, audio, z_loss_coefficient, example, normalization)


def naive_lm_msn_loss(model: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor,
                      attention_mask: torch.Tensor | None = None, loss_weights: torch.Tensor | None = None,
                      z_loss_coefficient: float = 1e-4, audio_id_range: tuple[int, int] | None = None,
                      normalization: str = "tokens", **_: object) -> LMMSNLossOutput:
    """The same loss the straightforward way: full logits from `model(...)`, cast to float32, for the benchmark
    and as the reference in tests."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits.float()
    mask, targets, weights, audio, example = _select_targets(labels, loss_weights, audio_id_range)
    shifted = logits[:, :-1]
    ce = F.cross_entropy(shifted.transpose(1, 2), labels[:, 1:].clamp_min(0), reduction="none")[mask]
    lse = torch.logsumexp(shifted, dim=-1)[mask]
    return _summarise(ce, lse, weights, audio, z_loss_coefficient, example, normalization)


def example_losses(model: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor,
                   attention_mask: torch.Tensor | None = None, chunk_size: int = 1024) -> torch.Tensor:
    """Each example's mean next-token cross-entropy over its targets (nats per target token), unweighted, computed
    as `lm_msn_loss` computes it: the LM head runs on the target positions only, never on the whole sequence.

    Args:
        input_ids (`torch.LongTensor` of shape `(batch, seq_len)`).
        labels (`torch.LongTensor` of shape `(batch, seq_len)`): -100 off target, not yet shifted.
        attention_mask (`torch.LongTensor` of shape `(batch, seq_len)`, *optional*).
        chunk_size (`int`): target positions per LM-head chunk.

    Returns:
        `torch.FloatTensor` of shape `(batch,)`: NaN for an example without targets.
    """
    ce, _, _, _, example = _target_terms(model, input_ids, labels, attention_mask, None, chunk_size, None)
    total, count = _example_sums(ce.detach(), torch.ones_like(ce), example, input_ids.shape[0])
    return total / count
