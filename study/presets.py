"""The study's presets (sizes of every set-up), its methods and the paper's set-ups they are compared with."""

from __future__ import annotations

import copy
import json
import math
from typing import Mapping, Sequence

SQRT2 = math.sqrt(2.0)
FAS_STABILITY = {"alpha_p": 1.0, "alpha_m": 0.2, "gamma": 0.125, "eta": 2.0 * SQRT2}   # paper sec. 8.3
SGD_LR, ADAM_LR, MOMENTUM = 0.01, 1e-3, 0.9

# The paper's set-ups (section 8), quoted for reference: networks (MLP input and output sizes on the
# 32x32 grid, hidden widths; CNN [channels, kernel, stride] per conv layer and fc widths) and training.
PAPER_SETUPS: dict[str, dict] = {
    "poisson_fc": {"net": {"io": [3072, 1024], "hidden": [400, 400]},
                   "samples": 10000, "budget_wu": 10000, "smoothing": 4, "rematch_every": 50},
    "poisson_cnn": {"net": {"conv": [[200, 7, 2], [200, 7, 2]], "fc": [400, 400]},
                    "samples": 10000, "budget_wu": 10000, "smoothing": 4, "rematch_every": 50},
    "darcy_fc": {"net": {"io": [1024, 1], "hidden": [1024, 1024, 1024]}, "smoothing": 2, "rematch_every": 10},
    "darcy_cnn": {"net": {"conv": [[100, 11, 2], [200, 7, 1], [400, 3, 1]], "fc": [2048, 2048]},
                  "smoothing": 2, "rematch_every": 10},
}


def net_name(arch: Mapping, io: Sequence[int] | None = None) -> str:
    """A network as the paper writes it: ``3072-400-400-1024`` (MLP with ``io`` sizes) or ``conv [[..]], fc [..]``."""
    if "hidden" in arch:
        return "-".join(map(str, [io[0], *arch["hidden"], io[1]]))
    return f"conv {json.dumps(arch['conv'], separators=(',', ':'))}, fc {json.dumps(arch['fc'], separators=(',', ':'))}"


def paper_arch(setup: str) -> str:
    net = PAPER_SETUPS[setup]["net"]
    return f"MLP {net_name(net, net['io'])}" if "hidden" in net else net_name(net)


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


# What each set-up is; the presets size them.
SETUPS: dict[str, dict] = {
    "poisson_fc": {"title": "Poisson FC", "problem": "poisson", "model": "mlp"},
    "poisson_cnn": {"title": "Poisson CNN", "problem": "poisson", "model": "cnn"},
    "darcy_fc": {"title": "Darcy FC", "problem": "darcy", "model": "mlp"},
    "darcy_cnn": {"title": "Darcy CNN", "problem": "darcy", "model": "cnn"},
}
# Stores and split of every preset: the data seed and contiguous blocks of sample indices.
DATA = {"data_seed": 0, "split": {"train": 0.8, "val": 0.1, "test": 0.1}}
QUICK_TRAINING = {"budget_wu": 40, "eval_every_wu": 4, "batch_size": 40, "smoothing": 2, "rematch_every": 2}

PRESETS: dict[str, dict] = {
    "full": {
        **DATA,
        "data": {"poisson": 10000, "darcy": 4000},
        "seeds": 5,
        "eval_train_samples": 256,
        "setups": {
            "poisson_fc": {"arch": {"hidden": [400, 400]}, "budget_wu": 10000, "eval_every_wu": 50,
                           "batch_size": 200, "smoothing": 4, "rematch_every": 50, "weight_decay": 0.0},
            "poisson_cnn": {"arch": {"conv": [[16, 7, 2], [16, 7, 2]], "fc": [128, 128]}, "budget_wu": 1000,
                            "eval_every_wu": 20, "batch_size": 200, "smoothing": 4, "rematch_every": 50,
                            "weight_decay": 0.0},
            "darcy_fc": {"arch": {"hidden": [256, 256, 256]}, "budget_wu": 2000, "eval_every_wu": 20,
                         "batch_size": 200, "smoothing": 2, "rematch_every": 10, "weight_decay": 1e-6},
            "darcy_cnn": {"arch": {"conv": [[8, 11, 2], [16, 7, 1], [32, 3, 1]], "fc": [128, 128]},
                          "budget_wu": 1000, "eval_every_wu": 20, "batch_size": 200, "smoothing": 2,
                          "rematch_every": 10, "weight_decay": 1e-6},
        },
        "regime": {"setup": "poisson_fc", "n_train": [100, 500, 2000], "methods": ["sgd", "fas2", "fas3", "fas4"],
                   "budget_wu": 1000, "seeds": 3},
    },
    "quick": {
        "smoke_test": True,
        **DATA,
        "data": {"poisson": 400, "darcy": 300},
        "seeds": 3,
        "eval_train_samples": 64,
        "setups": {
            "poisson_fc": {"arch": {"hidden": [32, 32]}, **QUICK_TRAINING, "weight_decay": 0.0},
            "poisson_cnn": {"arch": {"conv": [[8, 7, 2], [8, 7, 2]], "fc": [32, 32]}, **QUICK_TRAINING,
                            "weight_decay": 0.0},
            "darcy_fc": {"arch": {"hidden": [32, 32, 32]}, **QUICK_TRAINING, "weight_decay": 1e-6},
            "darcy_cnn": {"arch": {"conv": [[4, 11, 2], [8, 7, 1], [8, 3, 1]], "fc": [16, 16]}, **QUICK_TRAINING,
                          "weight_decay": 1e-6},
        },
        "regime": {"setup": "poisson_fc", "n_train": [80], "methods": ["sgd", "fas2", "fas3", "fas4"],
                   "budget_wu": 20, "seeds": 2},
    },
}


def split_sizes(n_total: int, split: Mapping[str, float]) -> tuple[int, int]:
    """Training and validation sample counts of a store of ``n_total`` samples (contiguous blocks)."""
    n_train = int(math.floor(split["train"] * n_total + 1e-9))
    n_val = int(math.floor((split["train"] + split["val"]) * n_total + 1e-9)) - n_train
    return n_train, n_val


def build_spec(preset_name: str, seeds: int | None = None, setups: list[str] | None = None) -> dict:
    """The preset with everything derived from it: sample counts, methods, the paper's networks, the selection."""
    spec = copy.deepcopy(PRESETS[preset_name])
    spec["preset"] = preset_name
    if seeds is not None:
        spec["seeds"] = int(seeds)
        spec["regime"]["seeds"] = min(spec["regime"]["seeds"], int(seeds))
    spec["methods"] = list(METHODS)
    spec["method_defs"] = method_defs()
    spec["setups"] = {name: {**SETUPS[name], **sizes} for name, sizes in spec["setups"].items()}
    for name, s in spec["setups"].items():
        s["paper_arch"] = paper_arch(name)
        s["n_samples"] = spec["data"][s["problem"]]
        s["n_train"], s["n_val"] = split_sizes(s["n_samples"], spec["split"])
    spec["selected"] = list(setups) if setups else list(spec["setups"])
    bad = [s for s in spec["selected"] if s not in spec["setups"]]
    if bad:
        raise SystemExit(f"--setups: unknown set-up(s) {', '.join(bad)} (allowed: {', '.join(spec['setups'])})")
    return spec
