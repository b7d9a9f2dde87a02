"""``surrogate uq``: the command-line verb of :func:`surrogate.mc.uq.estimate_to_tolerance`."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

DESCRIPTION = """\
Estimate E[Q], the mean outflow of the Darcy problem of the params' darcy section, to a tolerance on the
root-mean-square error, at the least total cost: multilevel Monte Carlo over grids n_min, 2 n_min, ..., n
(coupled cell-averaged fields, Giles' optimal allocation from pilot variances and measured costs), optionally
with randomized quasi-Monte Carlo normals (--qmc) and a trained surrogate as control variate on the coarsest
level (--model). Without --adaptive the target is E[Q] on the n x n grid itself (the whole tolerance goes to the
sampling error; the extrapolated bias against the continuum is reported); with --adaptive, levels are added up to
n until the estimated bias is below its share sqrt(theta) eps. Prints E[Q], its RMSE split into sampling and
bias, a per-level table (n, samples, mean and variance of the level differences, cost) and the cost against
plain FEM Monte Carlo at n for the same RMSE, counting every cost (sampling, set-up, the surrogate's data and
training). Batches are recorded as they finish (--records): a killed run, or a rerun with a tighter tolerance,
continues from them. A tolerance that uq.max_cost_s (or, adaptive, the finest grid) cannot reach ends with the
best estimate so far and what it would take. Defaults: the uq section of the params."""

EXAMPLES = """\
examples:
  surrogate uq --rtol 1e-3                       # E[Q] at darcy.n to 0.1 %, MLMC over 4..n
  surrogate uq --rtol 1e-3 --n 128 --qmc         # on a 128 x 128 grid, scrambled Sobol' normals
  surrogate uq --rtol 1e-3 --n 256 --model models/darcy-selected   # surrogate control variate
  surrogate uq --rtol 1e-3 --n 256 --adaptive    # E[Q] of the PDE: levels added while the bias is too large
"""


def add_parser(sub, add_common) -> argparse.ArgumentParser:
    """Register ``uq`` on the subparsers ``sub``; ``add_common`` adds --params and -S."""
    p = sub.add_parser("uq", help="E[Q] of the Darcy outflow to a tolerance (multilevel Monte Carlo over grids)",
                       description=DESCRIPTION, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    tol = p.add_mutually_exclusive_group()
    tol.add_argument("--rtol", type=float, default=None, metavar="R",
                     help="relative RMSE target, eps = R |E[Q]| (default: uq.rtol)")
    tol.add_argument("--atol", type=float, default=None, metavar="A", help="absolute RMSE target instead")
    p.add_argument("--n", type=int, default=None, help="finest grid, n = n_min 2^L (default: uq.n, else darcy.n)")
    p.add_argument("--n-min", type=int, default=None, help="coarsest grid (default: uq.n_min)")
    p.add_argument("--adaptive", action="store_true", default=None,
                   help="target the continuum E[Q]: add levels up to --n until the bias estimate fits")
    p.add_argument("--qmc", action="store_true", default=None,
                   help="randomized QMC: scrambled Sobol' normals, uq.qmc_replicates randomizations")
    p.add_argument("--store", default=None, metavar="STORE",
                   help="take the Darcy problem (field, boundary, default n) from this store's record instead of the "
                        "params' darcy section (what a pipeline stage downstream of the store uses)")
    p.add_argument("--model", default=None, metavar="DIR",
                   help="a trained Darcy surrogate of Q as control variate on the coarsest level (default: uq.model)")
    p.add_argument("--max-cost", type=float, default=None, metavar="SECONDS",
                   help="sampling budget in seconds (default: uq.max_cost_s)")
    p.add_argument("--seed", type=int, default=None, help="seed of the level samples (default: uq.seed)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="device of the surrogate")
    p.add_argument("--records", default=None, metavar="DIR",
                   help="folder of the resumable records (default: uq.records)")
    p.add_argument("--out", default="metrics/uq.json", metavar="JSON",
                   help="flat metrics file; the full result goes to its .meta.json (default: metrics/uq.json)")
    p.add_argument("--plots", default="plots", metavar="DIR",
                   help="folder of the MLMC diagnostic plot uq_levels.png (default: plots)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(p)
    return p


def run(args, default_params) -> int:
    """The ``uq`` verb; ``default_params``: the params path when --params is not given."""
    from params import writable_dir
    from surrogate.mc.errors import MCWarning
    from surrogate.mc.uq import darcy_problem, estimate_to_tolerance, store_problem
    from surrogate.mc.uqconfig import resolve_uq

    cfg, tree = resolve_uq(args.params if args.params is not None else default_params, args.overrides,
                           rtol=args.rtol, atol=args.atol, n=args.n, n_min=args.n_min, adaptive=args.adaptive,
                           qmc=args.qmc, model=args.model, max_cost_s=args.max_cost, seed=args.seed,
                           device=args.device, records=args.records)
    problem = store_problem(args.store) if args.store else darcy_problem(tree)
    writable_dir(Path(args.out).parent, "--out")
    writable_dir(args.plots, "--plots")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MCWarning)
        result = estimate_to_tolerance(cfg, problem, progress=not args.no_progress)
    for w in caught:
        if issubclass(w.category, UserWarning):
            print(f"surrogate: warning: {w.message}", file=sys.stderr)
    print(result.report())
    print(f"metrics -> {result.write_json(args.out)}; levels plot -> {result.plot(Path(args.plots) / 'uq_levels.png')}"
          + (f"; records -> {result.records}" if result.records else ""))
    return 0
