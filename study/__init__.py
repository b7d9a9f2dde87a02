"""The studies: multilevel FAS against one-level SGD and Adam on the paper's four set-ups.

The first study (v1, this package's modules; report ``docs/RESULTS_v1.md``)
runs every method at the paper's settings, nothing tuned. The second study
(:mod:`study.v2`, ``python -m study.v2``; report ``docs/RESULTS.md``) tunes
every method with the same search budget. The first study's commands:

    python -m study.runner                    # full study -> results/study/v1/, docs/RESULTS_v1.md (+ PNGs)
    python -m study.runner --estimate         # calibrate and print the expected wall time only
    python -m study.runner --quick            # tiny preset (a couple of minutes) -> $TMPDIR/fas-study-quick
    python -m study.runner --setups poisson_fc --device cuda   # a subset, e.g. on a GPU machine
    python -m study.report --results results/study/v1/results.json --docs docs   # the report alone

What runs (preset ``full``; ``--quick`` has the same structure at tiny sizes;
every size is in :data:`study.presets.PRESETS`, and the report describes them):

* set-ups Poisson FC, Poisson CNN, Darcy FC, Darcy CNN (section 8 of the
  paper); Poisson FC at the paper's size, the others reduced so that the
  whole study fits a couple of hours on a 2-core CPU;
* methods: one-level SGD and Adam, FAS with 2, 3 and 4 levels with the
  stochastic tau correction and the paper's stability parameters (section
  8.3), and the same without tau (``tau none``); nothing is tuned;
* seeds: a seed sets network initialisation, minibatch order and the HEM
  seed; the data split is fixed;
* every run is budgeted by FLOP work units (``train.work_measure: flops``);
  the paper's 1/4-per-level accounting is read off the same runs' curves by
  the report;
* a regime map for Poisson FC: training-set size against levels at a common
  smaller budget.

Modules: running -- :mod:`~study.presets` (sizes and methods),
:mod:`~study.plan` (the runs and their configs), :mod:`~study.calibrate`
(expected wall time), :mod:`~study.record` (one run and its record),
:mod:`~study.runner` (the command); reporting -- :mod:`~study.readout`
(curves at a budget), :mod:`~study.stats` (paired statistics),
:mod:`~study.verdicts` (every comparison), :mod:`~study.text`,
:mod:`~study.sizes`, :mod:`~study.conclusion` (generated prose),
:mod:`~study.plots` and :mod:`~study.report` (``RESULTS_v1.md``, the command); :mod:`~study.pool`
(runs in parallel processes).

Layout of ``--out`` (default ``results/study/v1``; quick: ``$TMPDIR/fas-study-quick``)::

    data/{poisson,darcy}.zarr              stores, made with `pde-data generate` when missing
    runs/<setup>/<method>/seed<k>/         `surrogate.train` output dir; record.json when done
    results.json                           spec + calibration + all per-run records (curves incl.)
    summary.json                           every paired comparison (mean, sd, CI, sign test, verdict)
"""
