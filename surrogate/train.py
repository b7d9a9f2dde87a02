"""``surrogate train``: one-level (SGD/Adam) or multilevel FAS training on a store.

Every trainer runs through :class:`surrogate.multilevel.FASTrainer`; ``sgd``
and ``adam`` are a one-level hierarchy (one optimizer step per cycle), ``fas``
a hierarchy of ``train.fas.levels`` networks.  The run is budgeted in work
units (``train.budget_wu``; one unit = forward + backward pass over one
minibatch of the fine network, the paper's section 8, counted as
``train.work_measure``: ``paper`` (the paper's 1/4-per-level rule) or
``flops`` (measured from the layer sizes)).

Every ``train.eval_every_wu`` work units the loop (the only host
synchronisation) reads the trainer's mean training loss per level,
evaluates the fine network (and the first auxiliary network) on the
validation split -- and on the first ``train.eval_train_samples`` training
samples -- in physical units, logs everything with dvclive against work
units and updates the tqdm bar.  dvclive metrics (``OUT/dvclive/plots/metrics``):
``train_loss`` (mean normalised minibatch loss of the fine level since the
last log; ``train_loss_levels/levelK`` per level), ``val/{mse,linf,rel_l2}``
and ``aux_val/...`` (fine and first auxiliary network on the validation
split, physical units), ``train/...`` (fine network on the training subset),
``work_units`` (exact), ``work_units_{paper,flops}``; the dvclive ``step`` is
the work-unit count rounded to an integer (kept strictly increasing), so
``dvc plots`` draws the curves against work units.  Every ``train.checkpoint_every_wu`` work
units the whole state is written atomically to ``OUT/checkpoint.pt``
(trainer state: every level, optimizer states, matchings, data-order
position, RNG states; loop state: history, best networks).  ``--resume``
continues from it and ends with the same result as an uninterrupted run.

Outputs in ``OUT``: ``best.pt`` / ``final.pt`` (fine network, best by
validation ``train.best_metric`` and at the end), for FAS also
``aux_best.pt`` / ``aux_final.pt`` (the first auxiliary network),
``train_summary.json``, ``checkpoint.pt``, ``dvclive/``.  Model files are
written only when the run ends without divergence.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from surrogate import config as config_mod
from surrogate.data import Codec, Dataset, Split, load_dataset, open_store
from surrogate.io import (arch_of, build_net, make_net, read_checkpoint, save_checkpoint, save_model)
from surrogate.metrics import ErrorAccumulator

OUTPUT_FILES = ("best.pt", "final.pt", "aux_best.pt", "aux_final.pt", "train_summary.json")
CHECKPOINT = "checkpoint.pt"
LIVE_DIR = "dvclive"
# keys that may differ between a checkpoint and a --resume run
RESUMABLE_CHANGES = ("train.budget_wu", "train.device", "train.checkpoint_every_wu")


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf; the message names the level and the params to lower."""

    def __init__(self, message: str, level: int | None = None):
        super().__init__(message)
        self.level = level


class ResumeError(ValueError):
    """A checkpoint that does not belong to this run."""


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise config_mod.ConfigError("train.device = 'cuda': no CUDA device is available "
                                     "(use 'auto' or 'cpu')")
    return torch.device(name)


# --------------------------------------------------------------------------
# evaluation of one network on a split (physical units)
# --------------------------------------------------------------------------
@torch.no_grad()
def split_errors(net: torch.nn.Module, split: Split, codec: Codec, batch_size: int,
                 limit: int | None = None) -> dict[str, dict[str, float]]:
    """{target: {mse, linf, rel_l2}} of ``net`` on ``split`` in physical units."""
    slices = codec.target_slices()
    accs = {t: ErrorAccumulator() for t in slices}
    was_training = net.training
    net.eval()
    for xb, yb in split.batches(batch_size, limit):
        pred = codec.decode_torch(net(xb).reshape(yb.shape[0], -1).double())
        true = codec.decode_torch(yb.double())
        for t, sl in slices.items():
            accs[t].add(pred[:, sl], true[:, sl])
    net.train(was_training)
    return {t: a.result() for t, a in accs.items()}


