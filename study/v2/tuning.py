"""The equal-budget search: one Optuna study per (set-up, method) in a journal file that resumes.

* Storage: ``JournalStorage(JournalFileBackend(OUT/tuning/<setup>/<method>.journal))``,
  plain text, committed.
* A search's key (:func:`search_key`, kept as the study's user attribute
  ``key``) holds everything the search depends on: the config of a trial at
  the untuned settings without the tuned keys, the space, the store
  fingerprint, the tuning seed and the number of random start-up trials. A
  study of the journal is this search when its key matches: the configs by
  the run-key rule (:mod:`study.core.runkey`: a key added since with its
  built-in default still matches), the rest exactly. A search made for other
  settings stays in the file and is not reused; a new study is named
  ``<setup>/<method>/<digest of its key>``.
* Sampler: TPE after ``startup`` random trials, seeded afresh for every
  trial from the study's name and the trial number, so a resumed search
  draws the same trials as one that ran through.
* A trial trains at the full FLOP budget with the tuning seed; its value is
  the best validation MSE of the fine net up to the budget. A diverged trial scores +inf; a
  trial whose process was killed is still RUNNING in the journal and is
  run again (resuming from its checkpoint) by the next call.
* The chosen configuration is the best of the first ``trials`` trials.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.core import flatten, mask_growth, readout, run_task, same_run
from study.v2.methods import KEYS, suggest
from study.v2.plan import config, trial_task
from study.v2.runs import MASKED

DONE = ("COMPLETE", "FAIL")


def journal_path(out: Path, setup: str, method: str) -> Path:
    return Path(out) / "tuning" / setup / f"{method}.journal"


def search_key(spec: Mapping, setup: str, method: str, fingerprint: str | None) -> dict[str, Any]:
    """Everything the search of (``setup``, ``method``) depends on, as JSON (see the module docstring)."""
    d = spec["method_defs"][method]
    cfg = flatten(config(spec, setup, method, spec["tuning"]["seed"], {}, device="cpu").to_dict())
    tuned = {KEYS[k] for k in d["space"]}
    key = {"config": {k: v for k, v in cfg.items() if k not in tuned}, "space": d["space"], "store": fingerprint,
           "seed": spec["tuning"]["seed"], "startup": spec["tuning"]["startup"]}
    return json.loads(json.dumps(key))


def same_search(a: Any, b: Mapping) -> bool:
    """Whether a study's stored key ``a`` is the search ``b``: configs by the run-key rule, the rest exactly."""
    if not (isinstance(a, Mapping) and isinstance(a.get("config"), Mapping)):
        return False
    rest = [{k: v for k, v in key.items() if k != "config"} for key in (a, b)]
    return rest[0] == rest[1] and same_run(a["config"], b["config"])


def _digest(key: Mapping) -> str:
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


def _storage(path: Path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def _sampler(name: str, number: int, startup: int):
    import optuna

    seed = int(hashlib.sha1(f"{name}#{number}".encode()).hexdigest()[:8], 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True)


def find_study(path: Path, prefix: str, key: Mapping, create: bool = False):
    """The study of the journal at ``path`` named ``prefix/...`` whose key is ``key`` (:func:`same_search`);
    a new one with ``create``, else None."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not create and not path.exists():
        return None
    storage = _storage(path)
    for s in storage.get_all_studies():
        if s.study_name.startswith(prefix + "/") and same_search(s.user_attrs.get("key"), key):
            return optuna.load_study(study_name=s.study_name, storage=storage)
    if not create:
        return None
    study = optuna.create_study(study_name=f"{prefix}/{_digest(key)}", storage=storage, direction="minimize")
    study.set_user_attr("key", dict(key))
    return study


def _set_attrs(path: Path, name: str, number: int, attrs: Mapping[str, Any]) -> None:
    """User attributes of trial ``number`` (before it is told: a finished trial takes none)."""
    storage = _storage(path)
    tid = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(name), number)
    for key, value in attrs.items():
        storage.set_trial_user_attr(tid, key, value)


def _objective(rec: Mapping) -> float:
    """Best validation MSE of the fine net up to the budget (+inf if the run diverged before it)."""
    return readout({**rec, "curve": mask_growth(rec["curve"], MASKED)}, "val_mse", "flops", rec["budget_wu"], "best")


def _run_trial(study: Any, job: Mapping, path: Path, number: int, hp: Mapping[str, float]) -> float:
    """Train trial ``number`` (resuming its checkpoint), tell its value, drop its training dir."""
    from optuna.trial import TrialState

    task = trial_task(job["spec"], job["out"], job["stores"], job["setup"], job["method"], number, hp,
                      device=job["device"])
    rec = run_task(task, job["threads"], False, job["fingerprint"])
    value = _objective(rec)
    _set_attrs(path, study.study_name, number, {"status": rec["status"], "wall_s": rec["wall_s"],
                                                "seed": task["seed"]})
    if math.isnan(value):
        study.tell(number, state=TrialState.FAIL)
    else:
        study.tell(number, value)
    shutil.rmtree(task["dir"], ignore_errors=True)
    for parent in Path(task["dir"]).parents[:3]:   # trials/<setup>/<method>, once empty
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
    return value


def search(job: Mapping) -> dict:
    """Run the missing trials of one search (``job``: spec, setup, method, out, stores, device, threads,
    fingerprint, key); return its :func:`summary`."""
    import optuna

    spec, setup, method = job["spec"], job["setup"], job["method"]
    path, prefix = journal_path(job["out"], setup, method), f"{setup}/{method}"
    space, T, startup = spec["method_defs"][method]["space"], spec["tuning"]["trials"], spec["tuning"]["startup"]
    study = find_study(path, prefix, job["key"], create=True)
    name = study.study_name
    for t in study.trials:  # killed before they were told (the study lock rules out another process)
        if t.state.name == "RUNNING" and t.number < T:
            _run_trial(study, job, path, t.number, t.params)
    while len(study.trials) < T:
        study = optuna.load_study(study_name=name, storage=_storage(path),
                                  sampler=_sampler(name, len(study.trials), startup))
        trial = study.ask()
        _run_trial(study, job, path, trial.number, suggest(trial, space))
    return summary(path, prefix, job["key"], T)


def summary(path: Path, prefix: str, key: Mapping, trials: int) -> dict | None:
    """The first ``trials`` trials of a search and the chosen one (None while it has no study)."""
    study = find_study(path, prefix, key)
    if study is None:
        return None
    rows = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
             **{k: t.user_attrs.get(k) for k in ("status", "wall_s", "seed")}}
            for t in sorted(study.trials, key=lambda t: t.number) if t.number < trials]
    done = [r for r in rows if r["state"] in DONE]
    out = {"name": study.study_name, "journal": "/".join(path.parts[-3:]), "trials": rows, "n_done": len(done),
           "complete": len(done) >= trials}
    scored = [r for r in done if r["state"] == "COMPLETE"]
    if out["complete"] and scored:
        best = min(scored, key=lambda r: (r["value"], r["number"]))
        out.update(best=best["number"], best_value=best["value"], params=best["params"])
    return out
