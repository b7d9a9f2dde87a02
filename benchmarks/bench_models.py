"""Peer benchmark of the surrogate families on the same stores and splits, at equal wall time.

Families: the paper's MLP and CNN (section 8 sizes), the U-Net
(:mod:`surrogate.unet`), this project's FNO (:mod:`surrogate.fno`) and, when
the ``neuraloperator`` package is installed (``pip install -e '.[operators]'``),
its ``FNO`` with its defaults (n_modes (12, 12), 32 channels) as the field's
reference. Cases: Poisson u, Darcy p and Darcy Q at n = 32 and 64 (stores
of ``--samples`` samples made with ``pde-data generate``, split 80/10/10 as
the pipeline does). Every run: AdamW (lr 1e-3, weight decay 1e-4), batch 32,
cosine decay over a step budget set so that training takes ``--seconds``
(times n/32) on this CPU: the seconds per step are measured on 5 steps after
3 warm-up steps, in the same process, just before the run. Validation every
5% of the steps keeps the best network; its test errors are reported
(surrogate.metrics: per-sample relative L2 mean and 95th percentile, nRMSE),
with the wall seconds training took and the forward FLOPs per sample.

Width section (``--width``): the U-Net on Poisson u (n = 32) trained by the
pipeline's own trainer (``surrogate.train``) for the same work units
(FLOP-counted) with AdamW, nested iteration in width + AdamW
(``train.growth.levels 2``) and FAS with an AdamW smoother (2 levels).

Records go to a JSON-lines file, one per finished run; a rerun skips the
runs already there (resumable), so the sweep can be stopped and continued.
``--report`` only (re)writes the summary from the records.

    OMP_NUM_THREADS=1 python benchmarks/bench_models.py [--sizes 32 64] [--seeds 0 1] [--seconds 45]
        [--records benchmarks/results/models.jsonl] [--doc docs/MODELS.md] [--stores data/bench] [--width|--width-only]
        [--shard K/N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from surrogate.config import DataConfig
from surrogate.dataset import load_dataset, open_store
from surrogate.metrics import split_errors
from surrogate.models import build_model
from surrogate.multilevel import MinibatchStream
from surrogate.schedule import lr_factor

ROOT = Path(__file__).resolve().parents[1]
CASES = (("poisson", "u"), ("darcy", "p"), ("darcy", "Q"))
BATCH, LR, WEIGHT_DECAY = 32, 1e-3, 1e-4
#: The families and their sizes (paper: section 8; U-Net and FNO: this project's defaults).
FAMILIES = {
    "mlp": {"poisson": {"kind": "mlp", "hidden": [400, 400]}, "darcy": {"kind": "mlp", "hidden": [1024] * 3}},
    "cnn": {"poisson": {"kind": "cnn", "conv": [[200, 7, 2], [200, 7, 2]], "fc": [400, 400]},
            "darcy": {"kind": "cnn", "conv": [[100, 11, 2], [200, 7, 1], [400, 3, 1]], "fc": [2048, 2048]}},
    "unet": {"poisson": {"kind": "unet", "channels": [16, 32, 64, 128], "head": [64]},
             "darcy": {"kind": "unet", "channels": [16, 32, 64, 128], "head": [64]}},
    "fno": {"poisson": {"kind": "fno", "modes": 8, "width": 32, "layers": 4},
            "darcy": {"kind": "fno", "modes": 8, "width": 32, "layers": 4}},
    "neuralop-fno": {"poisson": {"n_modes": (12, 12), "hidden_channels": 32},
                     "darcy": {"n_modes": (12, 12), "hidden_channels": 32}},
}
WIDTH_METHODS = {"adamw": [], "growth+adamw": ["train.growth.levels=2"],
                 "fas-adamw": ["train.fas.levels=2", "train.fas.smoother=adamw"]}


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def make_store(problem: str, n: int, samples: int, stores: Path) -> Path:
    """``pde-data generate`` (resumes a partial store; a finished one is left as is)."""
    path = stores / f"{problem}-{n}-{samples}.zarr"
    done = path.with_name(path.name + ".done")
    if not done.exists():
        cli = [shutil.which("pde-data")] if shutil.which("pde-data") else [sys.executable, "-m", "pde_data.cli"]
        subprocess.run([*cli, "generate", problem, "--out", str(path), "--n",
                        str(samples), "--params", str(ROOT / "params.yaml"), "-S", f"{problem}.n={n}",
                        "--no-progress"], check=True, stdout=subprocess.DEVNULL)
        done.touch()
    return path


def dataset(store: Path, problem: str, target: str, flat: bool):
    data = DataConfig.from_mapping({"target": {problem: target}} if problem == "darcy" else {})
    return load_dataset(open_store(store, problem), data=data, flat=flat, splits=("train", "val", "test"))


# --------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------
class NeuralopFNO(torch.nn.Module):
    """neuraloperator's FNO (its defaults) on a field target: (B, C, n, n) -> (B, n*n)."""

    def __init__(self, in_channels: int, kwargs: dict):
        super().__init__()
        from neuralop.models import FNO

        self.net = FNO(in_channels=in_channels, out_channels=1, **kwargs)

    def forward(self, x):
        return self.net(x).flatten(1)


