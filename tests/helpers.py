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
