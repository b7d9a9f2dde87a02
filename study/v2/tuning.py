"""The equal-budget search: one Optuna study per (set-up, method) in a journal file that resumes.

* Storage: ``JournalStorage(JournalFileBackend(OUT/tuning/<setup>/<method>.journal))``,
  plain text, committed. The study's name carries a key of everything the
  search depends on (the config without the tuned keys, the store, the
  space, the tuning seed, the number of random start-up trials): a search
  made for other settings stays in the file and is not reused.
* Sampler: TPE after ``startup`` random trials, seeded afresh for every
  trial from (set-up, method, trial number), so a resumed search draws the
  same trials as one that ran through.
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
from pathlib import Path
from typing import Any, Mapping

from study.plan import _flat
from study.readout import readout
from study.record import LEGACY_VALUES, _comparable, run_task
from study.v2.methods import KEYS, suggest
from study.v2.plan import config, trial_task
from study.v2.runs import mask_growth

DONE = ("COMPLETE", "FAIL")


def journal_path(out: Path, setup: str, method: str) -> Path:
    return Path(out) / "tuning" / setup / f"{method}.journal"


def canonical(cfg: Mapping) -> dict[str, Any]:
    """A config as flat keys, without where it ran and without keys at their legacy value."""
    legacy = _flat(LEGACY_VALUES)
    return {k: v for k, v in sorted(_flat(_comparable(dict(cfg))).items()) if legacy.get(k, object()) != v}


def search_key(spec: Mapping, setup: str, method: str, fingerprint: str, *, params: str | None) -> str:
    """A short hash of everything the search of (``setup``, ``method``) depends on."""
    d = spec["method_defs"][method]
    cfg = canonical(config(spec, setup, method, spec["tuning"]["seed"], {}, params=params, device="cpu").to_dict())
    tuned = {KEYS[k] for k in d["space"]}
    what = {"config": {k: v for k, v in cfg.items() if k not in tuned}, "space": d["space"], "store": fingerprint,
            "seed": spec["tuning"]["seed"], "startup": spec["tuning"]["startup"]}
    return hashlib.sha1(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:10]


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


def open_study(path: Path, name: str, sampler: Any = None, create: bool = True):
    """The study ``name`` of the journal at ``path`` (None when it does not exist and ``create`` is off)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not create and not path.exists():
        return None
    storage = _storage(path)
    if name in {s.study_name for s in storage.get_all_studies()}:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    return optuna.create_study(study_name=name, storage=storage, direction="minimize", sampler=sampler) \
        if create else None


def _set_attrs(path: Path, name: str, number: int, attrs: Mapping[str, Any]) -> None:
    """User attributes of trial ``number`` (before it is told: a finished trial takes none)."""
    storage = _storage(path)
    tid = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(name), number)
    for key, value in attrs.items():
        storage.set_trial_user_attr(tid, key, value)


def _objective(rec: Mapping) -> float:
    """Best validation MSE of the fine net up to the budget (+inf if the run diverged before it)."""
    return readout({**rec, "curve": mask_growth(rec["curve"])}, "val_mse", "flops", rec["budget_wu"], "best")


def _run_trial(study: Any, job: Mapping, path: Path, number: int, hp: Mapping[str, float]) -> float:
    """Train trial ``number`` (resuming its checkpoint), tell its value, drop its training dir."""
    from optuna.trial import TrialState

    task = trial_task(job["spec"], job["out"], job["stores"], job["setup"], job["method"], number, hp,
                      params=job["params"], device=job["device"])
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
    """Run the missing trials of one search (``job``: spec, setup, method, out, stores, params, device,
    threads, fingerprint, key); return its :func:`summary`."""
    spec, setup, method = job["spec"], job["setup"], job["method"]
    path, name = journal_path(job["out"], setup, method), f"{setup}/{method}/{job['key']}"
    space, T, startup = spec["method_defs"][method]["space"], spec["tuning"]["trials"], spec["tuning"]["startup"]
    study = open_study(path, name)
    for t in study.trials:  # killed before they were told (the study lock rules out another process)
        if t.state.name == "RUNNING" and t.number < T:
            _run_trial(study, job, path, t.number, t.params)
    while len(study.trials) < T:
        study = open_study(path, name, _sampler(name, len(study.trials), startup))
        trial = study.ask()
        _run_trial(study, job, path, trial.number, suggest(trial, space))
    return summary(path, name, T)


def summary(path: Path, name: str, trials: int) -> dict | None:
    """The first ``trials`` trials of a search and the chosen one (None until they are all finished)."""
    study = open_study(path, name, create=False)
    if study is None:
        return None
    rows = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
             **{k: t.user_attrs.get(k) for k in ("status", "wall_s", "seed")}}
            for t in sorted(study.trials, key=lambda t: t.number) if t.number < trials]
    done = [r for r in rows if r["state"] in DONE]
    out = {"name": name, "journal": "/".join(path.parts[-3:]), "trials": rows, "n_done": len(done), "complete": len(done) >= trials}
    scored = [r for r in done if r["state"] == "COMPLETE"]
    if out["complete"] and scored:
        best = min(scored, key=lambda r: (r["value"], r["number"]))
        out.update(best=best["number"], best_value=best["value"], params=best["params"])
    return out
