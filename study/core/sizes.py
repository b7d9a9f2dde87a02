"""The report's **Sizes** paragraph, generated from a preset's values and the paper's set-ups.

Every number in it comes from the study's spec (the preset as run), its
calibration and :data:`study.core.paper.PAPER_SETUPS`; a set-up "runs at the
paper's size" only where its network, samples and budget are the paper's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from study.core.paper import PAPER_SETUPS, net_name
from study.core.text import count

TARGETS = {"darcy": "target the outflow QoI Q"}


def _and(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _widths(what: str, study: Sequence[int], paper: Sequence[int]) -> str:
    """``"channels 16 instead of 200"`` (one width each) or ``"channels (8, 16, 32) instead of (100, 200, 400)"``."""
    one = len(set(study)) == 1 and len(set(paper)) == 1
    show = (lambda w: str(w[0])) if one else (lambda w: f"({', '.join(map(str, w))})")
    return f"{what} {show(study)} instead of {show(paper)}"


def _net_changes(setup: str, s: Mapping) -> list[str]:
    """How the set-up's network differs from the paper's (empty when it is the paper's)."""
    arch, paper = s["arch"], PAPER_SETUPS[setup]["net"]
    if "hidden" in arch:
        same = arch["hidden"] == paper["hidden"]
        return [] if same else [f"the network {net_name(arch, paper['io'])} instead of {net_name(paper, paper['io'])}"]
    out = []
    if [c[1:] for c in arch["conv"]] != [c[1:] for c in paper["conv"]]:
        out.append(f"conv layers {arch['conv']} instead of {paper['conv']}")
    elif arch["conv"] != paper["conv"]:
        out.append(_widths("channels", [c[0] for c in arch["conv"]], [c[0] for c in paper["conv"]]))
    if arch["fc"] != paper["fc"]:
        out.append(_widths("fully connected widths", arch["fc"], paper["fc"]))
    return out


def _epochs(budget: float, batch: int, n_train: int) -> float:
    """Passes over the training set in ``budget`` work units (one unit: one minibatch, at most the whole set)."""
    return budget * min(batch, n_train) / n_train


def _differs(setup: str, key: str, value: float) -> str:
    """``" instead of P"`` where the paper states ``key`` and it differs from ``value``."""
    paper = PAPER_SETUPS[setup].get(key)
    return f" instead of {count(paper)}" if paper is not None and paper != value else ""


def _samples(setup: str, s: Mapping) -> str:
    target = TARGETS.get(s["problem"])
    return (f"{count(s['n_samples'])}{_differs(setup, 'samples', s['n_samples'])} samples "
            f"({count(s['n_train'])} train / {count(s['n_val'])} validation{', ' + target if target else ''})")


def _budget(setup: str, s: Mapping) -> str:
    ep = _epochs(s["budget_wu"], s["batch_size"], s["n_train"])
    return f"{count(s['budget_wu'])}{_differs(setup, 'budget_wu', s['budget_wu'])} work units ({count(ep)} epochs)"


def _at_paper_size(setup: str, s: Mapping) -> bool:
    return not (_net_changes(setup, s) or _differs(setup, "samples", s["n_samples"])
                or _differs(setup, "budget_wu", s["budget_wu"]))


def _reduced_setup(setup: str, s: Mapping) -> str:
    """``"Poisson CNN with channels 16 instead of 200 and ..., 1,000 work units (25 epochs)"``."""
    changes = _net_changes(setup, s)
    return f"{s['title']} with " + ", ".join(([_and(changes)] if changes else []) + [_budget(setup, s)])


def _reduced(spec: Mapping, at_paper: Sequence[str]) -> list[str]:
    """One clause per problem: its samples (unless a paper-size set-up named them), then each reduced set-up."""
    clauses = []
    setups = spec["setups"]
    for problem in dict.fromkeys(s["problem"] for s in setups.values()):
        names = [n for n, s in setups.items() if s["problem"] == problem and n not in at_paper]
        if not names:
            continue
        runs = _and([_reduced_setup(n, setups[n]) for n in names])
        if any(setups[n]["problem"] == problem for n in at_paper):
            clauses.append(f"{runs}, on the same {count(spec['data'][problem])} samples")
        else:
            clauses.append(f"{problem.capitalize()} with {_samples(names[0], setups[names[0]])}: {runs}")
    return clauses


def _regime(spec: Mapping) -> str:
    reg = spec["regime"]
    s = spec["setups"][reg["setup"]]
    parts = []
    for i, n in enumerate([*reg["n_train"], s["n_train"]]):
        ep = count(_epochs(reg["budget_wu"], s["batch_size"], n))
        whole = " in whole-set batches" if s["batch_size"] >= n else ""
        parts.append(f"{ep} epochs of {count(n)} samples{whole}" if i == 0 else f"{ep} of {count(n)}{whole}")
    return (f"The regime map uses {reg['seeds']} seeds and {count(reg['budget_wu'])} work units "
            f"({', '.join(parts)}).")


def _smoothing(spec: Mapping) -> str:
    """Smoothing steps, re-matching and weight decay, by problem where its set-ups agree, else by set-up."""
    setups = spec["setups"]

    def knobs(s: Mapping) -> tuple:
        return s["smoothing"], s["rematch_every"], s["weight_decay"]

    groups = []
    for problem in dict.fromkeys(s["problem"] for s in setups.values()):
        mine = [s for s in setups.values() if s["problem"] == problem]
        if len({knobs(s) for s in mine}) == 1:
            groups.append((problem.capitalize(), knobs(mine[0])))
        else:
            groups += [(s["title"], knobs(s)) for s in mine]
    parts = [f"{sm} and every {re}{' cycles' if i == 0 else ''} for {label}"
             + (f" (with weight decay {wd:g})" if wd else "") for i, (label, (sm, re, wd)) in enumerate(groups)]
    paper = all((s["smoothing"], s["rematch_every"]) == (PAPER_SETUPS[n]["smoothing"], PAPER_SETUPS[n]["rematch_every"])
                for n, s in setups.items())
    return f"Smoothing steps and re-matching{' follow the paper' if paper else ''}: {', '.join(parts)}."


def _smoke_test(spec: Mapping) -> str:
    setups = spec["setups"].values()
    stores = ", ".join(f"{count(n)} {p.capitalize()}" for p, n in spec["data"].items())
    budgets = "/".join(count(b) for b in sorted({s["budget_wu"] for s in setups}))
    batches = "/".join(count(b) for b in sorted({s["batch_size"] for s in setups}))
    return (f"**Sizes.** {spec['preset'].capitalize()} preset (a smoke test of the tooling, not a result): tiny "
            f"stores ({stores} samples), tiny networks, {budgets} work units with batch {batches}, "
            f"{spec['seeds']} seeds.")


def sizes_paragraph(spec: Mapping, *, estimate_s: float | None, cores: int | None, runner: str) -> str:
    """The paragraph for ``spec``.

    ``estimate_s``: the calibrated wall time of the whole study on ``cores``
    CPU cores (omitted when unknown); ``runner``: the command whose
    ``--estimate`` prints it.
    """
    if spec.get("smoke_test"):
        return _smoke_test(spec)
    setups = spec["setups"]
    at_paper = [n for n, s in setups.items() if _at_paper_size(n, s)]
    out = ["**Sizes.**"]
    for n in at_paper:
        s = setups[n]
        out.append(f"{s['title']} runs at the paper's size: {_samples(n, s)}, the "
                   f"{net_name(s['arch'], PAPER_SETUPS[n]['net'].get('io'))} network, batch {s['batch_size']} "
                   f"and {_budget(n, s)}.")
    reduced = _reduced(spec, at_paper)
    if reduced:
        others = "the other set-ups" if at_paper else "the set-ups"
        if estimate_s is not None and cores:
            out.append(f"To fit the whole study into about {estimate_s / 3600:.2g} hours on a {cores}-core CPU "
                       f"(calibrated, see `{runner} --estimate`) {others} are reduced: {'; '.join(reduced)}.")
        else:
            out.append(f"{others.capitalize()} are reduced: {'; '.join(reduced)}.")
    out += [_regime(spec), _smoothing(spec)]
    return " ".join(out)
