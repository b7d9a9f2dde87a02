"""Honest study: multilevel FAS against one-level SGD and Adam on the paper's four set-ups.

    python benchmarks/study.py                    # full study -> study/, docs/RESULTS.md (+ PNGs)
    python benchmarks/study.py --estimate         # calibrate and print the expected wall time only
    python benchmarks/study.py --quick            # tiny preset (a couple of minutes) -> $TMPDIR/fas-study-quick
    python benchmarks/study.py --setups poisson_fc --device cuda   # a subset, e.g. on a GPU machine

What runs (preset ``full``; ``--quick`` has the same structure at tiny sizes):

* set-ups Poisson FC, Poisson CNN, Darcy FC, Darcy CNN (section 8 of the
  paper); Poisson FC at the paper's size (10,000 samples, 3072-400-400-1024,
  10,000 work units), the others reduced (see ``PRESETS``) so the whole study
  fits about 2 hours on a 2-core CPU;
* methods: one-level SGD (momentum 0.9, the paper's lr 0.01), one-level Adam
  (PyTorch defaults, lr 1e-3), FAS with 2, 3 and 4 levels with the stochastic
  tau correction and the paper's stability parameters (alpha_p 1, alpha_m 0.2,
  gamma 0.125, eta 2 sqrt 2; section 8.3), and the same without tau
  (``tau none``); nothing is tuned (zero search runs for every method);
* seeds 0..4: the seed sets network initialisation, minibatch order and the
  HEM seed; the data split is fixed;
* every run is budgeted by FLOP work units (``train.work_measure: flops``);
  the paper's 1/4-per-level accounting is read off the same runs' curves by
  ``benchmarks/study_report.py``;
* a regime map for Poisson FC: training-set size (100, 500, 2000, full) against
  levels (1 = SGD, 2, 3, 4) at a common smaller budget (1,000 WU, 3 seeds).

Before running, a short calibration (time per FLOP work unit of every set-up
and trainer, fastest of 3 passes) prints the expected wall time; the full
preset is sized to about 2 hours sequential on a 2-core CPU with 2 torch
threads (``--jobs N`` runs N runs at once with CPU count / N threads each).

Layout of ``--out`` (default ``study/``; quick: ``$TMPDIR/fas-study-quick``)::

    data/{poisson,darcy}.zarr              stores, made with `pde-data generate` when missing
    runs/<setup>/<method>/seed<k>/         `surrogate.train` output dir; record.json when done
    results.json                           spec + calibration + all per-run records (curves incl.)
    summary.json                           every paired comparison (mean, sd, CI, sign test, verdict)

The study is resumable: a run whose ``record.json`` matches its configuration
is skipped, an interrupted run resumes from its checkpoint.  Model files are
deleted after a run's record is written (``--keep-models`` keeps them).  At the
end the report (``RESULTS.md`` + PNGs) is written to ``--docs`` (default
``docs/``; quick: ``OUT/docs``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Mapping

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import study_report  # noqa: E402

SQRT2 = math.sqrt(2.0)
FAS_STABILITY = {"alpha_p": 1.0, "alpha_m": 0.2, "gamma": 0.125, "eta": 2.0 * SQRT2}   # paper sec. 8.3
SGD_LR, ADAM_LR, MOMENTUM = 0.01, 1e-3, 0.9


def method_defs(levels=(2, 3, 4)) -> dict[str, dict]:
    defs = {
        "sgd": {"trainer": "sgd", "levels": 1, "tau": None, "lr": SGD_LR, "label": "One-level SGD",
                "description": f"one-level SGD, lr {SGD_LR}, momentum {MOMENTUM} (paper sec. 8)"},
        "adam": {"trainer": "adam", "levels": 1, "tau": None, "lr": ADAM_LR, "label": "One-level Adam",
                 "description": f"one-level Adam, lr {ADAM_LR:g}, PyTorch default betas (no tuning)"},
    }
    names = {2: "Two", 3: "Three", 4: "Four", 5: "Five"}
    variants = (("minibatch", "", "stochastic τ correction (eq. 35)"), ("none", "-notau", "no τ correction"))
    for tau, suffix, txt in variants:
        for L in levels:
            defs[f"fas{L}{suffix}"] = {
                "trainer": "fas", "levels": L, "tau": tau, "lr": SGD_LR,
                "label": f"{names.get(L, L)}-level FAS" + (", τ none" if tau == "none" else ""),
                "description": (f"{L}-level FAS V-cycles, SGD smoother (lr {SGD_LR} / eta^l, momentum {MOMENTUM}), "
                                f"{txt}, alpha_p {FAS_STABILITY['alpha_p']:g}, alpha_m {FAS_STABILITY['alpha_m']:g}, "
                                f"gamma {FAS_STABILITY['gamma']:g}, eta 2√2 (paper sec. 8.3)")}
    order = ["sgd", "adam"] + [f"fas{L}" for L in levels] + [f"fas{L}-notau" for L in levels]
    return {k: defs[k] for k in order}


METHODS = list(method_defs())

PRESETS: dict[str, dict] = {
    "full": {
        "seeds": 5,
        "data": {"poisson": 10000, "darcy": 4000},
        "data_seed": 0,
        "split": {"train": 0.8, "val": 0.1, "test": 0.1},
        "eval_train_samples": 256,
        "setups": {
            "poisson_fc": {"title": "Poisson FC", "problem": "poisson", "model": "mlp",
                           "arch": {"hidden": [400, 400]}, "paper_arch": "MLP 3072-400-400-1024",
                           "budget_wu": 10000, "eval_every_wu": 50, "batch_size": 200,
                           "smoothing": 4, "rematch_every": 50, "weight_decay": 0.0},
            "poisson_cnn": {"title": "Poisson CNN", "problem": "poisson", "model": "cnn",
                            "arch": {"conv": [[16, 7, 2], [16, 7, 2]], "fc": [128, 128]},
                            "paper_arch": "conv [[200,7,2],[200,7,2]], fc [400,400]",
                            "budget_wu": 1000, "eval_every_wu": 20, "batch_size": 200,
                            "smoothing": 4, "rematch_every": 50, "weight_decay": 0.0},
            "darcy_fc": {"title": "Darcy FC", "problem": "darcy", "model": "mlp",
                         "arch": {"hidden": [256, 256, 256]}, "paper_arch": "MLP 1024-1024-1024-1024-1",
                         "budget_wu": 2000, "eval_every_wu": 20, "batch_size": 200,
                         "smoothing": 2, "rematch_every": 10, "weight_decay": 1e-6},
            "darcy_cnn": {"title": "Darcy CNN", "problem": "darcy", "model": "cnn",
                          "arch": {"conv": [[8, 11, 2], [16, 7, 1], [32, 3, 1]], "fc": [128, 128]},
                          "paper_arch": "conv [[100,11,2],[200,7,1],[400,3,1]], fc [2048,2048]",
                          "budget_wu": 1000, "eval_every_wu": 20, "batch_size": 200,
                          "smoothing": 2, "rematch_every": 10, "weight_decay": 1e-6},
        },
        "regime": {"setup": "poisson_fc", "n_train": [100, 500, 2000], "methods": ["sgd", "fas2", "fas3", "fas4"],
                   "budget_wu": 1000, "seeds": 3},
        "sizes_note": (
            "**Sizes.** Poisson FC runs at the paper's size: 10,000 samples (8,000 train / 1,000 validation), the "
            "3072-400-400-1024 network, batch 200 and 10,000 work units. To fit the whole study into about 2 hours "
            "on a 2-core CPU (calibrated, see `python benchmarks/study.py --estimate`) the other set-ups are "
            "reduced: Poisson CNN with 16 instead of 200 channels and fully connected widths 128 instead of 400, "
            "1,000 work units (25 epochs), same 10,000 samples; Darcy with 4,000 samples (3,200 train / 400 "
            "validation, target the outflow QoI Q), the FC net 1024-256-256-256-1 instead of 1024-1024-1024-1024-1 "
            "for 2,000 work units (125 epochs) and the CNN with channels (8, 16, 32) instead of (100, 200, 400) and "
            "fully connected widths 128 instead of 2048 for 1,000 work units. The regime map uses 3 seeds and "
            "1,000 work units (1,000 epochs of 100 samples in whole-set batches, 400 of 500, 100 of 2,000, 25 "
            "of 8,000). Smoothing steps and re-matching follow the paper: 4 and every 50 cycles for Poisson, 2 "
            "and every 10 for Darcy (with weight decay 1e-6)."),
    },
    "quick": {
        "seeds": 3,
        "data": {"poisson": 400, "darcy": 300},
        "data_seed": 0,
        "split": {"train": 0.8, "val": 0.1, "test": 0.1},
        "eval_train_samples": 64,
        "setups": {
            "poisson_fc": {"title": "Poisson FC", "problem": "poisson", "model": "mlp",
                           "arch": {"hidden": [32, 32]}, "paper_arch": "MLP 3072-400-400-1024",
                           "budget_wu": 40, "eval_every_wu": 4, "batch_size": 40,
                           "smoothing": 2, "rematch_every": 2, "weight_decay": 0.0},
            "poisson_cnn": {"title": "Poisson CNN", "problem": "poisson", "model": "cnn",
                            "arch": {"conv": [[8, 7, 2], [8, 7, 2]], "fc": [32, 32]},
                            "paper_arch": "conv [[200,7,2],[200,7,2]], fc [400,400]",
                            "budget_wu": 40, "eval_every_wu": 4, "batch_size": 40,
                            "smoothing": 2, "rematch_every": 2, "weight_decay": 0.0},
            "darcy_fc": {"title": "Darcy FC", "problem": "darcy", "model": "mlp",
                         "arch": {"hidden": [32, 32, 32]}, "paper_arch": "MLP 1024-1024-1024-1024-1",
                         "budget_wu": 40, "eval_every_wu": 4, "batch_size": 40,
                         "smoothing": 2, "rematch_every": 2, "weight_decay": 1e-6},
            "darcy_cnn": {"title": "Darcy CNN", "problem": "darcy", "model": "cnn",
                          "arch": {"conv": [[4, 11, 2], [8, 7, 1], [8, 3, 1]], "fc": [16, 16]},
                          "paper_arch": "conv [[100,11,2],[200,7,1],[400,3,1]], fc [2048,2048]",
                          "budget_wu": 40, "eval_every_wu": 4, "batch_size": 40,
                          "smoothing": 2, "rematch_every": 2, "weight_decay": 1e-6},
        },
        "regime": {"setup": "poisson_fc", "n_train": [80], "methods": ["sgd", "fas2", "fas3", "fas4"],
                   "budget_wu": 20, "seeds": 2},
        "sizes_note": ("**Sizes.** Quick preset (a smoke test of the tooling, not a result): tiny stores (400 "
                       "Poisson, 300 Darcy samples), tiny networks, 40 work units with batch 40, 3 seeds."),
    },
}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _round(obj: Any, digits: int = 7) -> Any:
    """Floats to ``digits`` significant digits (a compact JSON); inf/nan to strings JSON can hold."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return obj
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: _round(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round(v, digits) for v in obj]
    return obj


