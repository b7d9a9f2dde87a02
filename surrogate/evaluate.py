"""``surrogate evaluate``: test-split metrics and figures of a trained model directory.

For each network file in the model directory -- ``best.pt`` (key ``fine``),
``aux_best.pt`` (``aux``, the first auxiliary network of a FAS run),
``final.pt`` (``fine_final``) and ``aux_final.pt`` (``aux_final``), or the
one network of an export directory (``fine``, :mod:`surrogate.export`) -- the
test split of the store (the split fractions the model was trained with) is
predicted through :meth:`surrogate.io.Surrogate` and compared with the
stored solutions in physical units, per target (``u``; ``Q`` and/or ``p``):
``mse`` (the paper's "L2 loss"), ``linf`` (maximum absolute error,
"L-infinity"), ``rel_l2`` (relative L2 error of the split), the per-sample
relative L2 error's mean, median and 95th percentile, ``nrmse`` and ``corr``
(:mod:`surrogate.metrics`).

``--out FILE`` is a flat JSON of numbers for ``dvc metrics`` (``test_<key>``
for :data:`FLAT_KEYS` and ``aux_test_mse`` on the first target);
``FILE.meta.json`` beside it holds everything::

    {"problem": ..., "store": {...}, "same_store_as_training": true, "n_test": ...,
     "fine": {"u": {"mse": ..., "linf": ..., "rel_l2": ..., "rel_l2_mean": ..., "nrmse": ..., ...}},
     "aux": {...}, "fine_final": {...}, "aux_final": {...}}

Figures (``--plots DIR``): ``samples.png`` (a few test samples: input,
truth, prediction, error for the fine network; for a Q-only Darcy model the
inputs with true/predicted Q), ``samples_aux.png`` for the auxiliary network,
and for Darcy ``parity_Q.png`` (predicted vs true Q of the test split).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from params import writable_dir
from pde_data.store import StoreError, StoreReader
from surrogate.config import SplitConfig
from surrogate.dataset import Split, check_complete, open_store, split_indices
from surrogate.export import is_export
from surrogate.io import ModelFileError, Surrogate, load
from surrogate.metrics import split_errors
from surrogate.outputs import NETWORK_FILES
from surrogate.runtime import write_json

METRIC_DEFINITIONS = {"mse": "mean squared error (paper: L2 loss)",
                      "linf": "maximum absolute error (paper: L-infinity loss)",
                      "rel_l2": "||pred - true||_2 / ||true||_2 over the test split",
                      "rel_l2_mean": "mean over test samples of ||pred_i - true_i||_2 / ||true_i||_2",
                      "rel_l2_median": "median over test samples of the per-sample relative L2 error",
                      "rel_l2_p95": "95th percentile over test samples of the per-sample relative L2 error",
                      "nrmse": "root mean squared error / standard deviation of the true values",
                      "corr": "Pearson correlation of predicted and true values"}
#: The test figures of the first target in the flat metrics file (``test_<key>``): few, so that
#: ``dvc metrics show`` fits a terminal (every metric is in the ``.meta.json`` and the summary table).
FLAT_KEYS = ("mse", "linf", "rel_l2_mean")


def test_split(model: Surrogate, store, index: np.ndarray, batch_size: int) -> Split:
    """Samples ``index`` of ``store`` encoded for ``model`` (on its device)."""
    xs, ys = [], []
    for a in range(0, len(index), batch_size):
        fields = {name: store.read(name, index[a:a + batch_size]) for name in model.layout.arrays}
        xs.append(model.codec.encode_inputs(fields, model.device))
        ys.append(model.codec.encode_targets(fields, model.device))
    return Split("test", index, torch.cat(xs), torch.cat(ys))


@torch.no_grad()
def predictions(model: Surrogate, split: Split, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(truth, prediction) output vectors of the split in physical units."""
    truth, pred = [], []
    for xb, yb in split.batches(batch_size):
        truth.append(model.codec.decode_vector(yb))
        pred.append(model.codec.decode_vector(model.net(xb).reshape(xb.shape[0], -1)))
    return np.concatenate(truth), np.concatenate(pred)


class OverlapWarning(UserWarning):
    """Evaluation samples that the model was trained on, or a store with other physical parameters."""


def training_overlap(trained: Mapping, record: Mapping, test_idx: np.ndarray, split: SplitConfig) -> np.ndarray:
    """Test indices that are training samples of the model: same problem, schema, parameters and seed
    (the same generator stream, sample i = f(seed, i)) and an index in the training block."""
    same_stream = all(trained.get(k) == record.get(k) for k in ("problem", "schema_version", "params")) and \
        trained.get("seed") == record["generate"].get("seed")
    if not same_stream or "n_samples" not in trained:
        return test_idx[:0]
    n_train = math.floor(split.train * trained["n_samples"] + 1e-9)
    return test_idx[test_idx < n_train]


