"""DVC stage ``select_darcy``: the Monte Carlo stage uses the surrogate with the best validation error.

Reads ``MODELS/PROBLEM-*/train_summary.json`` of every trained model of the
problem, picks the one with the lowest best validation ``--metric`` (the
figure training selected ``best.pt`` by), and copies its ``best.pt`` to
``OUT/best.pt`` with ``OUT/selection.json`` listing every candidate. A copy,
not a link, so that DVC tracks what the next stage read.

    python -m pipelines.select --problem darcy --models models --out models/darcy-selected
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from surrogate.outputs import BEST


def candidates(models: Path, problem: str, metric: str) -> list[dict]:
    """Every trained model of ``problem`` with its best validation ``metric``, best first."""
    out = []
    for summary in sorted(models.glob(f"{problem}-*/train_summary.json")):
        s = json.loads(summary.read_text())
        if s.get("problem") == problem and metric in s.get("best", {}) and (summary.parent / BEST).exists():
            out.append({"model": str(summary.parent), "trainer": s["trainer"], "net": s["model"],
                        f"best_val_{metric}": s["best"][metric]})
    return sorted(out, key=lambda c: c[f"best_val_{metric}"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", required=True)
    ap.add_argument("--models", default="models", type=Path, help="folder of the trained model folders")
    ap.add_argument("--out", required=True, type=Path, help="folder for the chosen best.pt and selection.json")
    ap.add_argument("--metric", default="mse", choices=("mse", "linf"))
    args = ap.parse_args(argv)
    found = candidates(args.models, args.problem, args.metric)
    if not found:
        print(f"select: error: no trained {args.problem} model with a train_summary.json under {args.models}/",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(found[0]["model"]) / BEST, args.out / BEST)
    (args.out / "selection.json").write_text(json.dumps({"chosen": found[0], "candidates": found}, indent=2) + "\n")
    print(f"selected {found[0]['model']} (best validation {args.metric} {found[0][f'best_val_{args.metric}']:.4g} "
          f"of {len(found)} candidates) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