def network(family: str, problem: str, layout) -> torch.nn.Module | None:
    spec = FAMILIES[family][problem]
    if family != "neuralop-fno":
        return build_model(spec, layout.in_shape, layout.out_dim, layout.target_shapes)
    if layout.target_shapes != ((layout.n, layout.n),):
        return None                                   # a field operator; no pooling head
    try:
        return NeuralopFNO(layout.in_shape[0], spec)
    except ImportError:
        return None


def flops(net: torch.nn.Module) -> float | None:
    return net.flops_per_sample() if hasattr(net, "flops_per_sample") else None


# --------------------------------------------------------------------------
# one run at equal wall time
# --------------------------------------------------------------------------
def snapshot(net) -> list[torch.Tensor]:
    return [t.detach().clone() for t in (*net.parameters(), *net.buffers())]


@torch.no_grad()
def restore(net, saved: list[torch.Tensor]) -> None:
    for t, v in zip((*net.parameters(), *net.buffers()), saved):
        t.copy_(v)


def seconds_per_step(net, X, Y) -> float:
    probe = torch.optim.AdamW(net.parameters(), lr=0.0)
    state = snapshot(net)
    times = []
    for _i in range(8):
        idx = torch.randint(len(X), (BATCH,))
        start = time.perf_counter()
        probe.zero_grad()
        F.mse_loss(net(X[idx]).reshape(BATCH, -1), Y[idx]).backward()
        probe.step()
        times.append(time.perf_counter() - start)
    restore(net, state)
    return float(np.median(times[3:]))


def train_equal_time(net, ds, seconds: float, seed: int) -> dict:
    """AdamW + cosine for the steps that fill ``seconds``; returns the test errors of the best-by-validation net."""
    train, val = ds["train"], ds["val"]
    per_step = seconds_per_step(net, train.X, train.Y)
    steps = max(int(seconds / per_step), 20)
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    stream = MinibatchStream(len(train), BATCH, seed=seed)
    every, best, best_state = max(steps // 20, 1), math.inf, None
    elapsed = 0.0
    for step in range(steps):
        start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = LR * lr_factor("cosine", step / steps, 0.0)
        idx = stream.next()
        opt.zero_grad()
        F.mse_loss(net(train.X[idx]).reshape(len(idx), -1), train.Y[idx]).backward()
        opt.step()
        elapsed += time.perf_counter() - start
        if (step + 1) % every == 0 or step + 1 == steps:
            mse = _val_mse(net, val)
            if mse < best:
                best, best_state = mse, snapshot(net)
    restore(net, best_state)
    test = next(iter(split_errors(net, ds["test"], ds.codec, 500).values()))   # the one target
    return {"steps": steps, "s_per_step": per_step, "train_s": elapsed, "best_val_mse_norm": best, "test": test}


@torch.no_grad()
def _val_mse(net, split) -> float:
    net.eval()
    out = sum(float(F.mse_loss(net(x).reshape(len(x), -1), y, reduction="sum")) for x, y in split.batches(500))
    net.train()
    return out / (len(split) * split.Y.shape[1])


# --------------------------------------------------------------------------
# the width methods on the U-Net (the pipeline's trainer)
# --------------------------------------------------------------------------
def train_width(method: str, store: Path, seed: int, budget_wu: float, out: Path) -> dict:
    """The U-Net on Poisson u trained by ``surrogate.train`` with ``method``; test errors of best.pt."""
    from surrogate.config import load as load_cfg
    from surrogate.evaluate import evaluate
    from surrogate.train import QUIET, train

    sets = [f"train.budget_wu={budget_wu}", f"train.seed={seed}", f"train.batch_size={BATCH}", "train.lr=0.001",
            "train.work_measure=flops", "train.schedule=cosine", "train.eval_every_wu=50",
            "train.checkpoint_every_wu=100000", f"train.weight_decay={WEIGHT_DECAY}",
            "models.poisson.unet.channels=[16,32,64,128]", *WIDTH_METHODS[method]]
    trainer = "fas" if method.startswith("fas") else "adamw"
    cfg = load_cfg(ROOT / "params.yaml", sets).run("poisson", "unet", trainer)
    summary = train(cfg, store, out, reporting=QUIET)
    result = evaluate(out, store)
    return {"train_s": summary["elapsed_s"], "work_units": summary["work_units"], "test": result["fine"]["u"]}


# --------------------------------------------------------------------------
# records and summary
# --------------------------------------------------------------------------
def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(record) + "\n")