def _check_against_training(fine: Surrogate, st, test_idx: np.ndarray, allow_overlap: bool) -> None:
    trained = fine.meta.get("store") or {}
    split = SplitConfig.from_mapping(fine.meta["data"]["split"])
    overlap = training_overlap({**trained, "problem": fine.problem}, st.record, test_idx, split)
    if len(overlap):
        what = (f"{len(overlap)} of the {len(test_idx)} test samples of store {st.path} are training samples of "
                f"the model (same problem, parameters and seed {trained.get('seed')} as its training store "
                f"{trained.get('path')}, indices {overlap[0]}-{overlap[-1]})")
        if not allow_overlap:
            raise StoreError(what + "; evaluate on a store generated with another seed, or pass --allow-overlap "
                                    "to report these metrics anyway")
        warnings.warn(what + ": the reported test metrics are NOT held-out errors", OverlapWarning, stacklevel=3)
    params = trained.get("params")
    if isinstance(params, Mapping) and params != st.record.get("params"):
        diffs = [f"{k}: trained {params.get(k)!r}, store {st.record['params'].get(k)!r}"
                 for k in sorted(set(params) | set(st.record.get("params") or {}))
                 if params.get(k) != (st.record.get("params") or {}).get(k)]
        warnings.warn(f"store {st.path} was generated with other physical parameters than the model's training "
                      f"store ({'; '.join(diffs)})", OverlapWarning, stacklevel=3)


def evaluate(model_dir: str | Path, store: str | Path, out: str | Path | None = None,
             plots: str | Path | None = None, *, device: str | torch.device = "cpu",
             batch_size: int = 1000, n_plot: int = 4, allow_incomplete: bool | None = None,
             allow_overlap: bool = False) -> dict:
    """Test-split metrics of every network in ``model_dir``; ``out``: flat metrics JSON (+ ``.meta.json``).

    Test samples that the model was trained on (a store of the same generator
    stream) are refused unless ``allow_overlap`` (then a loud
    :class:`OverlapWarning`); other physical parameters give a warning.
    """
    if out is not None:
        writable_dir(Path(out).parent, "--out")
    if plots is not None:
        writable_dir(plots, "--plots")
    models = _networks(Path(model_dir), device)
    fine = models["fine"]
    st, test_idx = _test_split(fine, store, allow_incomplete)
    _check_against_training(fine, st, test_idx, allow_overlap)
    info = st.describe()
    result: dict = {"problem": fine.problem, "model_dir": str(model_dir), "store": info,
                    "same_store_as_training": info["fingerprint"] == fine.store_fingerprint,
                    "n_test": len(test_idx), "targets": list(fine.targets),
                    "metric_definitions": METRIC_DEFINITIONS, "work_units": {}}
    extras = {}
    for key, model in models.items():
        split = test_split(model, st, test_idx, batch_size)
        result[key] = split_errors(model.net, split, model.codec, batch_size)
        result["work_units"][key] = model.meta.get("work_units")
        extras[key] = _plot_data(model, st, split, test_idx[:n_plot], batch_size)
    if out is not None:
        write_json(Path(out), flat_metrics(result))
        write_json(Path(out).with_suffix(".meta.json"), result)
    if plots is not None:
        make_plots(models, extras, Path(plots))
    return result


def _networks(model_dir: Path, device) -> dict[str, Surrogate]:
    """The networks of a model directory by role (``fine`` always; an export holds that one only)."""
    if not model_dir.is_dir():
        raise ModelFileError(f"model directory {str(model_dir)!r} does not exist")
    if is_export(model_dir):
        return {"fine": load(model_dir, device)}
    models = {key: load(model_dir / name, device) for key, name in NETWORK_FILES.items()
              if (model_dir / name).exists()}
    if "fine" not in models:
        raise ModelFileError(f"model directory {str(model_dir)!r} has no best.pt "
                             "(train it with `surrogate train ... --out DIR`)")
    return models


def _test_split(fine: Surrogate, store: str | Path, allow_incomplete: bool | None) -> tuple[StoreReader, np.ndarray]:
    """The store, checked against the model's grid and completeness, and the indices of its test split."""
    data = fine.meta["data"]
    st = open_store(store, fine.problem)
    check_complete(st, data.get("allow_incomplete", False) if allow_incomplete is None else allow_incomplete)
    n = st.sample_shape(fine.layout.inputs[0])[0]
    if n != fine.layout.n:
        raise StoreError(f"store {str(store)!r} has a {n} x {n} grid; the model was trained on "
                         f"{fine.layout.n} x {fine.layout.n}")
    test_idx = split_indices(st, SplitConfig.from_mapping(data["split"]))["test"]
    if len(test_idx) == 0:
        raise StoreError(f"store {str(store)!r}: the test split (data.split = {data['split']}) "
                         "has no finished samples")
    return st, test_idx


def _plot_data(model: Surrogate, st: StoreReader, split, shown: np.ndarray, batch_size: int) -> dict:
    """Inputs, truth and predictions of the ``shown`` test samples (and of every scalar target, for parity)."""
    truth, pred = predictions(model, split, batch_size)
    out = {"inputs": st.read(model.layout.inputs[0], shown), "truth": truth[:len(shown)], "pred": pred[:len(shown)]}
    scalar = _scalar_target(model)
    if scalar is not None:
        sl = model.layout.target_slices()[scalar]
        out.update(scalar_true=truth[:, sl].ravel(), scalar_pred=pred[:, sl].ravel())
    return out


