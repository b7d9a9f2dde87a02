"""U-Net and FNO through the model registry: params keys, refusals that name the key, model files."""

import pytest
import torch

from params import ConfigError
from surrogate.io import arch_of, build_net, make_net
from surrogate.layout import Layout
from surrogate.models import build_model
from surrogate.multilevel import build_hierarchy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_model_that_does_not_fit_the_grid_is_refused_naming_the_key():
    layout = Layout("darcy", 16, ("log_k",), ("log_k",), ("p",), ((16, 16),))
    with pytest.raises(ConfigError, match=r"models.darcy.unet on the store's 16 x 16 grid: channels: 6 levels"):
        make_net({"kind": "unet", "channels": [4] * 6, "head": []}, layout)
    with pytest.raises(ConfigError, match=r"models.darcy.fno .*modes: 9 .*need modes <= n/2 = 8"):
        make_net({"kind": "fno", "modes": 9, "width": 4, "layers": 1}, layout)


@pytest.mark.parametrize("spec", [{"kind": "unet", "channels": [4, 6], "head": [3]},
                                  {"kind": "fno", "modes": 3, "width": 4, "layers": 2}])
def test_arch_round_trip(spec):
    torch.manual_seed(3)
    net = build_model(spec, (1, 8, 8), 65, [(), (8, 8)])
    copy = build_net(arch_of(net))
    copy.load_state_dict(net.state_dict())
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(copy(x), net(x))
    if spec["kind"] == "unet":                     # a coarse net of the hierarchy round-trips too
        coarse = build_hierarchy(net, 2).nets[1]
        assert build_net(arch_of(coarse)).hidden_sizes == coarse.hidden_sizes
