"""Greedy heavy edge matching, Algorithm 1."""

import pytest
import torch

from surrogate.models import CNN
from surrogate.multilevel import build_hierarchy, cosine_strength, heavy_edge_matching

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def check_aggregation(zeta, n_c, n):
    assert zeta.shape == (n,) and zeta.dtype == torch.long
    sizes = torch.bincount(zeta, minlength=n_c)
    assert len(sizes) == n_c and int(sizes.min()) >= 1 and int(sizes.max()) <= 2


def test_identical_neurons_are_paired():
    torch.manual_seed(0)
    w = torch.randn(8, 5)
    w[5] = w[1]
    w[6] = 3.0 * w[2]                     # same direction, other length: cosine 1
    zeta, n_c = heavy_edge_matching(cosine_strength(w))
    check_aggregation(zeta, n_c, 8)
    assert zeta[1] == zeta[5] and zeta[2] == zeta[6]


def test_theta_is_respected():
    torch.manual_seed(1)
    w = torch.randn(40, 6)
    s = cosine_strength(w)
    for theta in (0.0, 0.5, 0.9):
        zeta, n_c = heavy_edge_matching(s, theta)
        check_aggregation(zeta, n_c, 40)
        for c in range(n_c):
            members = (zeta == c).nonzero().flatten().tolist()
            if len(members) == 2:
                assert s[members[0], members[1]] > theta
    # orthogonal rows have strength 0: nothing is matched at theta = 0 (strictly greater)
    zeta, n_c = heavy_edge_matching(cosine_strength(torch.eye(6)), 0.0)
    assert n_c == 6


def test_greedy_heaviest_edge_in_visiting_order():
    s = torch.tensor([[1.0, 0.2, 0.9, 0.1],
                      [0.2, 1.0, 0.3, 0.8],
                      [0.9, 0.3, 1.0, 0.95],
                      [0.1, 0.8, 0.95, 1.0]])
    zeta, n_c = heavy_edge_matching(s)                                   # 0 takes 2, then 1 takes 3
    assert zeta.tolist() == [0, 1, 0, 1] and n_c == 2
    zeta, n_c = heavy_edge_matching(s, order=torch.tensor([3, 0, 1, 2]))  # 3 takes 2, 0 takes 1
    assert zeta.tolist() == [1, 1, 0, 0] and n_c == 2


def test_random_weights_coarsen_by_about_two():
    torch.manual_seed(2)
    zeta, n_c = heavy_edge_matching(cosine_strength(torch.randn(101, 20)), 0.0,
                                    order=torch.randperm(101))
    check_aggregation(zeta, n_c, 101)
    assert 51 <= n_c <= 56


def test_conv_channels_are_matched_on_flattened_filters():
    torch.manual_seed(3)
    net = CNN(2, conv=[(6, 3, 1), (5, 3, 1)], fc=[4], out=1, in_size=(7, 7))
    with torch.no_grad():
        net.layers[0].weight[4] = net.layers[0].weight[1]
    h = build_hierarchy(net, 2)
    zeta = h.transfers[0].coarsenings[0].zeta
    assert zeta[1] == zeta[4]


@pytest.mark.parametrize("order", ["natural", "random"])
def test_rematch_is_reproducible(order):
    torch.manual_seed(4)
    net = CNN(2, conv=[(6, 3, 1)], fc=[9, 7], out=1, in_size=(5, 5))
    a = build_hierarchy(net, 3, order=order, seed=7)
    b = build_hierarchy(net, 3, order=order, seed=7)
    for _ in range(2):
        a.rematch()
        b.rematch()
    for ta, tb in zip(a.transfers, b.transfers):
        for ca, cb in zip(ta.coarsenings, tb.coarsenings):
            assert torch.equal(ca.zeta, cb.zeta)
