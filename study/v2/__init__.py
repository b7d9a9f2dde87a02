"""The second study: every method tuned with the same search budget, then compared at equal FLOPs.

    python -m study.v2                       # search, final runs, regime map -> results/study/v2/, docs/RESULTS.md
    python -m study.v2 --estimate            # calibrate, print the expected wall time (and what is done)
    python -m study.v2 --quick               # tiny preset (a few minutes) -> $TMPDIR/fas-study-v2-quick
    python -m study.v2 --setups darcy_fc --jobs 2     # a subset; resumable, skips finished trials and runs
    python -m study.v2 --report-only         # results.json and the report from what has finished
    python -m study.v2.report --results results/study/v2/results.json --docs docs   # the report alone

What runs (preset ``full``; every size is in :data:`study.v2.presets.PRESETS`):

* the first study's four set-ups (Poisson FC, Poisson CNN, Darcy FC, Darcy CNN)
  at reduced sizes, on the first study's stores (``results/study/data``);
* methods (:mod:`study.v2.methods`): SGD with momentum at the paper's settings
  and tuned, AdamW with cosine decay tuned (the baseline), FAS with the SGD
  smoother at the paper's settings and tuned, FAS with the AdamW smoother
  tuned, nested iteration in width + AdamW tuned, nested iteration + FAS tuned;
* the search (:mod:`study.v2.tuning`): the same number of Optuna trials for
  every tuned method and set-up, at the full FLOP budget with a tuning seed,
  selected on the validation split; a journal file per search, resumable;
* final runs: 5 seeds (not the tuning seed) of each chosen configuration,
  scored on the validation and the test split (:mod:`study.v2.runs`);
* a regime map: training-set size against levels, FAS and nested iteration
  against tuned AdamW at the same size.

Modules: :mod:`~study.v2.methods`, :mod:`~study.v2.presets`, :mod:`~study.v2.plan`,
:mod:`~study.v2.tuning`, :mod:`~study.v2.runs`, :mod:`~study.v2.calibrate`,
:mod:`~study.v2.steps` and :mod:`~study.v2.cli` (the command); reporting --
:mod:`~study.v2.analysis` (time to target, Moonshot, regime map),
:mod:`~study.v2.sections`, :mod:`~study.v2.plots`, :mod:`~study.v2.conclusion`,
:mod:`~study.v2.report`. The rest is the study core, :mod:`study.core`.
Layout of ``OUT``: see :mod:`study.v2.plan`.
"""
