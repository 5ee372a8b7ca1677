"""Helpers shared by tests (importable because pyproject puts tests/ on pytest's pythonpath)."""


def tiny_config_kwargs(**overrides):
    """A mel-front-end tokenizer small enough to train in seconds on a CPU (8 kHz, 62.5 frames/s)."""
    kwargs = dict(
        frontend_type="mel",
        frontend_config=dict(sampling_rate=8000, n_fft=256, stft_hop_length=64, frames_per_latent=2, num_mel_bins=16),
        hidden_size=64,
        encoder_layers=2,
        decoder_layers=2,
        head_dim=32,
        intermediate_size=128,
        codebook_size=64,
        codebook_dim=8,
        clip_seconds=1.0,
    )
    kwargs.update(overrides)
    return kwargs


def write_manifest(folder, clips, rate=8000, bad_files=()):
    """Write ``clips`` (n, samples) as WAVs plus a manifest.csv (split: last clip is test); returns its path.

    ``bad_files`` are (name, bytes) written as-is and listed too, to exercise the skip path.
    """
    import csv

    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, clip in enumerate(clips):
        name = f"clip{index}.wav"
        sf.write(folder / name, clip, rate, subtype="FLOAT")
        split = "test" if index == len(clips) - 1 else "train"
        rows.append({"path": name, "split": split, "category": "speech" if index % 2 else "noise", "label": "x"})
    for name, payload in bad_files:
        (folder / name).write_bytes(payload)
        rows.append({"path": name, "split": "train", "category": "speech", "label": "bad"})
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest
