"""The paper's settings that every edition compares with (section 8), quoted for reference and as defaults."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

SQRT2 = math.sqrt(2.0)
FAS_STABILITY = {"alpha_p": 1.0, "alpha_m": 0.2, "gamma": 0.125, "eta": 2.0 * SQRT2}   # paper sec. 8.3
SGD_LR, ADAM_LR, MOMENTUM = 0.01, 1e-3, 0.9

# The paper's set-ups (section 8): networks (MLP input and output sizes on the 32x32 grid, hidden widths;
# CNN [channels, kernel, stride] per conv layer and fc widths) and training.
PAPER_SETUPS: dict[str, dict] = {
    "poisson_fc": {"net": {"io": [3072, 1024], "hidden": [400, 400]},
                   "samples": 10000, "budget_wu": 10000, "smoothing": 4, "rematch_every": 50},
    "poisson_cnn": {"net": {"conv": [[200, 7, 2], [200, 7, 2]], "fc": [400, 400]},
                    "samples": 10000, "budget_wu": 10000, "smoothing": 4, "rematch_every": 50},
    "darcy_fc": {"net": {"io": [1024, 1], "hidden": [1024, 1024, 1024]}, "smoothing": 2, "rematch_every": 10},
    "darcy_cnn": {"net": {"conv": [[100, 11, 2], [200, 7, 1], [400, 3, 1]], "fc": [2048, 2048]},
                  "smoothing": 2, "rematch_every": 10},
}


def net_name(arch: Mapping, io: Sequence[int] | None = None) -> str:
    """A network as the paper writes it: ``3072-400-400-1024`` (MLP with ``io`` sizes) or ``conv [[..]], fc [..]``."""
    if "hidden" in arch:
        return "-".join(map(str, [io[0], *arch["hidden"], io[1]]))
    return f"conv {json.dumps(arch['conv'], separators=(',', ':'))}, fc {json.dumps(arch['fc'], separators=(',', ':'))}"


def paper_arch(setup: str) -> str:
    net = PAPER_SETUPS[setup]["net"]
    return f"MLP {net_name(net, net['io'])}" if "hidden" in net else net_name(net)
