"""Folder of the local evaluate module frechet_audio_distance (see ../__init__.py)."""
