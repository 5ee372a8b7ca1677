"""Folder of the local evaluate module audio_retrieval (script: audio_retrieval.py; see ../__init__.py)."""