def _scalar_target(model: Surrogate) -> str | None:
    """The first target with one value per sample (a quantity of interest such as Darcy's Q), if any."""
    return next((t for t, shape in zip(model.layout.targets, model.layout.target_shapes) if shape == ()), None)


def flat_metrics(result: Mapping) -> dict[str, float]:
    """The figures to compare across experiments: :data:`FLAT_KEYS` of the best fine network and the test MSE
    of the auxiliary one, first target (all targets, networks and metrics are in the ``.meta.json`` sibling)."""
    target = result["targets"][0]
    out = {f"test_{key}": result["fine"][target][key] for key in FLAT_KEYS}
    if "aux" in result:
        out["aux_test_mse"] = result["aux"][target]["mse"]
    return out


# --------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------
def make_plots(models: Mapping[str, Surrogate], extras: Mapping[str, dict], plots: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plots.mkdir(parents=True, exist_ok=True)
    written = []
    for key, fname in (("fine", "samples.png"), ("aux", "samples_aux.png")):
        if key in models and extras[key].get("truth") is not None:
            fig = _samples_figure(plt, models[key], extras[key], key)
            fig.savefig(plots / fname, dpi=110)
            plt.close(fig)
            written.append(plots / fname)
    scalar = _scalar_target(models["fine"])
    if scalar is not None:
        fig, ax = plt.subplots(figsize=(4.6, 4.4), constrained_layout=True)
        lo, hi = math.inf, -math.inf
        for key, style in (("fine", dict(marker="o", color="C0")), ("aux", dict(marker="x", color="C1"))):
            if key in extras and "scalar_true" in extras[key]:
                qt, qp = extras[key]["scalar_true"], extras[key]["scalar_pred"]
                ax.scatter(qt, qp, s=12, alpha=0.7, label=f"{key} network", **style)
                lo, hi = min(lo, qt.min(), qp.min()), max(hi, qt.max(), qp.max())
        if math.isfinite(lo):
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="exact")
        ax.set_xlabel(f"{scalar} (FEM)")
        ax.set_ylabel(f"{scalar} (surrogate)")
        ax.set_title(f"{models['fine'].problem} {scalar}, test split")
        ax.legend()
        fig.savefig(plots / f"parity_{scalar}.png", dpi=110)
        plt.close(fig)
        written.append(plots / f"parity_{scalar}.png")
    return written


def _samples_figure(plt, model: Surrogate, extra: Mapping, key: str):
    layout, codec = model.layout, model.codec
    inputs, truth, pred = extra["inputs"], extra["truth"], extra["pred"]
    k = len(truth)
    fields = [t for t, s in zip(layout.targets, layout.target_shapes) if s]
    tp, pp = codec.split_targets(truth), codec.split_targets(pred)
    scalar = _scalar_target(model)
    in_name = layout.inputs[0]
    if fields:
        f = fields[0]
        fig, axes = plt.subplots(k, 4, figsize=(12, 2.8 * k), squeeze=False, constrained_layout=True)
        for i in range(k):
            err = pp[f][i] - tp[f][i]
            panels = [(inputs[i], in_name, "viridis"), (tp[f][i], f"{f} (FEM)", "viridis"),
                      (pp[f][i], f"{f} ({key} network)", "viridis"), (err, "error", "RdBu_r")]
            vmax = max(np.abs(tp[f][i]).max(), np.abs(pp[f][i]).max())
            for j, (img, title, cmap) in enumerate(panels):
                ax = axes[i, j]
                kw = {}
                if j in (1, 2):
                    kw = dict(vmin=min(tp[f][i].min(), pp[f][i].min()), vmax=vmax)
                elif j == 3:
                    e = np.abs(err).max() or 1.0
                    kw = dict(vmin=-e, vmax=e)
                im = ax.imshow(img, origin="lower", extent=(0, 1, 0, 1), cmap=cmap, **kw)
                fig.colorbar(im, ax=ax, shrink=0.8)
                extra_title = ""
                if scalar is not None and j == 0:
                    extra_title = f"\n{scalar}: FEM {tp[scalar][i]:.4g}, net {pp[scalar][i]:.4g}"
                ax.set_title(title + extra_title, fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
    else:
        fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 3.2), squeeze=False, constrained_layout=True)
        for i in range(k):
            ax = axes[0, i]
            im = ax.imshow(inputs[i], origin="lower", extent=(0, 1, 0, 1), cmap="viridis")
            fig.colorbar(im, ax=ax, shrink=0.8)
            ax.set_title(f"{in_name}\n{scalar}: FEM {tp[scalar][i]:.4g}, net {pp[scalar][i]:.4g}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{model.problem}: test samples, {key} network ({model.meta.get('selection')})")
    return fig
