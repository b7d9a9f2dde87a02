"""The studies: multilevel FAS training against tuned and untuned one-level optimizers.

Each edition is a subpackage with its own command and report; all of them
stand on one core, :mod:`study.core` (set-ups as typed run configs, run
records and their cache key, the process pool, statistics, plots, report
helpers), which they import through its public API only:

* :mod:`study.v1` -- every method at the paper's settings, nothing tuned:
  ``python -m study.v1`` (also ``python -m study.runner``), report
  ``docs/RESULTS_v1.md`` (``python -m study.report``);
* :mod:`study.v2` -- every method tuned with the same search budget:
  ``python -m study.v2``, report ``docs/RESULTS.md``.

Results live outside the package, in ``results/study/<edition>/`` (run
records, Optuna journals, ``results.json``; the stores in
``results/study/data``); a study resumes from the committed records
(:mod:`study.core.runkey` says when a record stands for a planned run).
"""
