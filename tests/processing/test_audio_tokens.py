"""processing/audio_tokens.py: the one spelling of <soa>, <eoa> and <a_N>, used by every writer and reader."""

import numpy as np
import pytest

from soundlm.processing.audio_tokens import (
    AUDIO_SPAN_PATTERN,
    AUDIO_TOKEN_PATTERN,
    EOA_TOKEN,
    SOA_TOKEN,
    audio_token,
    audio_token_code,
    audio_vocabulary,
    render_audio,
)
from soundlm.processing.tasks import TaskExample, audio_segment, text_segment


def test_spelling_and_round_trip():
    assert (SOA_TOKEN, EOA_TOKEN, audio_token(17), audio_token(np.int64(3))) == ("<soa>", "<eoa>", "<a_17>", "<a_3>")
    assert [audio_token_code(audio_token(code)) for code in (0, 9, 8195)] == [0, 9, 8195]
    assert audio_token_code("<a_x>") is None and audio_token_code("<soa>") is None and audio_token_code(3) is None
    assert render_audio([3, 1]) == "<soa><a_3><a_1><eoa>"
    assert audio_vocabulary(3) == ["<soa>", "<eoa>", "<a_0>", "<a_1>", "<a_2>"]


def test_patterns_find_the_spans_that_render_writes():
    text = "a dog<soa><a_3><a_1><eoa> and <a_9> outside" + render_audio([5])
    assert [m.group(1) for m in AUDIO_SPAN_PATTERN.finditer(text)] == ["<a_3><a_1>", "<a_5>"]
    assert [int(m.group(1)) for m in AUDIO_TOKEN_PATTERN.finditer(text)] == [3, 1, 9, 5]


def test_examples_render_through_the_one_spelling():
    example = TaskExample("x", (text_segment("caption <a_2>"), audio_segment([4, 0])))
    assert example.render() == "caption <a_2>" + render_audio([4, 0])


@pytest.mark.parametrize(("code", "error"), [(-1, ValueError), (True, TypeError), (1.0, TypeError), ("3", TypeError)])
def test_bad_codes_are_refused(code, error):
    with pytest.raises(error, match="codebook index"):
        audio_token(code)
    with pytest.raises(ValueError, match="codebook_size must be a positive integer"):
        audio_vocabulary(0)
