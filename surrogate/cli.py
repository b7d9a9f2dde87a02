"""Command line: ``surrogate train``, ``evaluate``, ``tune``, ``mc``, ``uq`` and ``export``.

Examples::

    surrogate train --problem poisson --store data/poisson.zarr --model mlp --trainer fas \\
        --out models/poisson-mlp-fas [--params params.yaml] [--resume] [-S train.lr=0.005]
    surrogate evaluate --model-dir models/poisson-mlp-fas --store data/poisson.zarr \\
        --out metrics/poisson-mlp-fas.json --plots plots/poisson-mlp-fas
    surrogate mc --model models/darcy-mlp-fas --n 20000 --fem-n 500 [--params params.yaml] \\
        [--out metrics/mc.json] [--plots plots]
    surrogate uq --rtol 1e-3 --n 128 [--qmc] [--model models/darcy-selected] [--adaptive]
    surrogate export models/darcy-mlp-fas --out export/darcy-mlp-fas --metrics metrics/darcy-mlp-fas.json

Every knob is read from the ``data``, ``models``, ``train`` and ``mc``
sections of ``params.yaml`` (``--params``; default ``./params.yaml`` when it
exists); ``-S KEY=VALUE`` overrides one of them (YAML value, dotted key).
All are checked once, by :func:`surrogate.config.load`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_ERROR = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default=None, metavar="YAML",
                   help="parameter file (sections data, models, train, tune, mc, uq); default: ./params.yaml if "
                        "present, else the built-in defaults (equal to the repository's params.yaml)")
    p.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one parameter, e.g. -S train.lr=0.005 -S train.fas.levels=3 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="surrogate",
        description="Train and evaluate neural-network PDE surrogates (MLP/CNN) on pde-data Zarr stores, "
                    "with one-level SGD/Adam or multilevel-in-width FAS training.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:" + __doc__.split("Every knob")[0].split("Examples::")[1])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # The verbs, in --help order; a new one is one more add_* call here.
    for add in (_add_train, _add_evaluate, _add_tune, _add_mc, _add_uq, _add_export):
        add(sub)
    return parser


def _add_uq(sub) -> None:
    """``surrogate uq`` (its arguments live beside it, in surrogate.mc.uqcli)."""
    from surrogate.mc import uqcli

    uqcli.add_parser(sub, _add_common)


def _add_train(sub) -> None:
    """``surrogate train``."""
    from pde_data.problems import PROBLEMS
    from surrogate.config import MODELS, TRAINERS

    tr = sub.add_parser(
        "train", help="train a surrogate on a store",
        description="Train a surrogate on the training split of a store, budgeted in work units. Logs training "
                    "and validation losses with dvclive (OUT/dvclive), checkpoints to OUT/checkpoint.pt, and "
                    "writes OUT/best.pt, OUT/final.pt (and for FAS OUT/aux_best.pt, OUT/aux_final.pt: the first "
                    "auxiliary network) plus OUT/train_summary.json.")
    tr.add_argument("--problem", required=True, choices=list(PROBLEMS), help="which PDE family")
    tr.add_argument("--store", required=True, metavar="STORE", help="Zarr store written by `pde-data generate`")
    tr.add_argument("--model", choices=list(MODELS), default="mlp",
                    help="network: the models.<problem>.<model> section of the params (default: mlp)")
    tr.add_argument("--trainer", choices=list(TRAINERS), default=None,
                    help="sgd/adam: one-level training; fas: multilevel FAS with the train.fas params "
                         "(default: train.trainer)")
    tr.add_argument("--out", required=True, metavar="DIR", help="output directory of the model files")
    tr.add_argument("--resume", nargs="?", const="strict", choices=["strict", "auto"], default=None,
                    help="continue from OUT/checkpoint.pt if present; ends with the same result as an "
                         "uninterrupted run. --resume (strict): a checkpoint of other params or another store is "
                         "refused; --resume auto: such a checkpoint is ignored and training starts over (what a "
                         "DVC stage whose outputs persist between runs wants)")
    tr.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    tr.add_argument("--live-dir", default=None, metavar="DIR",
                    help="dvclive directory of the loss curves (default: OUT/dvclive); a DVC stage puts it "
                         "outside OUT so that its metrics and plots do not overlap the model output")
    tr.add_argument("--metrics", default=None, metavar="JSON",
                    help="also write the figures to compare across runs (best validation errors, work, time) "
                         "as a flat JSON of numbers, for `dvc metrics`")
    _add_common(tr)


def _add_evaluate(sub) -> None:
    """``surrogate evaluate``."""
    ev = sub.add_parser(
        "evaluate", help="test-split metrics and figures of a trained model",
        description="Evaluate the networks of a model directory (best.pt = fine, aux_best.pt = first auxiliary, "
                    "final.pt, aux_final.pt) on the test split of a store: mean squared error (paper: L2 loss), "
                    "maximum absolute error (L-infinity) and relative L2 error, in physical units.")
    ev.add_argument("--model-dir", required=True, metavar="DIR",
                    help="output directory of `surrogate train`, or an export directory of `surrogate export`")
    ev.add_argument("--store", required=True, metavar="STORE", help="Zarr store (its test split is used)")
    ev.add_argument("--out", required=True, metavar="JSON",
                    help="flat metrics file to write (test errors; everything else goes to JSON's .meta.json)")
    ev.add_argument("--plots", default=None, metavar="DIR",
                    help="directory for samples.png (and parity_Q.png for Darcy)")
    ev.add_argument("--allow-overlap", action="store_true",
                    help="report metrics even when test samples are the model's training samples (a store of "
                         "the same problem, parameters and seed); refused otherwise")
    ev.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                    help="device for the forward passes (default: train.device of the params)")
    _add_common(ev)


def _add_tune(sub) -> None:
    """``surrogate tune``."""
    from pde_data.problems import PROBLEMS
    from surrogate.config import MODELS, TRAINERS

    tu = sub.add_parser(
        "tune", help="search hyperparameters on a narrow proxy of the network, train it at full width",
        description="Optuna search over tune.space (train keys, log-uniform ranges) on level tune.level of the "
                    "network's width hierarchy (muTransfer: needs train.parametrization mup when the level is > 0), "
                    "tune.seeds training seeds per trial, until tune.trials trials or tune.budget full-width runs of "
                    "cost; then the full network trained with the best values. Writes OUT/tune.journal (the search; "
                    "a killed search resumes), OUT/tune.json (trials, best values, seconds and cost of the search) "
                    "and OUT/model (the final model directory).")
    tu.add_argument("--problem", required=True, choices=list(PROBLEMS), help="which PDE family")
    tu.add_argument("--store", required=True, metavar="STORE", help="Zarr store written by `pde-data generate`")
    tu.add_argument("--model", choices=list(MODELS), default="mlp", help="network (default: mlp)")
    tu.add_argument("--trainer", choices=list(TRAINERS), default=None, help="default: train.trainer")
    tu.add_argument("--out", required=True, metavar="DIR", help="output directory")
    tu.add_argument("--no-final", action="store_true", help="search only; do not train the full network")
    tu.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    _add_common(tu)


def _add_mc(sub) -> None:
    """``surrogate mc``."""
    mc = sub.add_parser(
        "mc", help="Monte Carlo estimate of the Darcy outflow QoI with a trained surrogate",
        description="Draw N fresh log-permeability fields from the training store's random field (or the mc.field "
                    "overrides), predict Q with the surrogate in batches, and report E[Q_sur], its standard "
                    "error, 95% CI, Var(Q) and a histogram. With --fem-n M > 0, also solve the FEM problem "
                    "(needs DOLFINx) on the first M fields and report the control-variate estimate "
                    "mean_M(Q_fem - beta Q_sur) + beta mean_N(Q_sur), unbiased whatever the surrogate's bias, "
                    "with its standard error and the variance reduction against plain FEM Monte Carlo of the "
                    "same wall-clock cost. Defaults come from the mc section of the params.")
    mc.add_argument("--model", required=True, metavar="DIR",
                    help="model directory of `surrogate train` (its best.pt), a model file or an export directory")
    mc.add_argument("--n", type=int, default=None, metavar="N", help="surrogate samples (default: mc.n)")
    mc.add_argument("--fem-n", type=int, default=None, metavar="M",
                    help="FEM solves on the first M fields; 0: surrogate only (default: mc.fem_n)")
    mc.add_argument("--seed", type=int, default=None, help="seed of the fresh fields (default: mc.seed)")
    mc.add_argument("--batch-size", type=int, default=None, help="fields per batch (default: mc.batch_size)")
    mc.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                    help="device of the surrogate (default: mc.device)")
    mc.add_argument("--out", default="metrics/mc.json", metavar="JSON",
                    help="flat metrics file to write; the full result goes to its .meta.json "
                         "(default: metrics/mc.json)")
    mc.add_argument("--plots", default="plots", metavar="DIR",
                    help="directory for the histogram mc_qoi_hist.png (default: plots)")
    mc.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    _add_common(mc)


def _add_export(sub) -> None:
    """``surrogate export``."""
    ex = sub.add_parser(
        "export", help="write a model as model.safetensors + config.json + a model card (README.md)",
        description="Export the best network of a model directory (or one model file) in the layout the field "
                    "shares: model.safetensors (the weights; loading runs no code), config.json (architecture, "
                    "normalisation, problem, the training store's fingerprint, the training record, test metrics) "
                    "and README.md (a model card). surrogate.load(OUT) and every command that takes a model read "
                    "it. OUT must be new or empty (or an earlier export, with --overwrite); an error writes nothing.")
    ex.add_argument("model_dir", metavar="MODEL_DIR", help="output directory of `surrogate train`, or a model file")
    ex.add_argument("--out", required=True, metavar="DIR", help="export directory to write")
    ex.add_argument("--metrics", default=None, metavar="JSON",
                    help="the model's `surrogate evaluate --out` file (or its .meta.json): test metrics for the card")
    ex.add_argument("--overwrite", action="store_true", help="replace an earlier export in OUT")


def _print_warnings(caught) -> None:
    for w in caught:
        if issubclass(w.category, UserWarning) and not issubclass(w.category, DeprecationWarning):
            print(f"surrogate: warning: {w.message}", file=sys.stderr)


def _params(args):
    from params import params_path
    from surrogate import config

    return config.load(params_path(args.params), args.overrides)


def _train(args) -> int:
    from surrogate.train import Reporting, train

    cfg = _params(args).run(args.problem, args.model, args.trainer)
    for note in cfg.notes:
        _error(f"note: {note}")
    resume = {None: False, "strict": True, "auto": "auto"}[args.resume]
    train(cfg, args.store, args.out, resume=resume, reporting=Reporting(progress=not args.no_progress),
          live_dir=args.live_dir, metrics=args.metrics)
    return 0


def _tune(args) -> int:
    from surrogate.tune import tune

    params = _params(args)
    cfg = params.run(args.problem, args.model, args.trainer)
    tune(cfg, params.tune, args.store, args.out, final=not args.no_final, progress=not args.no_progress)
    return 0


def _evaluate(args) -> int:
    import warnings

    from surrogate.evaluate import evaluate
    from surrogate.runtime import pick_device

    params = _params(args)
    device = pick_device(args.device or params.train.device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(args.model_dir, args.store, args.out, args.plots, device=device,
                          batch_size=params.data.eval_batch_size, allow_overlap=args.allow_overlap)
    _print_warnings(caught)
    for key in ("fine", "aux", "fine_final", "aux_final"):
        if key in result:
            txt = "; ".join(f"{t}: mse {m['mse']:.4g}, linf {m['linf']:.4g}, rel_l2 {m['rel_l2']:.4g}"
                            for t, m in result[key].items())
            print(f"{key:10s} {txt}")
    return 0


def _mc(args) -> int:
    import warnings

    from params import params_path, writable_dir
    from surrogate import config, distributed, mc

    cfg = config.resolve_mc(params_path(args.params), args.overrides,
                            n=args.n, fem_n=args.fem_n, seed=args.seed, batch_size=args.batch_size,
                            device=args.device)
    writable_dir(Path(args.out).parent, "--out")
    writable_dir(args.plots, "--plots")
    device = distributed.init(cfg.device, "mc.device")  # under torchrun the processes share the fields
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", mc.MCWarning)
        result = mc.estimate(args.model, cfg.n, fem_n=cfg.fem_n, seed=cfg.seed, batch_size=cfg.batch_size,
                             device=device, field_params=cfg.field, sampler=cfg.sampler,
                             reuse=cfg.reuse, progress=not args.no_progress)
    if distributed.is_main():
        _print_warnings(caught)
        print(result.report())
        print(f"metrics -> {result.write_json(args.out)}; "
              f"histogram -> {result.plot(Path(args.plots) / 'mc_qoi_hist.png')}")
    return 0


def _export(args) -> int:
    import shlex

    from surrogate.export import export

    out = export(args.model_dir, args.out, metrics=args.metrics, overwrite=args.overwrite,
                 command=shlex.join(["surrogate", *sys.argv[1:]]) if sys.argv[1:2] == ["export"] else None)
    print(f"exported {args.model_dir} -> {out}/ (model.safetensors, config.json, README.md)")
    return 0


def _uq(args) -> int:
    from params import params_path
    from surrogate.mc import uqcli

    return uqcli.run(args, params_path(args.params))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``surrogate`` console script; returns the exit status.

    The heavy imports (torch) happen in here, so that Ctrl-C at any moment ends in one line.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:
        _error("interrupted (resume a training run with --resume)")
        return EXIT_INTERRUPTED


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from params import ConfigError
    from surrogate import distributed
    from surrogate.io import ModelFileError
    from surrogate.train import ResumeError, TrainingDiverged

    handlers = {"train": _train, "tune": _tune, "evaluate": _evaluate, "mc": _mc, "uq": _uq, "export": _export}
    try:
        return handlers[args.command](args)
    except TrainingDiverged as exc:
        _error(f"error: {exc}")
        return EXIT_DIVERGED
    except (ConfigError, ModelFileError, ResumeError) as exc:
        _error(f"error: {exc}")
        return EXIT_ERROR
    except OSError as exc:  # a full disk, a file removed under us: the files say which
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"error: {where}{exc.strerror or exc}")
        return EXIT_ERROR
    finally:
        distributed.finish()


def _error(message: str) -> None:
    """A one-line message on stderr, from one process of a torchrun job."""
    dist = sys.modules.get("surrogate.distributed")
    if dist is None or dist.is_main():
        print(f"surrogate: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
