"""The third study: does the width hierarchy pay at a user's whole cost? (issue 23; report ``docs/RESULTS_v3.md``)

The second study found that no multilevel variant beats tuned AdamW, and why the closest one could not:
its growth step threw the coarse net's work away. This edition compares, on the paper's four set-ups at the
second study's sizes:

* the single-level baselines, tuned AdamW and tuned SGD (the better of them is each set-up's reference);
* nested iteration in width with the function-preserving growth and the optimizer state carried, with and
  without muP rates, and FAS with an AdamW smoother and muP rates;
* the same methods (and plain AdamW) tuned on the coarse level of the network's own width hierarchy
  (muTransfer, ``surrogate tune``) with 0.3 of the search budget;

with an equal FLOP budget for every full-width search (counted in full-width runs), each trial scored on
several seeds; FLOPs- and seconds-to-target at three targets of the reference, paired over seeds and
Holm-corrected; and the total cost to a tuned model (search + final run). Modules: :mod:`~study.v3.methods`,
:mod:`~study.v3.spec`, :mod:`~study.v3.runs` (searches and final runs), :mod:`~study.v3.analysis` (every number),
:mod:`~study.v3.report` and :mod:`~study.v3.cli` (the command)::

    python -m study.v3 [--jobs 2]                 # everything; resumes where it stopped
    python -m study.v3 --quick                    # a few minutes, a smoke test of the tooling
    python -m study.v3 --report-only              # results.json and the report from what is finished
    python -m study.v3.report                     # the report from results.json alone

Layout of ``--out`` (default ``results/study/v3``): ``tuning/<set-up>/<method>/`` (Optuna journal and
``tune.json``), ``runs/<set-up>/<method>/seed<k>/record.json``, ``results.json``.
"""
