"""
Train and evaluate a surrogate: FAS and AdamW side by side
==========================================================

A Poisson store of 600 samples on the paper's 32 x 32 grid, two multilayer
perceptrons (the paper's architecture, reduced to hidden widths 128, 128)
trained with the same budget of 600 work units (forward and backward passes
over one fine minibatch): one-level AdamW, the strongest baseline of study 2
(docs/RESULTS.md), and the multilevel-in-width Full Approximation Scheme
(FAS, paper sections 3-7) with two levels and an AdamW smoother. Then both are
evaluated on the held-out test split and the better one is exported in the
shared layout (``model.safetensors`` + ``config.json`` + a model card).
"""

# %%
# Data: 600 solves of -div(kappa grad u) = f with DOLFINx (a few seconds).
import json
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import surrogate
from pde_data.generate import generate
from surrogate import config
from surrogate.evaluate import evaluate
from surrogate.export import export
from surrogate.train import QUIET, train

torch.set_num_threads(2)
work = Path(tempfile.mkdtemp(prefix="pde-surrogate-example-"))
(work / "params.yaml").write_text("poisson: {n: 32, samples: 600, seed: 0}\n")
generate("poisson", work / "poisson.zarr", work / "params.yaml", progress=False)

# %%
# Training: the same network, budget, batch and learning rate for both trainers; only the trainer differs.
# ``config.resolve`` checks every key as ``params.yaml`` would (a typo fails with its name).
PARAMS = {
    "data": {"split": {"train": 0.8, "val": 0.1, "test": 0.1}},
    "models": {"poisson": {"mlp": {"hidden": [128, 128]}}},
    "train": {"budget_wu": 600, "batch_size": 32, "lr": 0.002, "eval_every_wu": 30, "device": "cpu",
              "eval_train_samples": 0, "fas": {"levels": 2, "smoother": "adamw"}},
}
runs = {}
for trainer in ("adamw", "fas"):
    cfg = config.resolve(PARAMS, problem="poisson", model="mlp", trainer=trainer)
    summary = train(cfg, work / "poisson.zarr", work / trainer, reporting=QUIET)
    runs[trainer] = summary
    print(f"{trainer:5s}: {summary['elapsed_s']:.1f} s, best validation MSE {summary['best']['mse']:.3g} "
          f"at {summary['best']['mse_at_wu']:.0f} work units")

# %%
# Validation curves against work units (the cost measure of the paper: a coarse level's pass counts 1/4).
fig, ax = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
for trainer, summary in runs.items():
    history = summary["history"]
    ax.semilogy([r["work_units"] for r in history], [r["val"]["mse"] for r in history], label=trainer)
ax.set_xlabel("work units")
ax.set_ylabel("validation MSE of u")
ax.set_title("Poisson, MLP [128, 128], equal budget")
ax.legend()

# %%
# Test metrics in physical units (``surrogate evaluate``): relative L2 error over the test split.
results = {}
for trainer in runs:
    results[trainer] = evaluate(work / trainer, work / "poisson.zarr", work / f"{trainer}.json")
    u = results[trainer]["fine"]["u"]
    print(f"{trainer:5s}: test MSE {u['mse']:.3g}, relative L2 {u['rel_l2']:.3f}, "
          f"per-sample relative L2 mean {u['rel_l2_mean']:.3f}")

# %%
# One seed at a toy size, so this is an illustration, not a comparison: the studies (``docs/RESULTS.md``: every
# method tuned with the same search budget, 5 seeds, paired tests on four set-ups) find that no multilevel variant
# beats tuned AdamW, which is why AdamW is the pipeline's default trainer.
#
# One test sample: the input kappa, the FEM solution u and both predictions.
model = {trainer: surrogate.load(work / trainer) for trainer in runs}
from pde_data.store import StoreReader  # noqa: E402

reader = StoreReader(work / "poisson.zarr")
i = reader.n_total - 1                                   # the last sample is in the test split
kappa, u = reader.read("kappa", [i])[0], reader.read("u", [i])[0]
panels = [("kappa", kappa), ("u (FEM)", u)] + [(f"u ({t})", model[t].predict(kappa)) for t in runs]
fig, axes = plt.subplots(1, 4, figsize=(12, 3), constrained_layout=True)
for ax, (title, field) in zip(axes, panels):
    im = ax.imshow(field, origin="lower", extent=(0, 1, 0, 1))
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)

# %%
# Export the model with the lower test error in the layout the field shares, and load it back: the predictions
# are the torch file's, bit for bit.
best = min(results, key=lambda t: results[t]["fine"]["u"]["rel_l2"])
export(work / best, work / "export", metrics=work / f"{best}.json")
print(sorted(p.name for p in (work / "export").iterdir()))
exported = surrogate.load(work / "export")
print("identical predictions:", np.array_equal(exported.predict(kappa), model[best].predict(kappa)))
print(json.dumps(json.loads((work / "export" / "config.json").read_text())["weights"]["tensors"], indent=None))
print((work / "export" / "README.md").read_text().split("## Test metrics")[1].split("## Intended")[0])

# %%
shutil.rmtree(work)
