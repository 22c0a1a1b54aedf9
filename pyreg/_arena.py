"""Typed access to the native parameter arena, whose kernels are stored in column panels.

The trainer keeps a kernel (IN, OUT) as panels of ``_core.PANEL_WIDTH`` columns, each a row-major
(IN, width) block, so that the columns one thread owns are contiguous (see cpp/dense.h). Here a
weight is read as one (IN, OUT) array and written from one.
"""

from __future__ import annotations

import numpy as np

from . import _core

__all__ = ["ArenaWeight", "arena_weights"]


class ArenaWeight:
    """One kernel or bias of the arena: ``read()`` gives a copy in keras' layout, ``write(a)`` stores one."""

    def __init__(self, arena: np.ndarray, offset: int, shape: tuple[int, ...]):
        self.shape = tuple(int(d) for d in shape)
        if len(self.shape) == 2:
            rows, cols = self.shape
            width = _core.PANEL_WIDTH
            self._panels = []
            for c0 in range(0, cols, width):
                w = min(width, cols - c0)
                start = offset + c0 * rows
                self._panels.append((arena[start : start + rows * w].reshape(rows, w), c0, c0 + w))
        else:
            self._panels = [(arena[offset : offset + self.shape[0]], 0, self.shape[0])]

    def read(self) -> np.ndarray:
        if len(self.shape) == 1:
            return self._panels[0][0].copy()
        return np.concatenate([view for view, _, _ in self._panels], axis=1)

    def write(self, value: np.ndarray) -> None:
        for view, c0, c1 in self._panels:
            view[...] = value[..., c0:c1]


def arena_weights(mlp) -> list[ArenaWeight]:
    """The model's weights in keras' get_weights order."""
    arena = mlp.arena()
    return [ArenaWeight(arena, offset, shape) for _layer, _name, offset, shape in mlp.param_info()]
