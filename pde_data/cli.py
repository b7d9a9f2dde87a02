"""The ``pde-data`` command line: generate PDE sample stores and inspect them.

Each subcommand is an ``add_*`` function that registers its parser and sets
``func``; :func:`build_parser` lists them.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from pde_data.config import ConfigError
from pde_data.problems import PROBLEMS


def _generate(args: argparse.Namespace) -> None:
    from pde_data.generate import MPI, generate

    status = generate(
        args.problem,
        args.out,
        params_path=args.params,
        samples=args.n,
        seed=args.seed,
        chunk=args.chunk,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        overrides=args.set,
    )
    if MPI.COMM_WORLD.rank == 0:
        from pde_data.store import summary

        print(f"{status} {args.out}\n{summary(args.out)}")


def add_generate(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="write (or resume) a Zarr store of solved samples",
        description=(
            "Solve N samples of PROBLEM with DOLFINx and write them to a Zarr store. Re-running the same "
            "command resumes an interrupted run; a store written with other parameters is refused unless "
            "--overwrite. Under `mpiexec -n R` the ranks share the work chunk by chunk; the store is the "
            "same for any R."
        ),
    )
    p.add_argument("problem", choices=list(PROBLEMS), help="PDE family")
    p.add_argument("--out", required=True, help="store path, e.g. data/poisson.zarr")
    p.add_argument(
        "--params", help="params.yaml whose PROBLEM section sets the parameters (default: built-in defaults)"
    )
    p.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one parameter of params.yaml, e.g. -S darcy.length=0.1 (repeatable)")
    p.add_argument("--n", type=int, help="number of samples (overrides PROBLEM.samples)")
    p.add_argument("--seed", type=int, help="base seed; sample i uses SeedSequence((seed, i)) (overrides PROBLEM.seed)")
    p.add_argument("--chunk", type=int, help="samples per Zarr chunk (overrides PROBLEM.chunk)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing pde-data store instead of refusing")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_generate)


def _info(args: argparse.Namespace) -> None:
    from pde_data.store import summary

    print(summary(args.store))


def add_info(sub) -> None:
    p = sub.add_parser(
        "info", help="summarise a store", description="Print a store's problem, progress, parameters and arrays."
    )
    p.add_argument("store", help="store path")
    p.set_defaults(func=_info)


# -- plot (pde_data.plot) ---------------------------------------------------------
def _plot(args: argparse.Namespace) -> None:
    from pde_data.plot import plot_store

    print(plot_store(args.store, out=args.out, samples=args.samples, indices=args.index))


def add_plot(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="draw a few samples of a store into a PNG",
        description=(
            "Draw a few done samples of STORE with matplotlib (Darcy: log_k and p; Poisson: kappa and u), "
            "one row per sample, origin lower (row = y), and print the PNG path."
        ),
    )
    p.add_argument("store", help="store path")
    p.add_argument("--out", help="PNG path (default: STORE's name with _samples.png, next to it)")
    p.add_argument("--samples", type=int, default=4, help="how many of the first done samples (default 4)")
    p.add_argument("--index", type=int, nargs="+", help="plot these sample indices instead")
    p.set_defaults(func=_plot)
# -- end plot -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pde-data",
        description="Generate and inspect Zarr stores of DOLFINx PDE solutions (Poisson, Darcy).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Subcommands, in --help order; a new one (e.g. `plot STORE`) is one more add_* call here.
    add_generate(sub)
    add_info(sub)
    add_plot(sub)
    return parser


def _world():
    """MPI.COMM_WORLD if a subcommand loaded MPI, else None."""
    mpi = sys.modules.get("mpi4py.MPI")
    return None if mpi is None else mpi.COMM_WORLD


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pde-data`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigError as err:  # raised alike on every rank: report once
        if _world() is None or _world().rank == 0:
            print(f"pde-data: error: {err}", file=sys.stderr)
        return 2
    except Exception:
        if _world() is not None and _world().size > 1:
            traceback.print_exc()
            sys.stderr.flush()
            _world().Abort(1)  # the other ranks would wait forever
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
