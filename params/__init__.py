"""The config layer that ``pde_data`` and ``surrogate`` both stand on: specs, typed sections, params files.

* :mod:`params.specs` -- a key's default and its check (:class:`Int`, :class:`Float`, :class:`Range`,
  :class:`Choice`, :class:`Bool`, :class:`IntList`, :class:`ConvList`, :func:`Seed`), and :class:`ConfigError`,
  whose message names the key, the value and what is allowed;
* :mod:`params.sections` -- :class:`Section`, a frozen dataclass of specs checked when it is built (from
  ``params.yaml`` or in Python), and :func:`replace`;
* :mod:`params.files` -- reading ``params.yaml`` (a strict YAML subset: no aliases, no repeated keys),
  ``-S KEY=VALUE`` overrides, and :func:`params_path`, the one rule for which file a command reads.

Neither DOLFINx nor torch is imported here.
"""

from params.files import DEFAULT_FILE, flatten, load_yaml, params_path, parse_override, read_params, writable_dir
from params.sections import Section, option, replace, resolve_specs, subsection
from params.specs import MAX_SEED, Bool, Choice, ConfigError, ConvList, Float, Int, IntList, Range, Seed, Spec

__all__ = ["DEFAULT_FILE", "MAX_SEED", "Bool", "Choice", "ConfigError", "ConvList", "Float", "Int", "IntList", "Range",
           "Section", "Seed", "Spec", "flatten", "load_yaml", "option", "params_path", "parse_override", "read_params",
           "replace", "resolve_specs", "subsection", "writable_dir"]
