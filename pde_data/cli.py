"""The ``pde-data`` command line: generate PDE sample stores, inspect and verify them.

Each subcommand is a function ``_NAME(args)`` whose docstring is its help,
and an ``add_NAME`` function that registers it with :func:`_command` and adds
its arguments; :func:`build_parser` lists them. A subcommand's function
returns the exit status (None: 0). Errors of the user
(a bad parameter, a foreign or corrupt store, a full disk, Ctrl-C) end in one
line on stderr, never a traceback: status 2 for usage, configuration and
store errors, 130 for an interrupt.
"""

from __future__ import annotations

import argparse
import inspect
import shlex
import sys
import traceback


def _command(sub, func) -> argparse.ArgumentParser:
    """Register the subcommand that ``func(args)`` runs, named after it (``_verify``: ``verify``).

    The first paragraph of its docstring is the subcommand's help, the rest its description.
    Returns the parser, for the arguments.
    """
    summary, _, body = inspect.getdoc(func).partition("\n\n")
    parser = sub.add_parser(func.__name__.strip("_"), help=summary.rstrip("."), description=body or summary)
    parser.set_defaults(func=func)
    return parser


def _store_argument(parser: argparse.ArgumentParser, progress: bool = False) -> None:
    parser.add_argument("store", help="store path")
    if progress:
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


# -- generate (pde_data.generate) ---------------------------------------------------
def _generate(args: argparse.Namespace) -> None:
    """Write (or resume) a Zarr store of solved samples.

    Solve N samples of PROBLEM with DOLFINx and write them to a Zarr store. Re-running the same command
    resumes an interrupted run, after checking every finished chunk (bad ones are solved again); a store
    written with other parameters is refused unless --overwrite. One run writes a store at a time. Under
    `mpiexec -n R` the ranks share the work chunk by chunk; the store is the same for any R.
    """
    from params import params_path
    from pde_data.generate import MPI, generate

    status = generate(args.problem, args.out, params_path=params_path(args.params), samples=args.n, seed=args.seed,
                      chunk=args.chunk, overwrite=args.overwrite, overwrite_changed=args.overwrite_changed,
                      progress=not args.no_progress, overrides=args.set)
    if MPI.COMM_WORLD.rank == 0:
        from pde_data.store import summary

        print(f"{status} {args.out}\n{summary(args.out)}")


def add_generate(sub) -> None:
    from pde_data.problems import PROBLEMS

    p = _command(sub, _generate)
    p.add_argument("problem", choices=list(PROBLEMS), help="PDE family")
    p.add_argument("--out", required=True, help="store path, e.g. data/poisson.zarr")
    p.add_argument(
        "--params", help="params.yaml whose PROBLEM section sets the parameters (default: ./params.yaml if present, "
        "else the built-in defaults, equal to the repository's params.yaml)"
    )
    p.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one parameter of params.yaml, e.g. -S darcy.length=0.1 (repeatable)")
    p.add_argument("--n", type=int, help="number of samples (overrides PROBLEM.samples)")
    p.add_argument("--seed", type=int, help="base seed; sample i uses SeedSequence((seed, i)) (overrides PROBLEM.seed)")
    p.add_argument("--chunk", type=int, help="samples per Zarr chunk (overrides PROBLEM.chunk, whose default "
                   "auto gives about 2 MiB chunks: 512 samples at n = 32, 32 at n = 128)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace an existing pde-data store instead of "
                      "resuming it or refusing")
    mode.add_argument("--overwrite-changed", action="store_true",
                      help="resume the store if it was written with these settings, replace it if not (what a DVC "
                           "stage whose output persists between runs wants); a path that is not a pde-data store is "
                           "still refused")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


# -- info, verify (pde_data.store, pde_data.integrity) -----------------------------------
def _info(args: argparse.Namespace) -> None:
    """Summarise a store.

    Print a store's problem, progress, parameters and arrays.
    """
    from pde_data.store import summary

    print(summary(args.store))


def _verify(args: argparse.Namespace) -> int:
    """Check every chunk of a store (exit status 1 when corrupt).

    Check that every chunk of the done samples of STORE exists and decodes (in a format-2 store: that its
    crc32c checksum matches), and that the done flags decode. Prints a summary; exit status 0 when clean,
    1 when corrupt (`pde-data generate ... --out STORE` regenerates the bad chunks), 2 for a path that is
    not a pde-data store.
    """
    from pde_data.integrity import verify

    report, _ = verify(args.store, progress=not args.no_progress)
    print(report.text())
    return 0 if report.clean else 1


def add_info(sub) -> None:
    _store_argument(_command(sub, _info))


def add_verify(sub) -> None:
    _store_argument(_command(sub, _verify), progress=True)


# -- plot (pde_data.plot) ---------------------------------------------------------
def _plot(args: argparse.Namespace) -> None:
    """Draw a few samples of a store into a PNG.

    Draw a few done samples of STORE with matplotlib (Darcy: log_k and p; Poisson: kappa and u), one row
    per sample, origin lower (row = y), and print the PNG path.
    """
    from pde_data.plot import plot_store

    print(plot_store(args.store, out=args.out, samples=args.samples, indices=args.index))


def add_plot(sub) -> None:
    p = _command(sub, _plot)
    _store_argument(p)
    p.add_argument("--out", help="PNG path (default: STORE's name with _samples.png, next to it)")
    p.add_argument("--samples", type=int, default=4, help="how many of the first done samples (default 4)")
    p.add_argument("--index", type=int, nargs="+", help="plot these sample indices instead")
# -- end plot -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pde-data",
        description="Generate, inspect and verify Zarr stores of DOLFINx PDE solutions (Poisson, Darcy).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Subcommands, in --help order; a new one is one more add_* call here.
    for add in (add_generate, add_info, add_verify, add_plot):
        add(sub)
    return parser


def _world():
    """MPI.COMM_WORLD if a subcommand loaded MPI, else None."""
    mpi = sys.modules.get("mpi4py.MPI")
    return None if mpi is None else mpi.COMM_WORLD


def _say(message: str) -> None:
    """Print ``pde-data: message`` on stderr, once (rank 0) under MPI."""
    if _world() is None or _world().rank == 0:
        print(f"pde-data: {message}", file=sys.stderr, flush=True)


def _resume_hint(argv: list[str], command: str) -> str:
    """What to run to go on after an interrupt: the same command line (without --overwrite for generate)."""
    if command != "generate":
        return "interrupted"
    kept = (a for a in argv if a not in ("--overwrite", "--overwrite-changed"))
    return "interrupted; resume with: " + shlex.join(["pde-data", *kept])


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pde-data`` console script; returns the exit status.

    Everything past the standard library is imported in here, so that Ctrl-C at any moment ends in one line.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        _say(_resume_hint(argv, command))
        return 130


def _main(argv: list[str]) -> int:
    from params import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except ConfigError as err:  # raised alike on every rank: report once
        _say(f"error: {err}")
        return 2
    except OSError as err:  # e.g. a store on a full or read-only disk, outside the writes that generate wraps
        where = f" ({err.filename})" if err.filename else ""
        print(f"pde-data: error: {err.strerror or err}{where}", file=sys.stderr, flush=True)
        if _world() is not None and _world().size > 1:
            _world().Abort(2)  # this rank alone may have seen it; the others would wait forever
        return 2
    except Exception:
        if _world() is not None and _world().size > 1:
            traceback.print_exc()
            sys.stderr.flush()
            _world().Abort(1)  # the other ranks would wait forever
        raise


if __name__ == "__main__":
    sys.exit(main())