def key_of(rec: dict) -> tuple:
    return rec["section"], rec["problem"], rec["target"], rec["n"], rec["family"], rec["seed"]


def _stats(values: list[float]) -> str:
    if not values:
        return "-"
    mean = float(np.mean(values))
    return f"{100 * mean:.2f}%" + (f" ± {100 * np.std(values, ddof=1):.2f}" if len(values) > 1 else "")


def summary_lines(records: list[dict]) -> list[str]:
    """One table row per (case, family): means over seeds (± sample std) of the test figures."""
    lines = ["| case | n | family | seeds | rel. L2 mean | rel. L2 p95 | nRMSE | train s | steps | params | "
             "MFLOP/sample |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        groups.setdefault((rec["section"], rec["problem"], rec["target"], rec["n"], rec["family"]), []).append(rec)
    for (section, problem, target, n, family), recs in sorted(groups.items()):
        t = [r["test"] for r in recs]
        mflop = "-" if recs[0].get("flops") is None else f"{recs[0]['flops'] / 1e6:.1f}"
        steps = recs[0].get("steps", recs[0].get("work_units"))
        lines.append(f"| {section}: {problem} {target} | {n} | {family} | {len(recs)} | "
                     f"{_stats([x['rel_l2_mean'] for x in t])} | {_stats([x['rel_l2_p95'] for x in t])} | "
                     f"{np.mean([x['nrmse'] for x in t]):.4f} | {np.mean([r['train_s'] for r in recs]):.0f} | "
                     f"{steps:.0f} | {recs[0].get('params', '-')} | {mflop} |")
    return lines


DOC_HEAD = """# Surrogate families at equal wall time

Written by `benchmarks/bench_models.py` (do not edit by hand; rerun it). Every family is trained on the same
stores (`pde-data generate`, 2400 samples, params.yaml physics, split 80/10/10 as the pipeline) with the same
loop: AdamW (lr 1e-3, weight decay 1e-4), batch 32, cosine decay over a step budget that fills the run's seconds
(measured per family on this CPU just before its run, one thread), best-by-validation network, test split.
Errors: per-sample relative L2 (mean and 95th percentile over the test samples) and nRMSE = RMSE / std of
the true values (`surrogate.metrics`). MFLOP/sample: forward FLOPs counted from the layer shapes (FFTs as
5 N log2 N); `-` where not countable (neuraloperator's FNO).

Families: `mlp` and `cnn` are the paper's section-8 networks; `unet` is `surrogate.unet.UNet`
(channels [16, 32, 64, 128], pooling head [64] for Q); `fno` is `surrogate.fno.FNO` (8 modes per direction
and sign, 32 channels, 4 layers); `neuralop-fno` is neuraloperator 2.0's `FNO` with its defaults
(n_modes (12, 12), 32 hidden channels), the field's reference, on field targets only.

neuraloperator is an optional extra (`pip install -e '.[operators]'`), not a dependency: it brings 26 packages
(about 35 MB of wheels: wandb 20 MB, tensorly 7 MB, h5py 5 MB, opentelemetry, protobuf, ...) for one layer;
`surrogate.fno.SpectralConv2d` is that layer (tests/test_operators.py checks it against neuraloperator's
`SpectralConv` on the same weights when the package is installed).
"""


def write_doc(records: list[dict], doc: Path, command: str) -> None:
    machine = {r.get("machine") for r in records} - {None}
    doc.write_text(DOC_HEAD + "\n" + "\n".join([
        f"Generated by `{command}` from {len(records)} records ({', '.join(sorted(machine))}); "
        "records: benchmarks/results/models.jsonl.", "",
        "peers: equal wall time per run; width: the pipeline's trainer (`surrogate.train`) on the U-Net at "
        "equal FLOP-counted work units (steps column: work units). Mean over seeds ± sample std.", "",
        "Scope: the budget (--seconds at n = 32, scaled by n/32) is short. Families with cheap steps (the MLP) "
        "take many more of them in it; the FNOs and the U-Net take tens to hundreds and are still improving at "
        "the end, so a longer budget can change the ranking (not measured here). A family whose single step "
        "outlasts the budget (the paper's CNN at n = 64, about 300 M parameters) overruns it: see train s.", "",
        *summary_lines(records), ""]))


# --------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------
def peer_runs(args) -> list[tuple]:
    runs = [("peers", problem, target, n, family, seed) for n in args.sizes for problem, target in CASES
            for family in args.families for seed in args.seeds] if not args.width_only else []
    if args.width or args.width_only:
        runs += [("width", "poisson", "u", 32, method, seed) for method in WIDTH_METHODS for seed in args.seeds]
    k, of = (int(v) for v in args.shard.split("/"))
    return runs[k::of]


def run_one(run: tuple, args, stores: Path) -> dict | None:
    section, problem, target, n, family, seed = run
    store = make_store(problem, n, args.samples, stores)
    base = {"section": section, "problem": problem, "target": target, "n": n, "family": family, "seed": seed,
            "samples": args.samples, "threads": torch.get_num_threads(), "machine": platform.node(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if section == "width":
        out = stores / f"width-{family}-{seed}"
        return {**base, **train_width(family, store, seed, args.width_wu, out)}
    torch.manual_seed(seed)
    ds = dataset(store, problem, target, flat=family == "mlp")
    net = network(family, problem, ds.layout)
    if net is None:
        return None
    res = train_equal_time(net, ds, args.seconds * n / 32, seed)
    return {**base, **res, "params": sum(p.numel() for p in net.parameters()), "flops": flops(net)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--seconds", type=float, default=45.0, help="training seconds per run at n = 32 (x n/32)")
    ap.add_argument("--samples", type=int, default=2400, help="store size (split 80/10/10)")
    ap.add_argument("--width", action="store_true", help="also the width methods on the U-Net (Poisson u, n = 32)")
    ap.add_argument("--width-only", action="store_true", help="only the width methods")
    ap.add_argument("--width-wu", type=float, default=1500.0, help="work units of each width-method run")
    ap.add_argument("--records", type=Path, default=ROOT / "benchmarks" / "results" / "models.jsonl")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "MODELS.md")
    ap.add_argument("--stores", type=Path, default=ROOT / "data" / "bench")
    ap.add_argument("--shard", default="0/1", help="K/N: run every N-th run starting at K (parallel processes)")
    ap.add_argument("--report", action="store_true", help="only write the summary from the records")
    args = ap.parse_args(argv)
    if "OMP_NUM_THREADS" not in os.environ:
        print("bench_models: set OMP_NUM_THREADS (e.g. 1) so that timings are comparable", file=sys.stderr)
    if not args.report:
        done = {key_of(r) for r in read_records(args.records)}
        for run in peer_runs(args):
            if run in done:
                continue
            rec = run_one(run, args, args.stores)
            if rec is not None:
                append_record(args.records, rec)
                t = rec["test"]
                print(f"{' '.join(map(str, run))}: rel. L2 mean {100 * t['rel_l2_mean']:.2f}% p95 "
                      f"{100 * t['rel_l2_p95']:.2f}% nRMSE {t['nrmse']:.4f} in {rec['train_s']:.0f} s", flush=True)
    records = read_records(args.records)
    print("\n".join(summary_lines(records)))
    sweep = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--report"]   # the sweep, not the rewrite
    write_doc(records, args.doc, "OMP_NUM_THREADS=1 python benchmarks/bench_models.py " + " ".join(sweep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
