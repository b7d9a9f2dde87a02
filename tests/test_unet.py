"""The U-Net: shapes, refusals, and the transfer identities of eqs. (25)-(28) on its channel hierarchy."""

import pytest
import torch

from surrogate.multilevel import build_hierarchy
from surrogate.unet import UNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HEADS = {"field": [(8, 8)], "scalar": [()], "scalar+field": [(), (8, 8)]}
CASES = [(head, interp) for head in HEADS for interp in ("plain", "rownorm")]


def unet(head):
    return UNet(2, [6, 7, 5], 8, HEADS[head], head=[5]).double()


def hierarchy(head, interpolation, seed=0):
    torch.manual_seed(seed)
    return build_hierarchy(unet(head), 2, interpolation=interpolation, order="random", seed=seed)


def params(net):
    return [p.detach() for p in net.parameters()]


def rand_like(tensors):
    return [torch.randn_like(t) for t in tensors]


def dot(a, b):
    return sum((x * y).sum() for x, y in zip(a, b))


def test_shapes_and_target_order():
    net = UNet(3, [4, 8, 16], 16, [(), (16, 16)], head=[6])
    x = torch.randn(5, 3, 16, 16)
    assert net(x).shape == (5, 1 + 256)
    assert len(net.spaces) == 2 * 3 + 3 * 2 + 1 == len(net.hidden_sizes)
    field_only = UNet(3, [4, 8, 16], 16, [(16, 16)])
    assert field_only(x.flatten(1)).shape == (5, 256)          # a flat input is reshaped
    assert not any("dec" in s for s in UNet(3, [4, 8], 16, [()]).spaces)   # Q alone: encoder + pooling head


@pytest.mark.parametrize("head,interp", CASES)
def test_pi_p_is_identity_and_r_is_p_transpose(head, interp):
    h = hierarchy(head, interp)
    t = h.transfers[0]
    x_c = rand_like(params(h.nets[1]))
    for a, b in zip(t.restrict(t.prolong(x_c)), x_c):
        torch.testing.assert_close(a, b)
    x = rand_like(params(h.nets[0]))
    torch.testing.assert_close(dot(t.prolong(x_c), x), dot(x_c, t.restrict_grad(x)))


@pytest.mark.parametrize("head,interp", CASES)
def test_prolonged_coarse_unet_has_the_same_outputs(head, interp):
    h = hierarchy(head, interp)
    fine, coarse, t = h.nets[0], h.nets[1], h.transfers[0]
    assert all((n + 1) // 2 <= m < n for n, m in zip(fine.hidden_sizes, coarse.hidden_sizes))
    assert [p.shape for p in coarse.parameters()] == t.coarse_shapes
    torch.manual_seed(1)
    with torch.no_grad():
        for p in coarse.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        for p, v in zip(fine.parameters(), t.prolong(params(coarse))):
            p.copy_(v)
    x = torch.randn(4, 2, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(fine(x), coarse(x))
    for a, b in zip(t.restrict(params(fine)), params(coarse)):
        torch.testing.assert_close(a, b)


def test_skip_connection_is_coarsened_once_for_both_readers():
    h = hierarchy("field", "plain")
    fine, t = h.nets[0], h.transfers[0]
    skip = fine.spaces.index("enc0b")
    readers = [i for i, r in enumerate(t.roles) if skip in r.cols]
    layers = [fine.layers[i // 2] for i in readers]
    assert [type(layer).__name__ for layer in layers] == ["Conv2d", "Conv2d"]   # next encoder conv, decoder conv
    assert t.roles[readers[1]].cols == (fine.spaces.index("dec0up"), skip)


def test_three_levels_and_growth_on_a_unet():
    torch.manual_seed(2)
    h = build_hierarchy(UNet(1, [8, 8], 8, [(8, 8)]), 3)
    assert h.nets[2].hidden_sizes < h.nets[1].hidden_sizes < h.nets[0].hidden_sizes


def test_too_deep_for_the_grid_is_refused():
    with pytest.raises(ValueError, match=r"channels: 4 levels \(3 poolings\) do not fit the 12 x 12 grid.*"
                                         r"at most 3 levels"):
        UNet(1, [4, 4, 4, 4], 12, [(12, 12)])