# --------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------
def _stability_hint(cfg: Mapping) -> str:
    t = cfg["train"]
    hint = f"train.lr (now {t['lr']:g})"
    if t["trainer"] != "adam":
        hint += f", train.momentum (now {t['momentum']:g})"
    if t["trainer"] == "fas":
        f = t["fas"]
        hint += (f", train.fas.gamma (tau-correction scale, now {f['gamma']:g}), train.fas.alpha_p / "
                 f"train.fas.alpha_m (coarse-grid correction scales, now {f['alpha_p']:g} / {f['alpha_m']:g}), "
                 f"or raise train.fas.eta (learning-rate divisor per level, now {f['eta']:g}) "
                 f"or use fewer train.fas.levels (now {f['levels']})")
    return hint


def _diverged(cfg: Mapping, level: int, work: float, what: str = "training loss") -> TrainingDiverged:
    where = "level 0 (the fine network)" if level == 0 else f"level {level} (coarse network {level})"
    return TrainingDiverged(
        f"training diverged: the {what} on {where} became NaN or inf after {work:.1f} work units. "
        f"Lower the stability parameters and train again: {_stability_hint(cfg)}. "
        "No model file was written.", level)


def _clone_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu")
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_cpu(v) for v in obj)
    return obj


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0], "torch": str(torch.__version__), "numpy": str(np.__version__)}
    try:
        out["pde-surrogate"] = md.version("pde-surrogate")
    except md.PackageNotFoundError:
        pass
    return out


class _Logger:
    """dvclive + tqdm; replays the history after a resume so the curves have no gaps or duplicates."""

    def __init__(self, live_dir: Path | None, progress: bool, budget: float, initial: float):
        self.live = None
        if live_dir is not None:
            from dvclive import Live

            shutil.rmtree(live_dir, ignore_errors=True)
            self.live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None)
        from tqdm.auto import tqdm

        self.bar = tqdm(total=float(budget), initial=float(initial), unit="wu", disable=not progress,
                        dynamic_ncols=True, desc="train", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} wu "
                        "[{elapsed}<{remaining}{postfix}]")
        self.last_step = -1

    def record(self, rec: Mapping) -> None:
        if self.live is not None:
            step = max(self.last_step + 1, int(round(rec["work_units"])))
            self.live.step = step
            self.last_step = step
            for k, v in _flatten(rec).items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self.live.log_metric(k, float(v))
            self.live.next_step()
        post = {"train": rec.get("train_loss"), "val_mse": rec["val"].get("mse")}
        if "aux_val" in rec:
            post["aux_mse"] = rec["aux_val"].get("mse")
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in post.items() if v is not None}, refresh=False)

    def advance(self, work: float) -> None:
        self.bar.update(max(work - self.bar.n, 0.0))

    def close(self) -> None:
        self.bar.close()
        if self.live is not None:
            self.live.end()


def _flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(_flatten(v, key))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                out[f"{key}/level{i}"] = x
        else:
            out[key] = v
    return out


def build_trainer(cfg: Mapping, net: torch.nn.Module, dataset: Dataset, device: torch.device):
    """The hierarchy + minibatch stream + FASTrainer for ``cfg`` (sgd/adam = one level)."""
    from surrogate import multilevel as ml

    t, f = cfg["train"], cfg["train"]["fas"]
    levels = f["levels"] if t["trainer"] == "fas" else 1
    hier = ml.build_hierarchy(net, levels, theta=f["theta"], interpolation=f["interpolation"],
                              order=f["order"], seed=t["seed"])
    train = dataset["train"]
    batches = ml.MinibatchStream(len(train), min(t["batch_size"], len(train)), seed=t["seed"], device=device)
    optimizer = t["trainer"] if t["trainer"] != "fas" else f["smoother"]
    trainer = ml.FASTrainer(hier, train.X, train.Y, batches, optimizer=optimizer, lr=t["lr"],
                            momentum=t["momentum"], weight_decay=t["weight_decay"], pre=f["pre"],
                            coarse=f["coarse"], post=f["post"], cycle=f["cycle"], tau=f["tau"],
                            alpha_p=f["alpha_p"], alpha_m=f["alpha_m"], gamma=f["gamma"], eta=f["eta"],
                            rematch_every=f["rematch_every"])
    return hier, trainer


