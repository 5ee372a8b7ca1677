# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""The one spelling of the audio tokens an LLM reads and writes: `<soa>`, `<eoa>` and `<a_N>`.

Every place that writes or reads these strings (the task builders, the LLM processor that adds them to a text
tokenizer, the scripts that print examples) uses this module, so there is one spelling in the package.

- `<soa>` / `<eoa>` (start / end of audio) delimit one audio span;
- `<a_N>` is code `N` of the sound tokenizer's codebook (`0 <= N < codebook_size`), one token per latent frame.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable

__all__ = [
    "AUDIO_SPAN_PATTERN",
    "AUDIO_TOKEN_PATTERN",
    "EOA_TOKEN",
    "SOA_TOKEN",
    "audio_token",
    "audio_token_code",
    "audio_vocabulary",
    "check_code",
    "render_audio",
]

SOA_TOKEN = "<soa>"
EOA_TOKEN = "<eoa>"
AUDIO_TOKEN_PATTERN = re.compile(r"<a_(\d+)>")
"""Matches one audio token; group 1 is the code."""
AUDIO_SPAN_PATTERN = re.compile(re.escape(SOA_TOKEN) + r"((?:<a_\d+>)*)" + re.escape(EOA_TOKEN))
"""Matches one rendered audio span; group 1 is its run of audio tokens."""


def check_code(value: object, name: str = "code") -> int:
    """`value` as a Python int if it is a non-negative integer (Python or NumPy, not bool), else an error naming
    `name`. The upper bound is the codebook size, which only the tokenizer and the LLM processor know."""
    # bool is an Integral, but True as a code is always a bug upstream.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int (a codebook index), got {value!r} of type {type(value).__name__}.")
    if value < 0:
        raise ValueError(f"`{name}` must be a non-negative codebook index, got {int(value)}.")
    return int(value)


def audio_token(code: int) -> str:
    """The vocabulary string of one sound-tokenizer code: `audio_token(17) == "<a_17>"`."""
    return f"<a_{check_code(code)}>"


def audio_token_code(token: str) -> int | None:
    """The code of an audio token string (`"<a_17>"` -> 17), or None for any other string."""
    match = AUDIO_TOKEN_PATTERN.fullmatch(token) if isinstance(token, str) else None
    return int(match.group(1)) if match else None


def audio_vocabulary(codebook_size: int) -> list[str]:
    """The strings to add to a text tokenizer for a codebook of `codebook_size` codes: `<soa>`, `<eoa>`, then
    `<a_0>` ... `<a_{codebook_size - 1}>`."""
    if isinstance(codebook_size, bool) or not isinstance(codebook_size, numbers.Integral) or codebook_size < 1:
        raise ValueError(f"codebook_size must be a positive integer, got {codebook_size!r}")
    return [SOA_TOKEN, EOA_TOKEN, *(f"<a_{code}>" for code in range(int(codebook_size)))]


def render_audio(codes: Iterable[int]) -> str:
    """One audio span as display text: `render_audio([3, 1]) == "<soa><a_3><a_1><eoa>"`."""
    return SOA_TOKEN + "".join(audio_token(code) for code in codes) + EOA_TOKEN
