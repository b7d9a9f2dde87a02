"""Two design choices of the multilevel trainers, measured: HEM matching and the optimizer state on growth.

Issue 14 asks for these as measured choices:

* ``train.fas.match``: heavy edge matching before or after the fine level's
  pre-smoothing (Algorithm 2 matches after); 2-level FAS, the paper's SGD settings,
  re-matching every 5 cycles (the first matching, at construction, precedes any
  smoothing either way: with the paper's 50 a short run would show no difference);
* ``train.growth.state``: the Adam/AdamW state across a growth step of nested
  iteration in width, reset or prolonged; 2 levels, AdamW.

Each variant trains with ``surrogate train`` on the same Poisson store, for the
same seeds, and the best validation MSE is compared seed by seed (paired
difference, mean and t-based 95% interval, scipy.stats). One thread per run.

    python benchmarks/bench_multilevel_choices.py [--samples 2000] [--budget 300] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = "[128,128]"
CHOICES = {
    "train.fas.match": ("fas", ["after", "before"], ["-S", "train.fas.levels=2", "-S", "train.fas.rematch_every=5"]),
    "train.growth.state": ("adamw", ["reset", "prolong"], ["-S", "train.growth.levels=2"]),
}


def best_val_mse(store: Path, out: Path, trainer: str, seed: int, budget: int, extra: list[str]) -> float:
    """Best validation MSE of one ``surrogate train`` run (its ``--metrics`` file)."""
    metrics = out / "metrics.json"
    cmd = [sys.executable, "-m", "surrogate", "train", "--problem", "poisson", "--model", "mlp", "--trainer", trainer,
           "--store", str(store), "--out", str(out), "--metrics", str(metrics), "--params", str(ROOT / "params.yaml"),
           "--no-progress", "-S", f"train.budget_wu={budget}", "-S", f"train.seed={seed}",
           "-S", f"models.poisson.mlp.hidden={HIDDEN}", *extra]
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(metrics.read_text())["val_mse"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=2000, help="Poisson store size (default 2000)")
    ap.add_argument("--budget", type=int, default=300, help="work units per run (default 300)")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "poisson.zarr"
        subprocess.run(["pde-data", "generate", "poisson", "--out", str(store), "--params", str(ROOT / "params.yaml"),
                        "--n", str(args.samples), "--no-progress"], check=True, capture_output=True)
        print(f"Poisson, {args.samples} samples, MLP {HIDDEN}, {args.budget} work units, seeds 0-{args.seeds - 1}; "
              "best validation MSE")
        for key, (trainer, values, extra) in CHOICES.items():
            scores = {v: [best_val_mse(store, Path(tmp) / f"{key}-{v}-{s}", trainer, s, args.budget,
                                       [*extra, "-S", f"{key}={v}"]) for s in range(args.seeds)] for v in values}
            first, second = values
            for v in values:
                print(f"  {key}={v:<8} ({trainer}) mean {statistics.mean(scores[v]):.5g}  per seed "
                      + ", ".join(f"{x:.5g}" for x in scores[v]))
            diff = [a - b for a, b in zip(scores[first], scores[second], strict=True)]
            mean = statistics.mean(diff)
            half = (stats.t.ppf(0.975, len(diff) - 1) * statistics.stdev(diff) / len(diff) ** 0.5
                    if len(diff) > 1 else float("nan"))
            print(f"  {first} - {second}: {mean:+.3g} [{mean - half:+.3g}, {mean + half:+.3g}] "
                  f"({100 * mean / statistics.mean(scores[second]):+.1f}%)")


if __name__ == "__main__":
    main()
