"""The study core: what every edition of the study (``study.v1``, ``study.v2``, ...) shares.

An edition imports these names from ``study.core`` and nothing else of the
core (the public API is :data:`__all__`; no module of ``study`` imports a
private name of another, ``tests/test_study.py`` checks it):

* set-ups and the paper -- :mod:`~study.core.setups` (the four set-ups at
  the shared sizes, :class:`Setup`: a set-up as typed run config),
  :mod:`~study.core.paper` (the paper's settings and networks);
* runs -- :mod:`~study.core.records` (a task, its training and its
  ``record.json``), :mod:`~study.core.runkey` (when a record stands for a
  planned run: the cache-key rule), :mod:`~study.core.pool` (runs in
  parallel processes), :mod:`~study.core.runner` (paths under
  ``results/study``, stores, the study lock), :mod:`~study.core.calibrate`
  (timing helpers for the wall-time estimate);
* reports -- :mod:`~study.core.curves` (a run's curve at a budget),
  :mod:`~study.core.stats` (paired statistics, scipy), :mod:`~study.core.text`
  (number formats, tables), :mod:`~study.core.plots`, :mod:`~study.core.sizes`
  (the generated *Sizes* paragraph), :mod:`~study.core.report` (curve
  sections, regime-map prose, the report file of each edition).
"""

from study.core.calibrate import (
    cycle_rate,
    eval_seconds,
    grid_layout,
    level1_cost,
    load_seconds,
    nets,
    one_pass,
    random_data,
)
from study.core.curves import curve_key, cut, mask_growth, readout
from study.core.paper import ADAM_LR, FAS_STABILITY, MOMENTUM, PAPER_SETUPS, SGD_LR, SQRT2, net_name, paper_arch
from study.core.plots import curve_on_grid, plot_regime
from study.core.pool import guarded, run_pool
from study.core.records import (
    curve_from_history,
    finished_records,
    make_task,
    round_floats,
    run_task,
    run_worker,
    write_json,
)
from study.core.report import REPORTS, curve_sections, regime_cells
from study.core.runkey import WHERE_IT_RAN, builtin_defaults, flatten, record_is_current, run_key, same_run
from study.core.runner import (
    RESULTS,
    ROOT,
    STORES,
    command_line,
    edition_dir,
    edition_paths,
    ensure_store,
    hold_lock,
    relative,
    store_fingerprint,
)
from study.core.setups import DATA, QUICK_TRAINING, SETUPS, SIZES, TARGETS, Setup, describe_setups, split_sizes
from study.core.sizes import sizes_paragraph
from study.core.stats import LEVEL, mean_sd, paired, sign_test
from study.core.text import VERDICT_LETTER, count, fmt, fmt_ms, fmt_pair, plural, rel_verdict, table, verdict_counts

__all__ = [  # noqa: RUF022 - grouped by topic
    # set-ups and the paper
    "SETUPS", "TARGETS", "DATA", "SIZES", "QUICK_TRAINING", "split_sizes", "describe_setups", "Setup",
    "SQRT2", "FAS_STABILITY", "SGD_LR", "ADAM_LR", "MOMENTUM", "PAPER_SETUPS", "net_name", "paper_arch",
    # runs
    "make_task", "run_task", "run_worker", "finished_records", "curve_from_history", "round_floats", "write_json",
    "WHERE_IT_RAN", "flatten", "builtin_defaults", "run_key", "same_run", "record_is_current",
    "guarded", "run_pool",
    "ROOT", "RESULTS", "STORES", "edition_dir", "edition_paths", "relative", "command_line", "ensure_store",
    "store_fingerprint", "hold_lock",
    "grid_layout", "nets", "level1_cost", "random_data", "one_pass", "cycle_rate", "eval_seconds", "load_seconds",
    # reports
    "cut", "readout", "curve_key", "mask_growth",
    "LEVEL", "paired", "sign_test", "mean_sd",
    "VERDICT_LETTER", "fmt", "count", "fmt_ms", "fmt_pair", "rel_verdict", "plural", "verdict_counts", "table",
    "curve_on_grid", "plot_regime", "sizes_paragraph", "REPORTS", "curve_sections", "regime_cells",
]
