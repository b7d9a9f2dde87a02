"""The model card (``README.md``) of an export: what a person deciding whether to use the surrogate reads.

Sections follow the model cards of Mitchell et al. (2019) as the Hugging Face
hub shows them: a YAML front matter (library, tags, metrics), the model, the
data it was trained on, the training, the test metrics, intended use and
limits, how to load it, and the commands that reproduce it. Every figure in
the card comes from ``config.json`` beside it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import yaml

#: Test metrics shown in the card's table, with their column titles (definitions: surrogate.evaluate).
TABLE = {"mse": "MSE", "linf": "L-inf", "rel_l2": "relative L2", "rel_l2_mean": "rel. L2 per sample (mean)",
         "rel_l2_p95": "rel. L2 per sample (95th pct.)", "corr": "correlation"}
WHAT = {"poisson": "the solution u of -div(kappa grad u) = f on the unit square (u = 0 on the boundary)",
        "darcy": "single-phase Darcy flow on the unit square with a log-normal permeability k = exp(log_k)"}


def render(config: Mapping) -> str:
    """The model card of the export whose ``config.json`` is ``config``."""
    parts = [_front_matter(config), _model(config), _data(config), _training(config), _evaluation(config),
             _use(config), _loading(), _reproduce(config)]
    return "\n".join(parts)


def _title(config: Mapping) -> str:
    layout = config["layout"]
    return (f"{config['problem'].capitalize()} surrogate: {config['arch']['kind'].upper()} "
            f"{', '.join(layout['inputs'])} -> {', '.join(layout['targets'])} on a {layout['n']} x {layout['n']} grid")


def _front_matter(config: Mapping) -> str:
    fine = (config.get("evaluation") or {}).get("fine") or {}
    meta = {"library_name": "pde-surrogate", "license": "mit", "pipeline_tag": "other",
            "tags": ["pde", "surrogate", "neural-operator" if config["arch"]["kind"] == "fno" else "regression",
                     config["problem"], config["arch"]["kind"], config.get("train", {}).get("trainer", "")]}
    if fine:
        meta["metrics"] = [f"{target}_{key}" for target in fine for key in TABLE]
    return f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n# {_title(config)}\n"


def _params(config: Mapping) -> int:
    return sum(math.prod(shape) for shape, _ in config["weights"]["tensors"].values())


def _model(config: Mapping) -> str:
    arch, layout = config["arch"], config["layout"]
    shapes = ", ".join(f"{t} {tuple(s) or 'scalar'}" for t, s in zip(layout["targets"], layout["target_shapes"]))
    return "\n".join([
        "## Model", "",
        f"- **Task**: predict {shapes} of {WHAT.get(config['problem'], config['problem'])}, from the input "
        f"channels {', '.join(layout['channels'])} on the {layout['n']} x {layout['n']} grid of the training store.",
        f"- **Network**: `{json.dumps(arch)}` ({_params(config):,} parameters, float32), built by "
        "`surrogate.io.build_net`.",
        "- **Normalisation**: inputs and targets standardised with the training split's mean and standard "
        "deviation (`normalization` in config.json); `predict` works in physical units.",
        f"- **Selection**: the {config.get('selection', 'best')} network of the run (by validation error), at "
        f"{_num(config.get('work_units'))} work units.", ""])


def _data(config: Mapping) -> str:
    store = config.get("store") or {}
    split = (config.get("data") or {}).get("split", {})
    params = ", ".join(f"{k}={v}" for k, v in (store.get("params") or {}).items())
    return "\n".join([
        "## Data", "",
        f"- **Store**: `{store.get('path')}` ({store.get('n_done')} of {store.get('n_samples')} samples done, seed "
        f"{store.get('seed')}, schema {store.get('schema_version')}), written by `pde-data generate "
        f"{config['problem']}` with DOLFINx.",
        f"- **Fingerprint** (sha256 of the store's record, array shapes and done set): `{store.get('fingerprint')}`",
        f"- **Generator parameters**: {params}",
        f"- **Split**: train {split.get('train')}, validation {split.get('val')}, test {split.get('test')} of the "
        "samples, in index order (sample i depends only on the seed and i).", ""])


def _training(config: Mapping) -> str:
    train, record = config.get("train") or {}, config.get("training") or {}
    best = record.get("best") or {}
    lines = ["## Training", "",
             f"- **Trainer**: `{train.get('trainer')}`, budget {_num(train.get('budget_wu'))} work units, batch "
             f"{train.get('batch_size')}, learning rate {_num(train.get('lr'))}, weight decay "
             f"{_num(train.get('weight_decay'))}, seed {train.get('seed')} (all settings: `config` in config.json)."]
    if record:
        lines.append(f"- **Run**: {_num(record.get('work_units'))} work units in {_num(record.get('elapsed_s'))} s "
                     f"on {record.get('device')} ({record.get('processes', 1)} process(es)); {record.get('n_train')} "
                     f"training and {record.get('n_val')} validation samples.")
        lines.append(f"- **Best validation errors** of {config['layout']['targets'][0]} (physical units, "
                     f"validation split): MSE {_num(best.get('mse'))}, L-inf "
                     f"{_num(best.get('linf'))}, relative L2 {_num(best.get('rel_l2'))}.")
    else:
        lines.append("- **Run**: no `train_summary.json` was found beside the model file; time and sizes unknown.")
    return "\n".join([*lines, ""])


def _evaluation(config: Mapping) -> str:
    ev = config.get("evaluation")
    if not ev:
        return "\n".join(["## Test metrics", "",
                          "Not evaluated when exported. Run `surrogate evaluate --model-dir MODEL_DIR --store STORE "
                          "--out metrics.json` and export again with `--metrics metrics.json`.", ""])
    rows = [f"| {target} | " + " | ".join(_num(m.get(key)) for key in TABLE) + " |" for target, m in ev["fine"].items()]
    store = ev.get("store") or {}
    held_out = "the model's own store (its held-out test split)" if ev.get("same_store_as_training") else \
        f"the store `{store.get('path')}`"
    return "\n".join(["## Test metrics", "",
                      f"{ev.get('n_test')} test samples of {held_out}, in physical units (`surrogate evaluate`):", "",
                      "| target | " + " | ".join(TABLE.values()) + " |", "|---" * (len(TABLE) + 1) + "|", *rows, "",
                      "Relative L2: ||prediction - truth||_2 / ||truth||_2 over the test split; per sample: the same "
                      "for each sample, then its mean and 95th percentile.", ""])


def _use(config: Mapping) -> str:
    n = config["layout"]["n"]
    return "\n".join([
        "## Intended use and limits", "",
        "- **Intended use**: fast predictions for inputs drawn from the same distribution as the training store "
        f"(the generator parameters above) on the same {n} x {n} grid, e.g. many-query uncertainty "
        "quantification; for an unbiased Monte Carlo estimate use it as a control variate beside FEM solves "
        "(`surrogate mc --fem-n M`, `surrogate uq`).",
        "- **Limits**: other grids are refused; inputs outside the training distribution (other lengths, "
        "variances, coefficient ranges, boundary data) are predicted without a warning and with errors larger than "
        "the test metrics; errors are statistical (over the test distribution), not bounds for one input; the "
        "surrogate does not conserve mass or satisfy the PDE exactly.", ""])


def _loading() -> str:
    return "\n".join([
        "## How to use", "", "```python", "import surrogate", "",
        'model = surrogate.load("THIS_DIRECTORY")   # reads config.json and model.safetensors; runs no code from them',
        "prediction = model.predict(x)              # x: (n, n) or (B, n, n) input fields, physical units",
        "```", "", "Every `surrogate` command that takes a model (`evaluate --model-dir`, `mc --model`, "
        "`uq --model`) accepts this directory.", ""])


def _reproduce(config: Mapping) -> str:
    problem, store = config["problem"], config.get("store") or {}
    run = config.get("config") or {}
    kind, trainer = config["arch"]["kind"], (run.get("train") or {}).get("trainer")
    model_cfg = {k: v for k, v in (run.get("model") or {}).items() if k != "kind"}
    params = {problem: {**(store.get("params") or {}), "samples": store.get("n_samples"), "seed": store.get("seed")},
              "data": run.get("data"), "models": {problem: {kind: model_cfg}}, "train": run.get("train")}
    out = f"models/{problem}-{kind}-{trainer}"
    commands = [f"pde-data generate {problem} --out data/{problem}.zarr --params params.yaml",
                f"surrogate train --problem {problem} --store data/{problem}.zarr --model {kind} --trainer {trainer} "
                f"--out {out} --params params.yaml",
                f"surrogate evaluate --model-dir {out} --store data/{problem}.zarr --out metrics/{problem}.json "
                "--params params.yaml",
                f"surrogate export {out} --out export/{problem} --metrics metrics/{problem}.json"]
    exported = (config.get("exported") or {}).get("command")
    return "\n".join([
        "## Reproduce", "",
        "With this `params.yaml` (the generator section and the run's resolved `data`, `models` and `train` "
        "sections):", "", "```yaml", yaml.safe_dump(params, sort_keys=False).rstrip(), "```", "",
        "```bash", *commands, "```", "",
        "The store's samples are the same (each depends only on the seed and its index); the training repeats the "
        "same configuration (its figures agree up to floating-point nondeterminism).",
        *([f"This export was written by `{exported}`."] if exported else []), ""])


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return f"{value:.4g}"
    return str(value)
