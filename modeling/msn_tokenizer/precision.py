"""Buffers that stay float32 whatever dtype the model is cast to."""

from __future__ import annotations

from torch import nn


class Float32BuffersMixin(nn.Module):
    """Keeps the buffers named in ``float32_buffers`` in float32 through ``Module.to`` / ``.half()`` /
    ``.bfloat16()`` (which cast every floating buffer); they still move between devices.

    For statistics that accumulate many small updates (the VQ's EMA) and for fixed transforms (the mel basis), where
    bf16's 8-bit mantissa would lose what they hold. Inputs of any dtype are computed against them in float32.
    """

    float32_buffers: tuple[str, ...] = ()

    def _apply(self, fn, recurse: bool = True):
        originals = {name: self._buffers[name] for name in self.float32_buffers if self._buffers.get(name) is not None}
        super()._apply(fn, recurse)
        for name, original in originals.items():
            moved = self._buffers[name]
            if moved.dtype != original.dtype:  # keep the move, undo the cast (from the original: no rounding)
                self._buffers[name] = original.to(device=moved.device)
        return self
