"""evaluation/tokenizer_report.py on tiny tokenizers and real clips: every system, every column, the files."""

import json

import numpy as np
import pytest
import torch
from helpers import tiny_config_kwargs, write_manifest

from soundlm import MSNTokenizerConfig, MSNTokenizerModel
from soundlm.evaluation.embeddings import AudioEmbedder
from soundlm.evaluation.tokenizer_report import FRONT_END, ORIGINAL, encodec_audio, format_report, tokenizer_report


def _model(objective):
    torch.manual_seed(0)
    model = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs(decoder_objective=objective)))
    for p in model.decoder.parameters():
        torch.nn.init.normal_(p, std=0.05)
    model.set_latent_statistics(torch.full((32,), -4.0), torch.full((32,), 2.0))
    return model.eval()


def _band_energies(audio: np.ndarray) -> np.ndarray:
    """A tiny stand-in embedding: log energies of 4 bands of 256-sample frames (frames, 4)."""
    frames = np.lib.stride_tricks.sliding_window_view(audio, 256)[::64]
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(256), axis=-1)) ** 2
    return np.log(np.stack([band.sum(-1) for band in np.array_split(spectrum, 4, axis=-1)], -1) + 1e-8)


def test_report_has_every_system_and_column_and_writes_its_files(tmp_path, real_clips):
    manifest = write_manifest(tmp_path / "data", list(real_clips) + list(real_clips[:2] * 0.5))
    rows = (tmp_path / "data" / "manifest.csv").read_text().splitlines()
    rows = [rows[0]] + [line.replace(",train,", ",test,") for line in rows[1:]]  # all six clips held out
    (tmp_path / "data" / "manifest.csv").write_text("\n".join(rows) + "\n")
    models = {"VQ + FM": _model("flow_matching"), "VQ + MSE": _model("mse")}
    embedder = AudioEmbedder("band energies (test)", 8000, _band_energies)
    result = tokenizer_report(models, str(manifest), cache_dir=str(tmp_path / "cache"), decode={"num_steps": 2},
                              embedder=embedder, with_mos=True, encodec=True, out=tmp_path / "report")
    systems = result["systems"]
    assert list(systems)[:4] == [ORIGINAL, FRONT_END, "VQ + FM", "VQ + MSE"]
    assert any(name.startswith("EnCodec 1.5 kbps (random weights)") for name in systems)
    assert systems[FRONT_END]["level_db"] == pytest.approx(0.0, abs=1e-6)  # the reference of the level column
    # scaled to its own level, the front end clips as it does
    assert systems[FRONT_END]["clipped_at_level_pct"] == pytest.approx(systems[FRONT_END]["clipped_pct"])
    for name in ("VQ + FM", "VQ + MSE"):
        row = systems[name]
        assert {"latent_error", "level_db", "clipped_pct", "clipped_at_level_pct", "mr_stft", "mel_distance",
                "flatness", "fad", "mos_ovrl"} <= set(row)
        assert row["latent_error"] == result["table_i"]["rows"]["all"][name]
        assert 1.0 <= row["mos_ovrl"] <= 5.0 and row["fad"] >= 0
    assert result["fad_model"] == "band energies (test)" and result["clips"] == 6
    for row in systems.values():  # the median of each category's clips, and of all six
        assert set(row["flatness_by_category"]) == {"noise", "speech"} and 0 < row["flatness"] < 1
    assert systems[ORIGINAL]["flatness_by_category"]["noise"] > systems[ORIGINAL]["flatness_by_category"]["speech"]
    text = format_report(result)
    assert "| VQ + FM |" in text and "band energies (test)" in text and "Table I" in text
    assert "| clipped % at level |" in text
    assert "Spectral flatness by category" in text and "| system | noise | speech |" in text
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["decode"] == {"num_steps": 2, "scheduler": "euler", "temperature": 1.0}
    assert saved["configs"]["VQ + FM"]["decoder_objective"] == "flow_matching"
    pngs = sorted(p.name for p in (tmp_path / "report").glob("*.png"))
    assert pngs == ["fig3_fad.png", "spectrogram_noise.png", "spectrogram_speech.png"]
    assert all((tmp_path / "report" / name).stat().st_size > 1000 for name in pngs)
    wavs = sorted(p.name for p in (tmp_path / "report" / "examples").glob("*.wav"))
    assert len(wavs) == 2 * 4 and "speech__vq_fm.wav" in wavs and "noise__front_end.wav" in wavs


def test_report_refuses_tokenizers_with_other_front_ends(tmp_path, real_clips):
    manifest = write_manifest(tmp_path / "data", real_clips)
    other = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs(
        frontend_config=dict(sampling_rate=8000, n_fft=256, stft_hop_length=64, frames_per_latent=2,
                             num_mel_bins=16, f_min=40.0))))
    with pytest.raises(ValueError, match="another front end"):
        tokenizer_report({"a": _model("mse"), "b": other}, str(manifest), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="no clip of split 'valid'"):
        tokenizer_report({"a": _model("mse")}, str(manifest), split="valid", cache_dir=str(tmp_path / "cache"))


def test_no_encodec_rows_without_real_weights(tmp_path, real_clips):
    """Random EnCodec weights decode every clip, at every bandwidth, to one signal (transformers initialises its
    codebooks to zeros), so the report leaves EnCodec out unless real weights are named, and says so."""
    clips = [np.asarray(clip, dtype=np.float32)[None] for clip in real_clips[:2]]
    random_codec = list(encodec_audio(clips, 8000, None).values())
    assert all(np.array_equal(out[0], random_codec[0][0]) for out in random_codec)  # both bandwidths
    assert np.array_equal(random_codec[0][0][:, :7000], random_codec[0][1][:, :7000])  # both clips
    manifest = write_manifest(tmp_path / "data", real_clips)
    rows = (tmp_path / "data" / "manifest.csv").read_text().splitlines()
    (tmp_path / "data" / "manifest.csv").write_text(
        "\n".join([rows[0]] + [line.replace(",train,", ",test,") for line in rows[1:]]) + "\n")
    result = tokenizer_report({"VQ + MSE": _model("mse")}, str(manifest), cache_dir=str(tmp_path / "cache"),
                              decode={"num_steps": 2}, with_mos=False)
    assert not any(name.startswith("EnCodec") for name in result["systems"])
    assert any("no EnCodec rows" in note for note in result["notes"])
