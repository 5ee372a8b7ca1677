"""Folder of the local evaluate module audio_captioning (script: audio_captioning.py; see ../__init__.py)."""