def _write_json(path: Path, obj: Any, compact: bool = True) -> None:
    """Atomic JSON write (compact by default: the curves make these files large)."""
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(obj, separators=(",", ":")) if compact else json.dumps(obj, indent=1)
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def _split_sizes(n_total: int, split: Mapping[str, float]) -> tuple[int, int]:
    n_train = int(math.floor(split["train"] * n_total + 1e-9))
    n_val = int(math.floor((split["train"] + split["val"]) * n_total + 1e-9)) - n_train
    return n_train, n_val


def build_spec(preset_name: str, seeds: int | None = None, setups: list[str] | None = None) -> dict:
    spec = copy.deepcopy(PRESETS[preset_name])
    spec["preset"] = preset_name
    if seeds is not None:
        spec["seeds"] = int(seeds)
        spec["regime"]["seeds"] = min(spec["regime"]["seeds"], int(seeds))
    spec["methods"] = list(METHODS)
    spec["method_defs"] = method_defs()
    for s in spec["setups"].values():
        s["n_samples"] = spec["data"][s["problem"]]
        s["n_train"], s["n_val"] = _split_sizes(s["n_samples"], spec["split"])
    spec["selected"] = list(setups) if setups else list(spec["setups"])
    bad = [s for s in spec["selected"] if s not in spec["setups"]]
    if bad:
        raise SystemExit(f"--setups: unknown set-up(s) {', '.join(bad)} (allowed: {', '.join(spec['setups'])})")
    return spec


