"""The levels of multilevel Monte Carlo over Darcy grids, with a surrogate control variate on the coarsest.

**Models.** With grids n_l = n_0 2^l, l = 0..L_max, n_ref = n_0 2^L_max the
finest allowed, the level-l model is P_l = Q_{n_l}(A_l u): the DOLFINx outflow
Q (:class:`pde_data.darcy.DarcyProblem` on n_l x n_l cells) of the cell
averages A_l u over n_l x n_l cells of the point field u on the n_ref x n_ref
cell centres (the pipeline's field, :mod:`pde_data.fields`). At l = L_max,
A_l u = u: P_Lmax is exactly the FEM model of the stores at n_ref.

**Coupling.** A_l u is drawn directly at n_l (``GaussianRandomField(n_l,
average=n_ref / n_l)``, exact, the cost of an n_l field), and a level-l sample
is the pair (P_l(v), P_{l-1}(coarsen(v))) of one such draw v: coarsen(v) is
A_{l-1} u exactly, so the coarse member of level l has the distribution of the
fine member of level l-1 and the telescoping sum E[P_L] = E[P_0] +
sum_l E[P_l - P_{l-1}] is exact for every L (tested: their means agree within
the standard error).

**Surrogate control variate** (MLMC + CV; Nobile and Tesei 2015; the surrogate
as a cheapest level, as in multifidelity MC, Peherstorfer, Willcox and
Gunzburger 2016): G, a trained surrogate of Q on its own grid n_g (dividing
n_ref), evaluated on A_g u. Two more terms replace level 0::

    E[P_L] = beta E[G] + E[P_0 - beta G] + sum_{l>=1} E[P_l - P_{l-1}]

level "S" estimates E[G] from many surrogate-only samples (a field at n_g and
one network evaluation), and level 0 draws one field at max(n_0, n_g) and
coarsens it to both grids, so P_0 and G see the same u. For any fixed beta
the sum is exactly E[P_L], whatever the surrogate's bias or the field it was
trained on; beta = Cov(P_0, G) / Var(G) is frozen from the level-0 pilot
(the variance-optimal value for N_S >> N_0; reusing the pilot samples
afterwards adds an O(1/N_0) bias, far below the standard error, checked by
the coverage tests). Only the coarsest level gets the control variate: G is a
model of Q, not of the level differences, which are uncorrelated with it.

**Samples.** Sample i of level ``key`` (and randomization r) comes from the
seed entropy (seed, UQ_STREAM, level code, r): pseudo-random normals
(:class:`pde_data.fields.PseudoNormals`; for level S the torch sampler of
:mod:`surrogate.mc.fields`) or randomized QMC (:class:`pde_data.fields.SobolNormals`),
so a batch depends on (seed, level, r, i) alone: records resume exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from pde_data.fields import GaussianRandomField, PseudoNormals, SobolNormals, coarsen
from surrogate.mc.errors import MCError
from surrogate.mc.fields import FieldSampler

#: Second word of the seed entropy of multilevel samples ("uq"); stores and ``surrogate mc`` use others.
UQ_STREAM = 0x7571
#: Field keys of the Darcy problem that :class:`DarcyHierarchy` passes to the level problems.
FIELD_KEYS = ("kernel", "mean", "variance", "length", "nu")


@dataclass(frozen=True)
class Level:
    """One term of the estimator: ``kind`` "surrogate" (S), "coarsest" (0) or "difference" (l >= 1).

    ``n``: the grid of its fine model (S: the surrogate's); ``coarse``: the grid of its coarse model
    (difference levels); ``draw``: the grid its fields are drawn on; ``outputs``: the names of z.
    """

    index: int
    kind: str
    n: int
    coarse: int | None
    draw: int
    cv: bool = False

    @property
    def key(self) -> str:
        if self.kind == "surrogate":
            return f"S{self.n}"
        if self.kind == "coarsest":
            return f"L0n{self.n}" + ("cv" if self.cv else "")
        return f"L{self.index}n{self.n}"

    @property
    def code(self) -> int:
        return {"surrogate": 1, "coarsest": 2, "difference": 3}[self.kind] << 20 | self.n << 1 | int(self.cv)

    @property
    def outputs(self) -> tuple[str, ...]:
        if self.kind == "surrogate":
            return ("G",)
        if self.kind == "coarsest":
            return ("P", "G") if self.cv else ("P",)
        return ("dP", "P")

    @property
    def label(self) -> str:
        if self.kind == "surrogate":
            return f"S   G(n={self.n})"
        if self.kind == "coarsest":
            return f"0   Q{self.n}" + (" - beta G" if self.cv else "")
        return f"{self.index}   Q{self.n} - Q{self.coarse}"

    def weights(self, beta: float) -> np.ndarray:
        """a with Y = a . z (module docstring of :mod:`surrogate.mc.mlmc`)."""
        if self.kind == "surrogate":
            return np.array([beta])
        if self.kind == "coarsest":
            return np.array([1.0, -beta]) if self.cv else np.array([1.0])
        return np.array([1.0, 0.0])

    @property
    def fine_index(self) -> int | None:
        """Where z holds P_l (for the per-level diagnostics), None for S."""
        return None if self.kind == "surrogate" else (0 if self.kind == "coarsest" else 1)


def level_grids(n_max: int, n_min: int) -> list[int]:
    """n_0, 2 n_0, ..., n_max; refuses grids that cannot be coarsened by halving down to ``n_min``."""
    if n_min < 1 or n_max < n_min:
        raise MCError(f"uq: coarsest grid {n_min} and finest grid {n_max}: need 1 <= coarsest <= finest")
    grids = [n_max]
    while grids[-1] > n_min:
        if grids[-1] % 2:
            raise MCError(f"uq.n: {n_max} cannot be coarsened to {n_min} by halving: {grids[-1]} is odd; the "
                          f"levels halve the grid, so need n = n_min 2^L (e.g. {n_min * 2 ** (len(grids))})")
        grids.append(grids[-1] // 2)
    if grids[-1] != n_min:
        raise MCError(f"uq.n: {n_max} is not {n_min} times a power of 2 (halving gives {grids[-2]}, then "
                      f"{grids[-1]}); need n = n_min 2^L")
    return grids[::-1]


class DarcyHierarchy:
    """Coupled Darcy levels on the grids of :func:`level_grids` (module docstring); ``sample`` evaluates them.

    ``problem``: the Darcy keyword parameters (field and boundary, as in the ``darcy:`` section);
    ``surrogate``: None, or (predict: fields (B, n_g, n_g) -> Q (B,), n_g); ``qmc_dims``: 0 for
    pseudo-random normals, else the Sobol' dimensions; ``device``: where the surrogate runs.
    """

    def __init__(self, problem: Mapping, n_max: int, n_min: int, seed: int, *, qmc_dims: int = 0,
                 surrogate: tuple[Callable, int] | None = None, device: torch.device | str = "cpu"):
        self.grids = level_grids(int(n_max), int(n_min))
        self.n_ref, self.seed, self.qmc_dims = self.grids[-1], int(seed), int(qmc_dims)
        self.problem = {k: v for k, v in problem.items() if k != "n"}
        self.predict, self.n_g = surrogate if surrogate is not None else (None, None)
        if self.n_g is not None:
            self._check_surrogate_grid()
        self.device = torch.device(device)
        self.setup_s: dict[str, float] = {}
        self._fields: dict[int, GaussianRandomField] = {}
        self._fem: dict[int, Callable[[np.ndarray], float]] = {}
        self._normals: dict[tuple[str, int], object] = {}
        self._torch: FieldSampler | None = None

    def _check_surrogate_grid(self) -> None:
        n_g, n_0 = self.n_g, self.grids[0]
        if self.n_ref % n_g or (n_g % n_0 and n_0 % n_g):
            raise MCError(f"uq: the surrogate's grid {n_g} x {n_g} does not fit the levels {self.grids}: its field "
                          f"is a cell average of the finest grid {self.n_ref}, so need {n_g} to divide "
                          f"{self.n_ref} and to be a power-of-2 multiple or divisor of the coarsest {n_0}")

    @property
    def max_level(self) -> int:
        return len(self.grids) - 1

    def levels(self, finest: int) -> list[Level]:
        """The terms of the estimator with grid levels 0..``finest`` (S first when there is a surrogate)."""
        cv = self.predict is not None
        out = [Level(-1, "surrogate", self.n_g, None, self.n_g)] if cv else []
        n_0 = self.grids[0]
        out.append(Level(0, "coarsest", n_0, None, max(n_0, self.n_g or 0), cv))
        out += [Level(l, "difference", self.grids[l], self.grids[l - 1], self.grids[l]) for l in range(1, finest + 1)]
        return out

    # ------------------------------------------------------------------ resources (set-up timed)
    def _timed(self, what: str, make: Callable):
        t0 = time.perf_counter()
        value = make()
        self.setup_s[what] = self.setup_s.get(what, 0.0) + time.perf_counter() - t0
        return value

    def field(self, n: int) -> GaussianRandomField:
        """The cell averages of the n_ref point field on n x n cells."""
        if n not in self._fields:
            p = {k: self.problem.get(k) for k in FIELD_KEYS}
            self._fields[n] = self._timed("fields", lambda: GaussianRandomField(
                n, p["kernel"], p["mean"], p["variance"], p["length"], p["nu"], "fft", average=self.n_ref // n,
                prefix="uq.field."))
        return self._fields[n]

    def fem(self, n: int) -> Callable[[np.ndarray], float]:
        """log_k (n, n) -> Q of the Darcy problem on n x n cells (DOLFINx; set-up and JIT timed)."""
        if n not in self._fem:
            def make():
                try:
                    from pde_data.darcy import DarcyProblem
                except ImportError as exc:
                    raise MCError(f"uq: the level solves need the FEM stack (DOLFINx via pde_data.darcy), which "
                                  f"cannot be imported here ({exc})") from None
                solver = DarcyProblem(n=n, **{**self.problem, "method": "fft"})
                return lambda log_k: solver.solve(log_k)["Q"]
            self._fem[n] = self._timed("fem", make)
        return self._fem[n]

    def _source(self, level: Level, rep: int):
        key = (level.key, rep)
        if key not in self._normals:
            entropy = (self.seed, UQ_STREAM, level.code, rep)
            field = self.field(level.draw)
            self._normals[key] = self._timed("qmc", lambda: SobolNormals(field, entropy, self.qmc_dims)) \
                if self.qmc_dims else PseudoNormals(field.noise_shape, entropy)
        return self._normals[key]

    def _surrogate_fields(self, level: Level, start: int, stop: int, rep: int):
        """Fields of level S: the torch sampler for pseudo-random normals, else Sobol' normals transformed."""
        if not self.qmc_dims:
            return self._torch.draw(start, stop)
        return self._torch.transform(self._source(level, rep).normals(start, stop))

    # ------------------------------------------------------------------ sampling
    def prepare(self, level: Level, rep: int = 0) -> None:
        """Build what ``level`` needs (fields, FEM problems, normal sources): set-up, timed apart from sampling."""
        self.field(level.draw)
        if level.kind == "surrogate":
            if self._torch is None:
                self._torch = self._timed("fields", lambda: FieldSampler(
                    level.n, None, self.seed, self.device, field=self.field(level.n),
                    stream=UQ_STREAM << 24 | level.code))
            if self.qmc_dims:
                self._source(level, rep)
            return
        self._source(level, rep)
        for n in (level.n, level.coarse):
            if n is not None:
                self.fem(n)

    def sample(self, level: Level, start: int, stop: int, rep: int = 0) -> tuple[np.ndarray, dict[str, float]]:
        """z (stop - start, len(outputs)) of samples start..stop-1 and the seconds of each part (set-up apart)."""
        self.prepare(level, rep)
        t = {"draw": 0.0, "fem_fine": 0.0, "fem_coarse": 0.0, "surrogate": 0.0}
        clock = time.perf_counter()

        def lap(part: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            t[part] += now - clock
            clock = now

        if level.kind == "surrogate":
            u = self._surrogate_fields(level, start, stop, rep)
            lap("draw")
            z = np.asarray(self.predict(u), dtype=np.float64).reshape(-1, 1)
            lap("surrogate")
            return z, t
        v = self.field(level.draw).from_normals(self._source(level, rep).normals(start, stop))
        lap("draw")
        if level.kind == "coarsest":
            u0 = coarsen(v, level.draw // level.n) if level.draw > level.n else v
            cols = [self._solve(level.n, u0)]
            lap("fem_fine")
            if level.cv:
                ug = coarsen(v, level.draw // self.n_g) if level.draw > self.n_g else v
                cols.append(np.asarray(self.predict(ug), dtype=np.float64).reshape(-1))
                lap("surrogate")
            return np.stack(cols, axis=1), t
        fine = self._solve(level.n, v)
        lap("fem_fine")
        coarse = self._solve(level.coarse, coarsen(v, 2))
        lap("fem_coarse")
        return np.stack([fine - coarse, fine], axis=1), t

    def _solve(self, n: int, fields: np.ndarray) -> np.ndarray:
        solve = self.fem(n)
        q = np.array([float(solve(u)) for u in fields])
        if not np.all(np.isfinite(q)):
            raise MCError(f"uq: the Darcy solver on {n} x {n} cells returned non-finite Q values")
        return q
