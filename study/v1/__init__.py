"""The first study: multilevel FAS against one-level SGD and Adam at the paper's settings, nothing tuned.

    python -m study.v1                        # full study -> results/study/v1/, docs/RESULTS_v1.md (+ PNGs)
    python -m study.v1 --estimate             # calibrate, print the expected wall time (and what is done)
    python -m study.v1 --quick                # tiny preset (a couple of minutes) -> $TMPDIR/fas-study-quick
    python -m study.v1 --setups poisson_fc --device cuda   # a subset, e.g. on a GPU machine
    python -m study.report --results results/study/v1/results.json --docs docs   # the report alone

``python -m study.runner`` is the same command under the name the report
(``docs/RESULTS_v1.md``) quotes; ``python -m study.report`` is the report's
(:mod:`study.v1.report`).

What runs (preset ``full``; ``--quick`` has the same structure at tiny sizes;
every size is in :data:`study.v1.presets.PRESETS`, and the report describes them):

* set-ups Poisson FC, Poisson CNN, Darcy FC, Darcy CNN (section 8 of the
  paper); Poisson FC at the paper's size, the others reduced so that the
  whole study fits a couple of hours on a 2-core CPU;
* methods (:mod:`~study.v1.methods`): one-level SGD and Adam, FAS with 2, 3
  and 4 levels with the stochastic tau correction and the paper's stability
  parameters (section 8.3), and the same without tau (``tau none``);
  nothing is tuned;
* seeds: a seed sets network initialisation, minibatch order and the HEM
  seed; the data split is fixed;
* every run is budgeted by FLOP work units (``train.work_measure: flops``);
  the paper's 1/4-per-level accounting is read off the same runs' curves by
  the report;
* a regime map for Poisson FC: training-set size against levels at a common
  smaller budget.

Modules: running -- :mod:`~study.v1.methods`, :mod:`~study.v1.presets`,
:mod:`~study.v1.plan` (the runs and their typed configs),
:mod:`~study.v1.calibrate` (expected wall time), :mod:`~study.v1.cli` (the
command); reporting -- :mod:`~study.v1.index` (the runs of a results file),
:mod:`~study.v1.verdicts` (every comparison), :mod:`~study.v1.conclusion`
(generated prose), :mod:`~study.v1.plots` and :mod:`~study.v1.report`
(``RESULTS_v1.md``, the command). The rest is the study core,
:mod:`study.core`.

Layout of ``--out`` (default ``results/study/v1``; quick: ``$TMPDIR/fas-study-quick``)::

    runs/<setup>/<method>/seed<k>/         `surrogate.train` output dir; record.json when done
    results.json                           spec + calibration + all per-run records (curves incl.)
    summary.json                           every paired comparison (mean, sd, CI, sign test, verdict)

The stores are ``results/study/data/{poisson,darcy}.zarr`` (shared with
study v2; ``OUT/data`` with ``--quick`` or ``--out``), made with
``pde-data generate`` when missing.
"""