def run_config(spec: Mapping, setup: str, method: str, seed: int, *, params: str | None, device: str,
               budget: float | None = None, n_train: int | None = None) -> dict:
    """The resolved ``surrogate`` config of one run (every training knob set explicitly)."""
    from surrogate import config

    s = spec["setups"][setup]
    m = spec["method_defs"][method]
    B = float(budget if budget is not None else s["budget_wu"])
    split = dict(spec["split"])
    if n_train is not None:
        frac = n_train / s["n_samples"]
        split = {"train": frac, "val": spec["split"]["val"], "test": 1.0 - frac - spec["split"]["val"]}
    smooth = s["smoothing"]
    ov = [
        f"data.split={json.dumps(split)}", "data.normalize=true", "data.darcy_target=Q", "data.allow_incomplete=false",
        f"models.{s['problem']}.{s['model']}={json.dumps(s['arch'])}",
        f"train.budget_wu={B}", "train.work_measure=flops", f"train.batch_size={s['batch_size']}",
        f"train.lr={m['lr']}", f"train.momentum={MOMENTUM}", f"train.weight_decay={s['weight_decay']}",
        f"train.seed={seed}", f"train.device={device}", f"train.eval_every_wu={s['eval_every_wu']}",
        f"train.checkpoint_every_wu={max(B / 5.0, s['eval_every_wu'])}",
        f"train.eval_train_samples={spec['eval_train_samples']}", "train.best_metric=mse",
        f"train.by_problem.{s['problem']}={{}}",
        "train.fas.cycle=V", "train.fas.smoother=sgd", f"train.fas.pre={smooth}", f"train.fas.coarse={smooth}",
        f"train.fas.post={smooth}", f"train.fas.tau={m['tau'] or 'minibatch'}",
        f"train.fas.alpha_p={FAS_STABILITY['alpha_p']}", f"train.fas.alpha_m={FAS_STABILITY['alpha_m']}",
        f"train.fas.gamma={FAS_STABILITY['gamma']}", f"train.fas.eta={FAS_STABILITY['eta']}",
        "train.fas.theta=0.0", "train.fas.interpolation=plain", "train.fas.order=natural",
        f"train.fas.rematch_every={s['rematch_every']}",
    ]
    if m["trainer"] == "fas":
        ov.append(f"train.fas.levels={m['levels']}")
    return config.resolve(params, problem=s["problem"], model=s["model"], trainer=m["trainer"], overrides=ov)


