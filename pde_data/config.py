"""The PDE families' sections of ``params.yaml``: the generation keys every problem section has, and the split.

The specs, sections and file reading are the project's config layer, :mod:`params`; here only what is
particular to a store: :data:`GENERATE` (samples, seed, chunk) and :func:`problem_config`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from params import Int, Seed, Spec, resolve_specs

#: Keys of every problem section that drive the generation run, not the solver.
GENERATE: dict[str, Spec] = {
    "samples": Int(256, low=1),  # number of samples in the store
    "seed": Seed(0),  # sample i is drawn from SeedSequence((seed, i))
    "chunk": Int("auto", low=1, auto=True),  # samples per Zarr chunk (the unit of work and of resume); auto:
    # pde_data.chunks.auto_chunk (about 2 MiB of the largest per-sample array, at least 8 chunks)
}


def problem_config(params: Mapping[str, Any], problem: str, family_cls: Any) -> tuple[dict, dict]:
    """Split and check the ``problem`` section of the family ``family_cls``: (its checked parameters,
    :meth:`Family.config`, and the generation settings). The store size defaults to the family's ``SAMPLES``."""
    generate = {**GENERATE, "samples": dataclasses.replace(GENERATE["samples"], default=family_cls.SAMPLES)}
    resolved = resolve_specs(problem, params.get(problem), {**family_cls.PARAMS, **generate})
    family = family_cls.config(**{key: resolved[key] for key in family_cls.PARAMS})   # the family's joint checks
    return family, {key: resolved[key] for key in GENERATE}
