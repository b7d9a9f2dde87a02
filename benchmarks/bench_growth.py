"""Growth in width (nested iteration) measured: the jump at the growth step and the quality at the budget.

Issue 23's choices, each a variant of nested iteration + AdamW on one Poisson store:

* ``train.growth.perturbation`` eps: x_f = P x_c + eps (I - P Pi) x_f0 (eps = 1 was the only step before);
* ``train.growth.state``: Adam's state across the growth step, reset or carried (m = Pi^T m_c,
  sqrt(v) = Pi^T sqrt(v_c));
* ``train.parametrization``: one rate for both widths, or muP's per-layer rates;

against plain AdamW with the same budget, schedule and seeds. Per run: the validation MSE of the coarse net
right before the growth step and of the fine net right after it (their ratio is the jump; target <= 1.1), the
best validation MSE over the run (evaluated every ``--eval-every`` work units and at the growth step) and the
seconds. Paired over seeds: each variant's best validation MSE over plain AdamW's, geometric mean with a
t-based 95% interval on the log ratios (scipy.stats). One thread per run. Finished runs are appended to
``--records`` (JSON lines) and skipped when the script is run again with the same settings.

    python benchmarks/bench_growth.py [--samples 2400] [--hidden 400 400] [--budget 600] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from scipy import stats

from surrogate import config
from surrogate.dataset import load_dataset
from surrogate.io import make_net
from surrogate.metrics import split_errors
from surrogate.schedule import lr_factor
from surrogate.train import build_trainer

ROOT = Path(__file__).resolve().parents[1]
#: name -> (growth levels, perturbation eps, optimizer state across the step, parametrization); every key pinned,
#: whatever params.yaml's defaults are
VARIANTS = {
    "adamw": (1, 0.1, "prolong", "standard"),
    "ni eps 1, reset": (2, 1.0, "reset", "standard"),
    "ni eps 1, carried": (2, 1.0, "prolong", "standard"),
    "ni eps 0.1, reset": (2, 0.1, "reset", "standard"),
    "ni eps 0.1, carried": (2, 0.1, "prolong", "standard"),
    "ni eps 0.1, carried, muP": (2, 0.1, "prolong", "mup"),
    "ni eps 0.02, carried, muP": (2, 0.02, "prolong", "mup"),
    "ni eps 0, carried, muP": (2, 0.0, "prolong", "mup"),
}


def overrides(variant: tuple) -> list[str]:
    levels, eps, state, parametrization = variant
    return [f"train.growth.levels={levels}", f"train.growth.perturbation={eps}", f"train.growth.state={state}",
            f"train.parametrization={parametrization}"]


def run(store: Path, overrides: list[str], args, seed: int) -> dict:
    """One training run driven cycle by cycle; validation right before and after the growth step."""
    base = [f"train.budget_wu={args.budget}", f"train.seed={seed}", "train.schedule=cosine", "train.device=cpu",
            f"train.lr={args.lr}", f"train.batch_size={args.batch}", f"train.growth.share={args.share}",
            f"models.poisson.mlp.hidden={list(args.hidden)}"]
    cfg = config.resolve(ROOT / "params.yaml", problem="poisson", model="mlp", trainer="adamw",
                         overrides=[*base, *overrides])
    data = load_dataset(store, data=cfg.data, flat=True)
    torch.manual_seed(seed)
    trainer = build_trainer(cfg, make_net(cfg.to_dict()["model"], data.layout), data, torch.device("cpu"))
    t = cfg.train

    def val() -> float:
        return split_errors(trainer.hier.nets[0], data["val"], data.codec, cfg.data.eval_batch_size)[
            data.layout.targets[0]]["mse"]

    out, best, next_eval, t0 = {"jump_before": None, "jump_after": None}, math.inf, 0.0, time.perf_counter()
    while (work := trainer.work[t.work_measure]) < t.budget_wu:
        trainer.scale_lr(lr_factor(t.schedule, work / t.budget_wu, t.warmup))
        if trainer.growing and work >= trainer.ends[trainer.level]:
            out["jump_before"] = val()
            trainer.grow()
            out["jump_after"] = val()
        else:
            trainer.trainer.cycle() if trainer.growing else trainer.cycle()
        if not trainer.growing and trainer.work[t.work_measure] >= next_eval:
            best, next_eval = min(best, val()), next_eval + args.eval_every
    return {**out, "best_val_mse": min(best, val()), "seconds": time.perf_counter() - t0}


def paired(ratios: list[float]) -> str:
    logs = np.log(ratios)
    mean = float(np.mean(logs))
    if len(logs) < 2:
        return f"{math.exp(mean):.3f}x"
    half = stats.t.ppf(0.975, len(logs) - 1) * float(np.std(logs, ddof=1)) / math.sqrt(len(logs))
    return f"{math.exp(mean):.3f}x [{math.exp(mean - half):.3f}, {math.exp(mean + half):.3f}]"


def report(records: dict) -> None:
    base = {r["seed"]: r for r in records.values() if r["variant"] == "adamw"}
    print(f"{'variant':<28} {'jump after/before':>24} {'best val MSE':>12} {'/ adamw (paired)':>28} {'s/run':>6}")
    for name in VARIANTS:
        rows = sorted((r for r in records.values() if r["variant"] == name), key=lambda r: r["seed"])
        if not rows:
            continue
        jumps = [r["jump_after"] / r["jump_before"] for r in rows if r["jump_before"]]
        jump = (f"{statistics.median(jumps):.2f} [{min(jumps):.2f}, {max(jumps):.2f}]" if jumps else "-")
        ratios = [r["best_val_mse"] / base[r["seed"]]["best_val_mse"] for r in rows if r["seed"] in base]
        print(f"{name:<28} {jump:>24} {statistics.mean(r['best_val_mse'] for r in rows):>12.4g} "
              f"{paired(ratios) if name != 'adamw' and ratios else '-':>28} "
              f"{statistics.mean(r['seconds'] for r in rows):>6.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=2400, help="Poisson store size (default 2400)")
    ap.add_argument("--hidden", type=int, nargs="+", default=[400, 400], help="MLP hidden widths (default 400 400)")
    ap.add_argument("--budget", type=float, default=600, help="work units per run (default 600)")
    ap.add_argument("--share", type=float, default=0.3, help="budget share of the coarse net (default 0.3)")
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW rate (default 1e-3)")
    ap.add_argument("--batch", type=int, default=100, help="minibatch size (default 100)")
    ap.add_argument("--eval-every", type=float, default=20, help="work units between evaluations (default 20)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME")
    ap.add_argument("--records", type=Path, default=ROOT / "benchmarks" / "results" / "growth.jsonl")
    args = ap.parse_args()
    settings = {k: v for k, v in vars(args).items() if k not in ("seeds", "variants", "records")}
    records = {}
    if args.records.exists():
        for line in args.records.read_text().splitlines():
            r = json.loads(line)
            if r["settings"] == json.loads(json.dumps(settings)):
                records[r["variant"], r["seed"]] = r
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "poisson.zarr"
        subprocess.run(["pde-data", "generate", "poisson", "--out", str(store), "--params", str(ROOT / "params.yaml"),
                        "--n", str(args.samples), "--no-progress"], check=True, capture_output=True)
        print(f"Poisson n = 32, {args.samples} samples, MLP {args.hidden}, AdamW lr {args.lr} cosine, batch "
              f"{args.batch}, {args.budget:g} work units, coarse share {args.share}; seeds 0-{args.seeds - 1}; "
              f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
        for seed in range(args.seeds):
            for name in args.variants:
                if (name, seed) in records:
                    continue
                rec = {"variant": name, "seed": seed, "settings": settings,
                       **run(store, overrides(VARIANTS[name]), args, seed)}
                records[name, seed] = rec
                args.records.parent.mkdir(parents=True, exist_ok=True)
                with args.records.open("a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                print(f"  seed {seed} {name}: best val {rec['best_val_mse']:.4g}, jump "
                      f"{rec['jump_before'] and rec['jump_after'] / rec['jump_before']}, {rec['seconds']:.1f} s",
                      flush=True)
    report(records)


if __name__ == "__main__":
    main()
