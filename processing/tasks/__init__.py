# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""Task builders: pure functions that turn one data row into one training example for LM-MSN or MINT.

Nothing here touches a tokenizer, a model or a file besides the two shipped JSON templates.

- `examples`: the `Segment` / `TaskExample` types, `row_rng`, and the checks every builder shares;
- `lm_msn`: LM-MSN stage 1 (caption pairs) and stage 2 (chat tasks in Vicuna v1.1's template);
- `mint`: MINT stage 1 (audio, caption) pairs and stage 2 instruction templates (the paper's Table 1).

The audio-token spelling (`<soa>`, `<eoa>`, `<a_N>`) lives in `soundlm.processing.audio_tokens`.
"""

from ..audio_tokens import EOA_TOKEN, SOA_TOKEN, audio_token
from .examples import (
    EOS_TOKEN,
    SEGMENT_KINDS,
    Segment,
    TaskExample,
    audio_question,
    audio_segment,
    control_segment,
    eos_segment,
    row_rng,
    text_segment,
)
from .lm_msn import (
    LM_MSN_CHAT_TASKS,
    LM_MSN_PRETRAINING_TASKS,
    VICUNA_V11_SYSTEM,
    ChatTemplate,
    check_lm_msn_prompts,
    lm_msn_chat_example,
    lm_msn_chat_tasks,
    lm_msn_pretraining_example,
    load_lm_msn_prompts,
    vicuna_v11_prompt,
)
from .mint import (
    MINT_TASKS,
    MintInstructionTemplate,
    MintInstructionTemplates,
    mint_caption_pair,
    mint_instruction_example,
)

__all__ = [
    "ChatTemplate",
    "EOA_TOKEN",
    "EOS_TOKEN",
    "LM_MSN_CHAT_TASKS",
    "LM_MSN_PRETRAINING_TASKS",
    "MINT_TASKS",
    "SEGMENT_KINDS",
    "SOA_TOKEN",
    "VICUNA_V11_SYSTEM",
    "MintInstructionTemplate",
    "MintInstructionTemplates",
    "Segment",
    "TaskExample",
    "audio_segment",
    "audio_token",
    "control_segment",
    "eos_segment",
    "audio_question",
    "lm_msn_chat_example",
    "lm_msn_chat_tasks",
    "lm_msn_pretraining_example",
    "check_lm_msn_prompts",
    "load_lm_msn_prompts",
    "mint_caption_pair",
    "mint_instruction_example",
    "row_rng",
    "text_segment",
    "vicuna_v11_prompt",
]
