"""The defaults live in one place: every key of the repository's params.yaml equals the built-in default.

A command given no params file (run outside the repository) trains, generates and estimates exactly what the
pipeline does. The built-in tree is what the code falls back to: each key's spec default, the families' store
sizes, and :data:`surrogate.config.BUILTIN` (per-problem networks, the ``train`` groups).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pde_data.config import GENERATE
from pde_data.problems import PROBLEMS, get_family
from surrogate import config
from surrogate.mc.uqconfig import UQConfig

ROOT = Path(__file__).resolve().parents[1]


def flatten(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def builtin_tree() -> dict:
    tree = {}
    for problem in PROBLEMS:
        family = get_family(problem)
        specs = {**family.PARAMS, **GENERATE}
        tree[problem] = {key: spec.default for key, spec in specs.items()} | {"samples": family.SAMPLES}
    p = config.load(None)
    tree["data"] = p.data.to_dict()
    tree["models"] = {problem: {kind: section.to_dict() for kind, section in kinds.items()}
                      for problem, kinds in p.models.items()}
    tree["train"] = {**p.train.to_dict(), **{group: p.train_raw[group] for group in config.OVERRIDE_GROUPS}}
    tree["mc"], tree["tune"], tree["uq"] = p.mc.to_dict(), p.tune.to_dict(), UQConfig().to_dict()
    return tree


def test_every_key_of_params_yaml_is_the_built_in_default():
    file = flatten(yaml.safe_load((ROOT / "params.yaml").read_text()))
    builtin = flatten(builtin_tree())
    differ = {k: (file[k], builtin.get(k, "<missing>")) for k in file if builtin.get(k, "<missing>") != file[k]}
    assert not differ, f"params.yaml and the built-in defaults differ (file, built-in): {differ}"
    assert not set(builtin) - set(file), f"keys with a built-in default missing from params.yaml: " \
                                         f"{sorted(set(builtin) - set(file))}"


def test_a_command_without_a_params_file_runs_the_pipelines_configuration():
    for problem in PROBLEMS:
        for model in config.MODELS:
            assert config.resolve(None, problem=problem, model=model) == \
                config.resolve(ROOT / "params.yaml", problem=problem, model=model)
