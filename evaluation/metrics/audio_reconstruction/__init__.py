"""Folder of the local evaluate module audio_reconstruction (script: audio_reconstruction.py; see ../__init__.py)."""
