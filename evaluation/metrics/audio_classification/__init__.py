"""Folder of the local evaluate module audio_classification (script: audio_classification.py; see ../__init__.py)."""
