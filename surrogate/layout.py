"""What a network reads and predicts for one problem: input channels, targets and their shapes.

The facts come from the problem registry (:data:`pde_data.problems.PROBLEMS`:
input arrays, grid channels, target choices) and from the store record (the
shape of each per-sample array), so ``surrogate`` names no problem.
Fields are ``[sample, row, col]`` with row = y index, col = x index.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from params import ConfigError
from pde_data.problems import get_problem
from pde_data.store import StoreReader


@dataclass(frozen=True)
class Layout:
    """Inputs, targets and shapes of one problem on an n x n grid."""

    problem: str
    n: int
    inputs: tuple[str, ...]          # per-sample input arrays read from the store
    channels: tuple[str, ...]        # network input channels (inputs + grid channels)
    targets: tuple[str, ...]         # target arrays, in output-vector order
    target_shapes: tuple[tuple[int, ...], ...]

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return (len(self.channels), self.n, self.n)

    @property
    def out_dim(self) -> int:
        return sum(math.prod(s) for s in self.target_shapes)

    @property
    def arrays(self) -> tuple[str, ...]:
        """Per-sample store arrays this problem reads."""
        return self.inputs + self.targets

    @property
    def grid_channels(self) -> tuple[str, ...]:
        return tuple(c for c in self.channels if c not in self.inputs)

    def target_slices(self) -> dict[str, slice]:
        """Each target's slice of the output vector."""
        out, k = {}, 0
        for t, s in zip(self.targets, self.target_shapes):
            out[t] = slice(k, k + math.prod(s))
            k += math.prod(s)
        return out

    def to_dict(self) -> dict:
        return {"problem": self.problem, "n": self.n, "inputs": list(self.inputs),
                "channels": list(self.channels), "targets": list(self.targets),
                "target_shapes": [list(s) for s in self.target_shapes]}

    @classmethod
    def from_dict(cls, d: Mapping) -> Layout:
        return cls(problem=d["problem"], n=int(d["n"]), inputs=tuple(d["inputs"]),
                   channels=tuple(d["channels"]), targets=tuple(d["targets"]),
                   target_shapes=tuple(tuple(int(v) for v in s) for s in d["target_shapes"]))


def make_layout(problem: str, target: str | None, shapes: Mapping[str, tuple[int, ...]]) -> Layout:
    """The layout of ``problem`` for target choice ``target`` (None: the registry's default).

    ``shapes``: the shape of one sample of each per-sample array (a store
    record's ``sample_arrays``); inputs must be n x n fields.
    """
    entry = get_problem(problem)
    target = target or entry.default_target
    if target not in entry.targets:
        raise ConfigError(f"data.target.{problem}: {target!r} is not allowed; need one of {', '.join(entry.targets)}")
    missing = [a for a in entry.inputs + entry.targets[target] if a not in shapes]
    if missing:
        raise ConfigError(f"{problem}: the store has no per-sample array {missing[0]!r}")
    n = next(iter(shapes[entry.inputs[0]]))
    for name in entry.inputs:
        if tuple(shapes[name]) != (n, n):
            raise ConfigError(f"{problem}: input array {name!r} has sample shape {tuple(shapes[name])}; "
                              f"need a square field like {entry.inputs[0]!r} ({n}, {n})")
    targets = entry.targets[target]
    return Layout(problem, int(n), entry.inputs, entry.inputs + entry.grid_channels, targets,
                  tuple(tuple(int(v) for v in shapes[t]) for t in targets))


def layout_of(store: StoreReader, target: str | None) -> Layout:
    """The layout for the arrays of ``store``."""
    shapes = {name: store.sample_shape(name) for name in store.record["sample_arrays"]}
    return make_layout(store.problem, target, shapes)