def plan(spec: Mapping, out: Path, stores: Mapping[str, Path], *, params: str | None, device: str) -> list[dict]:
    tasks = []
    for setup in spec["selected"]:
        s = spec["setups"][setup]
        for method in spec["methods"]:
            for seed in range(spec["seeds"]):
                tasks.append({"run_id": f"{setup}/{method}/seed{seed}", "setup": setup, "method": method,
                              "seed": seed, "group": "main", "n_train": s["n_train"],
                              "budget_wu": s["budget_wu"], "dir": str(out / "runs" / setup / method / f"seed{seed}"),
                              "store": str(stores[s["problem"]]),
                              "cfg": run_config(spec, setup, method, seed, params=params, device=device)})
    reg = spec["regime"]
    if reg["setup"] in spec["selected"]:
        for n in reg["n_train"]:
            for method in reg["methods"]:
                for seed in range(reg["seeds"]):
                    s = spec["setups"][reg["setup"]]
                    tasks.append({"run_id": f"regime-n{n}/{method}/seed{seed}", "setup": reg["setup"],
                                  "method": method, "seed": seed, "group": "regime", "n_train": n,
                                  "budget_wu": reg["budget_wu"],
                                  "dir": str(out / "runs" / f"regime-n{n}" / method / f"seed{seed}"),
                                  "store": str(stores[s["problem"]]),
                                  "cfg": run_config(spec, reg["setup"], method, seed, params=params, device=device,
                                                    budget=reg["budget_wu"], n_train=n)})
    return tasks


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def ensure_store(problem: str, path: Path, n: int, seed: int, params: str | None) -> None:
    """Generate (or finish) a store with `pde-data generate` unless it is complete."""
    from surrogate.data import open_store

    if path.exists():
        try:
            st = open_store(path, problem)
            if st.n_total == n and st.n_done == n:
                return
        except Exception:  # noqa: BLE001 - let pde-data decide (it resumes or refuses with a message)
            pass
    cmd = [sys.executable, "-m", "pde_data.cli", "generate", problem, "--out", str(path), "--n", str(n),
           "--seed", str(seed), "--no-progress"]
    if params:
        cmd += ["--params", str(params)]
    print(f"study: generating {n} {problem} samples -> {path}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"study: {problem} store done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# calibration (expected wall time)
# --------------------------------------------------------------------------
def _grid_n(params: str | None, problem: str) -> int:
    if params and Path(params).exists():
        import yaml

        sec = (yaml.safe_load(Path(params).read_text()) or {}).get(problem) or {}
        return int(sec.get("n", 32))
    return 32


def level1_cost(spec: Mapping, setup: str, params: str | None) -> float:
    """FLOP cost of a pass of the once-coarsened (half-width) net relative to the fine net."""
    import torch

    from surrogate.data import make_layout
    from surrogate.io import make_net
    from surrogate.multilevel import build_hierarchy, flops_per_sample

    s = spec["setups"][setup]
    cfg = run_config(spec, setup, "sgd", 0, params=params, device="cpu")
    torch.manual_seed(0)
    net = make_net(cfg["model"], make_layout(s["problem"], _grid_n(params, s["problem"]), "Q"))
    coarse = build_hierarchy(copy.deepcopy(net), 2).nets[1]
    return flops_per_sample(coarse) / flops_per_sample(net)


def calibrate(spec: Mapping, *, params: str | None, device: str, stores: Mapping[str, Path] | None = None,
              repeats: int = 3) -> dict:
    """Seconds per FLOP work unit of each set-up and trainer, measured on random data of the right shapes.

    Each figure is the fastest of ``repeats`` timed passes (robust to other
    processes on the CPU).  Also measures one evaluation (validation +
    training subset, + the auxiliary net) and the store load time.
    """
    import torch

    from surrogate.data import load_dataset, make_layout, open_store
    from surrogate.io import make_net
    from surrogate.multilevel import FASTrainer, MinibatchStream, build_hierarchy
    from surrogate.train import pick_device

    dev = pick_device(device)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    out: dict[str, Any] = {}
    for setup in spec["selected"]:
        s = spec["setups"][setup]
        layout = make_layout(s["problem"], _grid_n(params, s["problem"]), "Q")
        cfg = run_config(spec, setup, "sgd", 0, params=params, device=device)
        torch.manual_seed(0)
        net0 = make_net(cfg["model"], layout)
        coarse = build_hierarchy(copy.deepcopy(net0), 2).nets[1]
        n = max(2 * s["batch_size"], 400)
        shape = (int(math.prod(layout.in_shape)),) if s["model"] == "mlp" else tuple(layout.in_shape)
        X = torch.randn((n,) + shape, device=dev)
        Y = torch.randn(n, layout.out_dim, device=dev)
        per_wu: dict[str, float] = {}
        kinds = [("sgd", 1, "sgd"), ("adam", 1, "adam")] + [
            (f"fas{L}", L, "sgd") for L in sorted({spec["method_defs"][m]["levels"] for m in spec["methods"]} - {1})]
        for name, levels, opt in kinds:
            torch.manual_seed(0)
            net = make_net(cfg["model"], layout).to(dev)
            tr = FASTrainer(build_hierarchy(net, levels), X, Y, MinibatchStream(n, s["batch_size"], device=dev),
                            optimizer=opt, lr=1e-4, momentum=MOMENTUM, pre=s["smoothing"], coarse=s["smoothing"],
                            post=s["smoothing"], rematch_every=s["rematch_every"])
            tr.cycle()
            best = math.inf
            for _ in range(repeats):
                w0 = tr.work["flops"]
                sync()
                t0 = time.perf_counter()
                k = 0
                while k < 2 or (tr.work["flops"] - w0 < 12 and k < 50):
                    tr.cycle()
                    k += 1
                sync()
                best = min(best, (time.perf_counter() - t0) / (tr.work["flops"] - w0))
            per_wu[name] = best
        # one evaluation: forward over validation + training subset (fine) and validation (aux)
        n_eval = s["n_val"] + spec["eval_train_samples"]
        net0, coarse = net0.to(dev), coarse.to(dev)
        rows, rows_aux = min(n, n_eval), min(n, s["n_val"])
        best_eval = best_aux = math.inf
        with torch.no_grad():
            for _ in range(repeats):
                sync()
                t0 = time.perf_counter()
                net0(X[:rows])
                sync()
                best_eval = min(best_eval, (time.perf_counter() - t0) * n_eval / rows)
                t0 = time.perf_counter()
                coarse(X[:rows_aux])
                sync()
                best_aux = min(best_aux, (time.perf_counter() - t0) * s["n_val"] / rows_aux)
        load_s = 1.0
        if stores is not None and Path(stores[s["problem"]]).exists():
            t0 = time.perf_counter()
            load_dataset(open_store(stores[s["problem"]], s["problem"]), data_cfg=cfg["data"],
                         flat=s["model"] == "mlp", device=dev, splits=("train", "val"))
            load_s = time.perf_counter() - t0
        out[setup] = {"s_per_wu": per_wu, "eval_s": best_eval + 0.005, "aux_eval_s": best_aux,
                      "load_s": load_s}
    return out


def estimate_task(task: Mapping, spec: Mapping, cal: Mapping) -> float:
    c = cal[task["setup"]]
    m = spec["method_defs"][task["method"]]
    key = m["trainer"] if m["trainer"] != "fas" else f"fas{m['levels']}"
    B = float(task["budget_wu"])
    ev = spec["setups"][task["setup"]]["eval_every_wu"]
    n_eval = B / ev + 2
    frac = task["n_train"] / spec["setups"][task["setup"]]["n_train"]
    eval_s = c["eval_s"] * min(1.0, 0.2 + 0.8 * frac) if task["group"] == "regime" else c["eval_s"]
    per_eval = eval_s + (c["aux_eval_s"] if m["trainer"] == "fas" else 0.0)
    return B * c["s_per_wu"][key] + n_eval * per_eval + c["load_s"] + 0.5


def print_estimate(spec: Mapping, tasks: list[dict], cal: Mapping, jobs: int) -> float:
    total = 0.0
    by_setup: dict[str, float] = {}
    for t in tasks:
        e = estimate_task(t, spec, cal)
        key = t["setup"] if t["group"] == "main" else "regime map"
        by_setup[key] = by_setup.get(key, 0.0) + e
        total += e
    lines = ["study: calibration (fastest of 3 passes; ms per FLOP work unit) and expected wall time:"]
    for setup, c in cal.items():
        ms = ", ".join(f"{k} {1e3 * v:.2f}" for k, v in c["s_per_wu"].items())
        lines.append(f"  {setup:12s} {ms}; eval {1e3 * c['eval_s']:.0f} ms; load {c['load_s']:.1f} s; "
                     f"level-1 FLOP cost {spec['setups'][setup]['flops_ratio_level1']:.3f}")
    for k, v in by_setup.items():
        n = sum(1 for t in tasks if (t["setup"] if t["group"] == "main" else "regime map") == k)
        lines.append(f"  {k:12s} {n:4d} runs  {v / 60:7.1f} min")
    par = f" (about {total / 60 / jobs:.1f} min with --jobs {jobs} if the cores are free)" if jobs > 1 else ""
    lines.append(f"  total        {len(tasks):4d} runs  {total / 60:7.1f} min sequential{par}")
    print("\n".join(lines), file=sys.stderr, flush=True)
    return total


# --------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------
def read_curves(live_dir: Path) -> dict[str, list]:
    """The dvclive TSV curves of a run, aligned on the logged steps."""
    base = Path(live_dir) / "plots" / "metrics"

    def tsv(rel: str) -> dict[int, float]:
        p = base / rel
        if not p.exists():
            return {}
        rows = p.read_text().splitlines()[1:]
        out = {}
        for line in rows:
            parts = line.split("\t")
            if len(parts) >= 2 and parts[0].strip():
                out[int(float(parts[-2]))] = float(parts[-1])
        return out

    flops = tsv("work_units_flops.tsv")
    steps = sorted(flops)
    series = {"wu_flops": flops, "wu_paper": tsv("work_units_paper.tsv"),
              "val_mse": tsv("val/mse.tsv"), "val_linf": tsv("val/linf.tsv"),
              "aux_val_mse": tsv("aux_val/mse.tsv"), "aux_val_linf": tsv("aux_val/linf.tsv"),
              "train_mse": tsv("train/mse.tsv"), "train_linf": tsv("train/linf.tsv"),
              "train_loss": tsv("train_loss.tsv")}
    curve: dict[str, list] = {"step": steps}
    for k, d in series.items():
        if d or k in ("wu_flops", "wu_paper", "val_mse", "val_linf"):
            curve[k] = [d.get(st) for st in steps]
    return curve


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _store_fingerprint(path: str) -> str:
    from surrogate.data import open_store

    return open_store(path).fingerprint()


def record_is_current(task: Mapping, fingerprint: str) -> bool:
    p = Path(task["dir"]) / "record.json"
    if not p.exists():
        return False
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        return False
    return (_comparable(rec.get("config")) == _comparable(_jsonable(task["cfg"]))
            and rec.get("store_fingerprint") == fingerprint)


def _comparable(cfg: Any) -> Any:
    """A run's config without the keys that do not change its result's meaning (the device it ran on)."""
    if not isinstance(cfg, dict):
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.get("train", {}).pop("device", None)
    return cfg


def run_task(task: Mapping, threads: int, keep_models: bool, fingerprint: str) -> dict:
    """Train one run (resuming from its checkpoint), write its record.json, drop its model files."""
    import torch

    torch.set_num_threads(threads)
    from surrogate.train import ResumeError, TrainingDiverged, train

    out = Path(task["dir"])
    rec_path = out / "record.json"
    rec_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    status, error, summary = "ok", None, None
    try:
        try:
            summary = train(task["cfg"], task["store"], out, resume=True, progress=False, live=True, verbose=False)
        except ResumeError:
            shutil.rmtree(out, ignore_errors=True)
            summary = train(task["cfg"], task["store"], out, resume=False, progress=False, live=True, verbose=False)
    except TrainingDiverged as exc:
        status, error = "diverged", str(exc)
    wall = time.perf_counter() - t0
    curve = read_curves(out / "dvclive")
    rec = {
        "run_id": task["run_id"], "setup": task["setup"], "method": task["method"], "seed": task["seed"],
        "group": task["group"], "n_train": task["n_train"], "budget_wu": task["budget_wu"], "status": status,
        "error": error, "device": summary["device"] if summary else task["cfg"]["train"]["device"],
        "threads": threads, "wall_s": summary["elapsed_s"] if summary else wall, "process_s": wall,
        "cycles": summary["cycles"] if summary else None,
        "work_units": summary["work_units"] if summary else (curve["wu_flops"][-1] if curve["wu_flops"] else 0.0),
        "summary": ({k: summary.get(k) for k in ("best", "final", "aux_best", "aux_final", "best_train", "n_train",
                                                 "n_val")} if summary else None),
        "store_fingerprint": fingerprint, "config": _jsonable(task["cfg"]), "curve": curve,
    }
    rec = _round(rec)
    rec["config"] = _jsonable(task["cfg"])
    _write_json(rec_path, rec)
    if not keep_models:
        for p in out.glob("*.pt"):
            p.unlink(missing_ok=True)
    return rec


def _worker(args: tuple) -> tuple[str, dict | None, str | None]:
    task, threads, keep, fp = args
    try:
        return task["run_id"], run_task(task, threads, keep, fp), None
    except Exception:  # noqa: BLE001 - reported by the parent, the study goes on
        return task["run_id"], None, traceback.format_exc()


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
def _command_line(argv: list[str]) -> str:
    return " ".join(["python", "benchmarks/study.py"] + [shlex.quote(a) for a in argv])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="See the module docstring for what runs and where it goes.")
    p.add_argument("--quick", action="store_true", help="tiny preset (a couple of minutes), a smoke test")
    p.add_argument("--out", default=None, help="study directory (default: study/ ; quick: $TMPDIR/fas-study-quick)")
    p.add_argument("--docs", default=None, help="where RESULTS.md and the PNGs go (default: docs/ ; quick: OUT/docs)")
    p.add_argument("--data", default=None, help="directory of the stores (default: OUT/data)")
    p.add_argument("--params", default=str(ROOT / "params.yaml"),
                   help="params.yaml for the generators and the data/models/train defaults (every training knob "
                        "that the comparison depends on is set explicitly by the study)")
    p.add_argument("--setups", nargs="+", default=None, metavar="SETUP",
                   help="run only these set-ups (poisson_fc poisson_cnn darcy_fc darcy_cnn); the report covers "
                        "all finished runs of the preset")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: 5; quick: 3)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes; default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per run (default: CPU count / jobs)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="training device (default cpu)")
    p.add_argument("--estimate", action="store_true", help="calibrate, print the expected wall time and stop")
    p.add_argument("--no-report", action="store_true", help="do not write RESULTS.md / PNGs")
    p.add_argument("--keep-models", action="store_true", help="keep each run's model and checkpoint files")
    args = p.parse_args(argv)

    preset = "quick" if args.quick else "full"
    out = Path(args.out) if args.out else (Path(tempfile.gettempdir()) / "fas-study-quick" if args.quick
                                           else ROOT / "study")
    docs = Path(args.docs) if args.docs else (out / "docs" if args.quick else ROOT / "docs")
    data = Path(args.data) if args.data else out / "data"
    params = args.params if args.params and Path(args.params).exists() else None
    jobs = max(1, int(args.jobs))
    threads = args.threads or max(1, (os.cpu_count() or 2) // jobs)

    import torch

    torch.set_num_threads(threads)
    spec = build_spec(preset, args.seeds, args.setups)
    stores = {prob: data / f"{prob}.zarr" for prob in ("poisson", "darcy")}
    needed = sorted({spec["setups"][s]["problem"] for s in spec["selected"]})

    lock = None if args.estimate else _lock(out)  # noqa: F841 - held until the process exits
    if not args.estimate:
        data.mkdir(parents=True, exist_ok=True)
        for prob in needed:
            ensure_store(prob, stores[prob], spec["data"][prob], spec["data_seed"], params)
    for setup in spec["setups"]:
        spec["setups"][setup]["flops_ratio_level1"] = level1_cost(spec, setup, params)
    cal = calibrate(spec, params=params, device=args.device, stores=None if args.estimate else stores)
    tasks = plan(spec, out, stores, params=params, device=args.device)
    estimate = print_estimate(spec, tasks, cal, jobs)
    if args.estimate:
        return 0

    fps = {prob: _store_fingerprint(str(stores[prob])) for prob in needed}
    todo = [t for t in tasks if not record_is_current(t, fps[spec["setups"][t["setup"]]["problem"]])]
    todo_s = sum(estimate_task(t, spec, cal) for t in todo)
    print(f"study: {len(tasks) - len(todo)} of {len(tasks)} runs already done; {len(todo)} to run "
          f"(about {todo_s / 60:.1f} min sequential) -> {out}", file=sys.stderr, flush=True)

    from tqdm.auto import tqdm

    failures: list[tuple[str, str]] = []
    bar = tqdm(total=len(todo), unit="run", desc="study", dynamic_ncols=True)
    args_list = [(t, threads, args.keep_models, fps[spec["setups"][t["setup"]]["problem"]]) for t in todo]

    def done(run_id: str, rec: dict | None, err: str | None) -> None:
        bar.update(1)
        if err is not None:
            failures.append((run_id, err))
            tqdm.write(f"study: {run_id} FAILED:\n{err}", file=sys.stderr)
            return
        best = study_report.readout(rec, "val_mse", "flops", rec["budget_wu"], "best")
        tqdm.write(f"study: {run_id:34s} {rec['status']:8s} best val mse {study_report.fmt(best)} "
                   f"({rec['wall_s']:.1f} s)", file=sys.stderr)

    try:
        if jobs == 1:
            for a in args_list:
                bar.set_postfix_str(a[0]["run_id"], refresh=True)
                done(*_worker(a))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
                futs = [ex.submit(_worker, a) for a in args_list]
                for f in as_completed(futs):
                    done(*f.result())
    finally:
        bar.close()

    records = []
    for t in tasks:
        pth = Path(t["dir"]) / "record.json"
        if pth.exists():
            records.append(json.loads(pth.read_text()))
    # records of set-ups not selected this time but finished before (e.g. on another machine)
    if args.setups:
        full_tasks = plan(build_spec(preset, args.seeds), out, stores, params=params, device=args.device)
        seen = {r["run_id"] for r in records}
        for t in full_tasks:
            pth = Path(t["dir"]) / "record.json"
            if t["run_id"] not in seen and pth.exists():
                records.append(json.loads(pth.read_text()))
    results = {"spec": spec, "calibration": cal, "estimate_s": estimate, "threads": threads, "jobs": jobs,
               "command": _command_line(argv), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "versions": {"python": sys.version.split()[0], "torch": str(torch.__version__)},
               "records": records}
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "results.json", _round(results))
    print(f"study: {len(records)} records -> {out / 'results.json'}", file=sys.stderr, flush=True)
    if not args.no_report and records:
        report_cmd = (f"python benchmarks/study_report.py --results {shlex.quote(str(_rel(out / 'results.json')))}"
                      f" --docs {shlex.quote(str(_rel(docs)))}")
        info = study_report.build_report(json.loads((out / "results.json").read_text()), docs,
                                         command=_command_line(argv), report_command=report_cmd)
        _write_json(out / "summary.json", _round({"verdicts": info["verdicts"], "results_md": info["results_md"]}),
                    compact=False)
        print(f"study: report -> {info['results_md']} ({len(info['pngs'])} plots); paired statistics -> "
              f"{out / 'summary.json'}", file=sys.stderr, flush=True)
    if failures:
        print(f"study: {len(failures)} run(s) failed with an error (not divergence): "
              f"{', '.join(r for r, _ in failures)}; rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


def _lock(out: Path):
    """Hold an exclusive lock on OUT/study.lock for the life of the process (one study per directory)."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / "study.lock", "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit(f"study: another study process is running in {out} (lock {out / 'study.lock'}); "
                         "wait for it or use another --out") from None
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def _rel(p: Path) -> Path:
    try:
        return p.resolve().relative_to(ROOT)
    except ValueError:
        return p


if __name__ == "__main__":
    sys.exit(main())
