"""Transfer operators Pi (25), P (27), R = P^T (28) built from eqs. (32) and (34)."""

import pytest
import torch

from params import ConfigError
from surrogate.models import CNN, MLP
from surrogate.multilevel import Transfer, build_hierarchy, flops_per_sample

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def mlp():
    return MLP([6, 10, 9, 3]).double()


def cnn():
    # the last conv layer's 7 channels enter the first FC layer as 7 blocks of 3x3 columns
    return CNN(2, conv=[(6, 3, 1), (7, 3, 2)], fc=[8], out=3, in_size=(9, 9)).double()


NETS = {"mlp": mlp, "cnn": cnn}
CASES = [(net, interp) for net in NETS for interp in ("plain", "rownorm")]


def hierarchy(net_name, interpolation, seed=0):
    torch.manual_seed(seed)
    return build_hierarchy(NETS[net_name](), 2, interpolation=interpolation, order="random", seed=seed)


def rand_like(tensors):
    return [torch.randn_like(t) for t in tensors]


def dot(a, b):
    return sum((x * y).sum() for x, y in zip(a, b))


def params(net):
    return [p.detach() for p in net.parameters()]


@pytest.mark.parametrize("net_name,interp", CASES)
def test_pi_p_is_identity(net_name, interp):
    h = hierarchy(net_name, interp)
    t = h.transfers[0]
    x_c = rand_like(params(h.nets[1]))
    for a, b in zip(t.restrict(t.prolong(x_c)), x_c):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("net_name,interp", CASES)
def test_r_is_p_transpose(net_name, interp):
    h = hierarchy(net_name, interp)
    t = h.transfers[0]
    x, x_c = rand_like(params(h.nets[0])), rand_like(params(h.nets[1]))
    torch.testing.assert_close(dot(t.prolong(x_c), x), dot(x_c, t.restrict_grad(x)))


@pytest.mark.parametrize("net_name,interp", CASES)
def test_q_is_a_projection(net_name, interp):
    h = hierarchy(net_name, interp)
    t = h.transfers[0]
    q = t.prolong(t.restrict(rand_like(params(h.nets[0]))))
    for a, b in zip(t.prolong(t.restrict(q)), q):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("net_name,interp", CASES)
def test_prolonged_coarse_net_has_the_same_outputs(net_name, interp):
    h = hierarchy(net_name, interp)
    fine, coarse, t = h.nets[0], h.nets[1], h.transfers[0]
    torch.manual_seed(1)
    with torch.no_grad():
        for p in coarse.parameters():
            p.copy_(torch.randn_like(p))
        for p, v in zip(fine.parameters(), t.prolong(params(coarse))):
            p.copy_(v)
    x = torch.randn(5, 2 * 81 if net_name == "cnn" else 6, dtype=torch.float64)
    torch.testing.assert_close(fine(x), coarse(x))
    for a, b in zip(t.restrict(params(fine)), params(coarse)):
        torch.testing.assert_close(a, b)


def test_coarse_nets_are_thinner_models_of_the_same_class():
    h = hierarchy("cnn", "plain")
    fine, coarse = h.nets
    assert type(coarse) is CNN
    sizes = coarse.hidden_sizes
    assert all((n + 1) // 2 <= m < n for n, m in zip(fine.hidden_sizes, sizes))
    assert coarse.layers[2].weight.shape == (sizes[2], sizes[1] * 9)      # channel blocks of the first FC layer
    assert [p.shape for p in coarse.parameters()] == h.transfers[0].coarse_shapes
    for a, b in zip(h.transfers[0].restrict(params(fine)), params(coarse)):
        torch.testing.assert_close(a, b)                                  # built as Pi x


def test_plain_pi_averages_rows_and_sums_columns():
    torch.manual_seed(0)
    net = MLP([2, 4, 4, 1]).double()
    with torch.no_grad():                   # neurons 0,1 and 2,3 of both hidden layers are identical
        for layer in net.layers[:2]:
            layer.weight[1], layer.weight[3] = layer.weight[0], layer.weight[2]
            layer.bias[1], layer.bias[3] = layer.bias[0], layer.bias[2]
    h = build_hierarchy(net, 2)
    zeta = [c.zeta.tolist() for c in h.transfers[0].coarsenings]
    assert zeta == [[0, 0, 1, 1], [0, 0, 1, 1]]
    w1 = net.layers[1].weight.detach()
    w1c = h.nets[1].layers[1].weight.detach()
    expected = torch.stack([w1[0, 0] + w1[0, 1], w1[0, 2] + w1[0, 3]])   # row 0 (= row 1), columns summed
    torch.testing.assert_close(w1c[0], expected)


def test_no_hidden_layers_is_identity_and_cannot_coarsen():
    net = MLP([3, 2]).double()
    x = params(net)
    for a, b in zip(Transfer([p.shape for p in x], []).restrict(x), x):
        torch.testing.assert_close(a, b)
    with pytest.raises(ConfigError, match="train.fas.levels: 2 is not allowed.*need levels <= 1"):
        build_hierarchy(net, 2)


def test_levels_that_cannot_coarsen_are_refused():
    build_hierarchy(MLP([4, 8, 8, 2]), 3)
    with pytest.raises(ConfigError, match="train.fas.levels: 20 is not allowed.*cannot coarsen"):
        build_hierarchy(MLP([4, 8, 8, 2]), 20)


def test_half_width_poisson_fc_costs_048_flops():
    fine = MLP([3072, 400, 400, 1024])
    ratio = flops_per_sample(fine.resized([200, 200])) / flops_per_sample(fine)
    assert ratio == pytest.approx((3072 * 200 + 200 * 200 + 200 * 1024) / (3072 * 400 + 400 * 400 + 400 * 1024))
    assert 0.47 < ratio < 0.49