def _model_meta(cfg: Mapping, dataset: Dataset, net: torch.nn.Module, role: str, selection: str,
                record: Mapping | None, store_info: Mapping) -> dict:
    gx, gy = dataset.codec.grid
    return {
        "problem": cfg["problem"],
        "layout": dataset.layout.to_dict(),
        "grid": {"n": dataset.layout.n, "x": gx.tolist(), "y": gy.tolist()},
        "arch": arch_of(net),
        "model_config": copy.deepcopy(cfg["model"]),
        "normalization": copy.deepcopy(dataset.codec.norm),
        "train": copy.deepcopy(cfg["train"]),
        "data": copy.deepcopy(cfg["data"]),
        "config": copy.deepcopy(cfg),
        "store": dict(store_info),
        "role": role,
        "level": 0 if role == "fine" else 1,
        "selection": selection,
        "work_units": None if record is None else record["work_units"],
        "metrics": None if record is None else {"val": record.get("aux_val" if role == "aux" else "val"),
                                                 "val_by_target": record.get(
                                                     "aux_val_targets" if role == "aux" else "val_targets")},
        "versions": _versions(),
        "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def train(cfg: Mapping, store: str | Path, out: str | Path, *, resume: bool = False, progress: bool = True,
          live: bool = True, live_dir: str | Path | None = None, callback: Callable[[Mapping], None] | None = None,
          verbose: bool = True) -> dict:
    """Train as configured by ``cfg`` (from :func:`surrogate.config.resolve`); returns the summary.

    ``callback(state)`` is called after every cycle with ``{"work_units",
    "cycle", "checkpointed"}`` (tests use it to simulate a kill).
    """
    cfg = copy.deepcopy(dict(cfg))
    t = cfg["train"]
    out = Path(out)
    device = pick_device(t["device"])
    ckpt_path = out / CHECKPOINT
    say = (lambda msg: print(msg, file=sys.stderr)) if verbose else (lambda msg: None)

    ck = None
    if resume and ckpt_path.exists():
        ck = read_checkpoint(ckpt_path)
        changed = [k for k in config_mod.diff(ck["config"], cfg) if k not in RESUMABLE_CHANGES]
        if changed:
            raise ResumeError(f"--resume: {ckpt_path} was written with other parameters ({', '.join(changed)}); "
                              "train without --resume to start over, or use another --out")
        say(f"resuming from {ckpt_path} at {ck['loop']['work_units']:.1f} work units")
    elif resume:
        say(f"--resume: no checkpoint in {out}; starting from scratch")
    out.mkdir(parents=True, exist_ok=True)
    if ck is None:
        for name in (*OUTPUT_FILES, CHECKPOINT):
            (out / name).unlink(missing_ok=True)

    store_obj = open_store(store, cfg["problem"])
    store_info = store_obj.describe()
    # the generator's parameters (Darcy: random-field and boundary data), for `surrogate mc`
    store_info["params"] = copy.deepcopy(store_obj.record.get("params"))
    if ck is not None and ck["store"]["fingerprint"] != store_info["fingerprint"]:
        raise ResumeError(f"--resume: the store {str(store)!r} is not the one {ckpt_path} was trained on "
                          "(its fingerprint differs); train without --resume to start over")
    dataset = load_dataset(store_obj, data_cfg=cfg["data"], flat=cfg["model"]["kind"] == "mlp", device=device,
                           splits=("train", "val"),
                           normalization=None if ck is None else ck["normalization"])
    ebs = cfg["data"]["eval_batch_size"]
    measure = t["work_measure"]
    fas_levels = t["fas"]["levels"] if t["trainer"] == "fas" else 1

    torch.manual_seed(t["seed"])
    net = make_net(cfg["model"], dataset.layout).to(device)
    hier, trainer = build_trainer(cfg, net, dataset, device)
    budget = float(t["budget_wu"])

    if ck is None:
        loop = {"work_units": 0.0, "cycles": 0, "next_eval": 0.0, "next_ckpt": float(t["checkpoint_every_wu"]),
                "best_value": math.inf, "aux_best_value": math.inf, "elapsed_s": 0.0}
        history: list[dict] = []
        best = {"state": None, "record": None}
        aux_best = {"state": None, "arch": None, "record": None}
    else:
        trainer.load_state_dict(ck["trainer"])
        loop = dict(ck["loop"])
        history = list(ck["history"])
        best = dict(ck["best"])
        aux_best = dict(ck["aux_best"])
        torch.set_rng_state(ck["rng"]["torch"])
        if device.type == "cuda" and ck["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ck["rng"]["cuda"], device)
        ce = t["checkpoint_every_wu"]  # may have changed on resume
        loop["next_ckpt"] = (math.floor(loop["work_units"] / ce + 1e-9) + 1) * ce

    logger = _Logger((Path(live_dir) if live_dir is not None else out / LIVE_DIR) if live else None,
                     progress, budget, loop["work_units"])
    for rec in history:
        logger.record(rec)

    def work_now() -> float:
        return float(trainer.work[measure])

    def evaluate_now() -> dict:
        w = work_now()
        from surrogate.multilevel import DivergenceError

        try:
            losses = [float(v) for v in trainer.level_losses()] if loop["cycles"] else []
        except DivergenceError as exc:
            raise _diverged(cfg, int(getattr(exc, "level", 0) or 0), w) from None
        primary = dataset.layout.targets[0]
        val_t = split_errors(hier.nets[0], dataset["val"], dataset.codec, ebs)
        rec: dict[str, Any] = {"work_units": w, "cycles": loop["cycles"],
                               "work_units_flops": float(trainer.work["flops"]),
                               "work_units_paper": float(trainer.work["paper"])}
        if losses and math.isfinite(losses[0]):
            rec["train_loss"] = losses[0]
        if len(losses) > 1:
            rec["train_loss_levels"] = losses
        rec["val"] = val_t[primary]
        if len(val_t) > 1:
            rec["val_targets"] = val_t
        if not math.isfinite(rec["val"]["mse"]):
            raise _diverged(cfg, 0, w, "validation loss")
        if t["eval_train_samples"] > 0:
            rec["train"] = split_errors(hier.nets[0], dataset["train"], dataset.codec, ebs,
                                        t["eval_train_samples"])[primary]
        if fas_levels > 1:
            aux_t = split_errors(hier.nets[1], dataset["val"], dataset.codec, ebs)
            rec["aux_val"] = aux_t[primary]
            if len(aux_t) > 1:
                rec["aux_val_targets"] = aux_t
            if not math.isfinite(rec["aux_val"]["mse"]):
                raise _diverged(cfg, 1, w, "validation loss")
        key = t["best_metric"]
        if rec["val"][key] < loop["best_value"]:
            loop["best_value"] = rec["val"][key]
            best.update(state=_clone_state(hier.nets[0]), record=rec)
        if fas_levels > 1 and rec["aux_val"][key] < loop["aux_best_value"]:
            loop["aux_best_value"] = rec["aux_val"][key]
            aux_best.update(state=_clone_state(hier.nets[1]), arch=arch_of(hier.nets[1]), record=rec)
        history.append(rec)
        logger.record(rec)
        return rec

    def checkpoint(finished: bool = False) -> None:
        rng = {"torch": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
        save_checkpoint(ckpt_path, _cpu({
            "config": cfg, "store": store_info, "normalization": dataset.codec.norm,
            "trainer": trainer.state_dict(), "loop": loop, "history": history, "best": best,
            "aux_best": aux_best, "rng": rng, "finished": finished}))

    start = time.perf_counter() - float(loop.get("elapsed_s", 0.0))
    try:
        if loop["work_units"] >= loop["next_eval"]:
            evaluate_now()
            loop["next_eval"] = t["eval_every_wu"]
        while work_now() < budget:
            trainer.cycle()
            loop["cycles"] += 1
            w = work_now()
            loop["work_units"] = w
            logger.advance(min(w, budget))
            if w >= loop["next_eval"] or w >= budget:
                evaluate_now()
                loop["next_eval"] = (math.floor(w / t["eval_every_wu"] + 1e-9) + 1) * t["eval_every_wu"]
            checkpointed = False
            if w >= loop["next_ckpt"] and w < budget:
                loop["next_ckpt"] = (math.floor(w / t["checkpoint_every_wu"] + 1e-9) + 1) * t["checkpoint_every_wu"]
                loop["elapsed_s"] = time.perf_counter() - start
                checkpoint()
                checkpointed = True
            if callback is not None:
                callback({"work_units": w, "cycle": loop["cycles"], "checkpointed": checkpointed})
        if not history or history[-1]["work_units"] < work_now():
            evaluate_now()
    finally:
        logger.close()

    loop["elapsed_s"] = time.perf_counter() - start
    # ---- outputs (only after a run that did not diverge) ---------------------
    final_rec = history[-1]
    save_model(out / "final.pt", hier.nets[0], _model_meta(cfg, dataset, hier.nets[0], "fine", "final",
                                                          final_rec, store_info))
    best_net = build_net(arch_of(hier.nets[0]))
    best_net.load_state_dict(best["state"])
    save_model(out / "best.pt", best_net, _model_meta(cfg, dataset, best_net, "fine", "best", best["record"],
                                                      store_info))
    if fas_levels > 1:
        save_model(out / "aux_final.pt", hier.nets[1],
                   _model_meta(cfg, dataset, hier.nets[1], "aux", "final", final_rec, store_info))
        aux_net = build_net(aux_best["arch"])
        aux_net.load_state_dict(aux_best["state"])
        save_model(out / "aux_best.pt", aux_net,
                   _model_meta(cfg, dataset, aux_net, "aux", "best", aux_best["record"], store_info))
    summary = {
        "problem": cfg["problem"], "model": cfg["model"]["kind"], "trainer": t["trainer"],
        "levels": fas_levels, "device": str(device), "store": store_info,
        "work_units": work_now(), "work_measure": measure, "cycles": loop["cycles"],
        "elapsed_s": loop["elapsed_s"], "data_streamed": dataset.streamed,
        "n_train": len(dataset["train"]), "n_val": len(dataset["val"]),
        "best": _best_of(history, "val"), "final": {"val": final_rec["val"], "train": final_rec.get("train")},
    }
    if fas_levels > 1:
        summary["aux_best"] = _best_of(history, "aux_val")
        summary["aux_final"] = {"val": final_rec["aux_val"]}
    if "train" in final_rec:
        summary["best_train"] = _best_of(history, "train")
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    checkpoint(finished=True)
    b = summary["best"]
    say(f"trained {cfg['problem']} {cfg['model']['kind']} with {t['trainer']} for {work_now():.1f} work units "
        f"in {loop['elapsed_s']:.1f} s: best validation mse {b['mse']:.4g} (at {b['mse_at_wu']:.1f} wu), "
        f"best linf {b['linf']:.4g} (at {b['linf_at_wu']:.1f} wu) -> {out}")
    return summary


def _best_of(history: list[Mapping], key: str) -> dict:
    """Best value of each metric over the history (the paper's tables), with where it was reached."""
    out: dict[str, Any] = {}
    for m in ("mse", "linf", "rel_l2"):
        vals = [(r[key][m], r["work_units"]) for r in history if key in r and math.isfinite(r[key][m])]
        if vals:
            v, w = min(vals)
            out[m] = v
            out[f"{m}_at_wu"] = w
    return out
