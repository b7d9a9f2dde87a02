"""Growth in width that preserves the function, carries the optimizer state, and muP rates that transfer."""

from __future__ import annotations

import copy

import pytest
import torch

from params import ConfigError
from surrogate.models import CNN, MLP
from surrogate.multilevel import GrowthConfig, MinibatchStream, NestedIteration, OptimizerConfig, Trainer
from surrogate.multilevel.fas import FASTrainer
from surrogate.multilevel.hierarchy import build_hierarchy
from surrogate.multilevel.width import lr_multipliers, mup_init_

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(net, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    if isinstance(net, CNN):
        x = torch.randn(n, 2, 12, 12, generator=g)
    else:
        x = torch.randn(n, 20, generator=g)
    with torch.no_grad():
        y = torch.randn(n, net(x[:1]).shape[1], generator=g)
    return x, y


def _nets():
    torch.manual_seed(0)
    return {"mlp": MLP([20, 16, 12, 3]), "cnn": CNN(2, [(8, 3, 2), (8, 3, 1)], [12], out=3, in_size=(12, 12))}


def _growth(net, levels, perturbation=0.0, state="prolong", kind="adam", parametrization="mup", lr=1e-2):
    x, y = _data(net)
    stream = MinibatchStream(len(x), 16, seed=0)
    optimizer = OptimizerConfig(kind=kind, lr=lr, parametrization=parametrization)

    def final(fine):
        return FASTrainer(build_hierarchy(fine, 1), x, y, stream, optimizer=optimizer)

    growth = GrowthConfig(levels=levels, share=0.5, state=state, perturbation=perturbation)
    return NestedIteration(net, x, y, stream, growth, optimizer, final, budget=1e9, measure="paper"), x


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("levels", [2, 3])
@pytest.mark.parametrize("interpolation", ["plain", "rownorm"])
def test_growth_without_perturbation_keeps_the_function(kind, levels, interpolation):
    net = _nets()[kind]
    ni, x = _growth(net, levels)
    ni.ladder = build_hierarchy(net, levels, interpolation=interpolation)
    ni.starts = [[p.detach().clone() for p in n.parameters()] for n in ni.ladder.nets]
    ni.trainer = ni._one_level(ni.level)
    assert isinstance(ni, Trainer) and ni.growing
    for _ in range(levels - 1):
        for _ in range(5):
            ni.trainer.cycle()
        with torch.no_grad():
            before = ni.hier.nets[0](x)
        ni.grow()
        with torch.no_grad():
            after = ni.hier.nets[0](x)
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)
    assert not ni.growing and ni.hier.nets[0] is net


def test_a_perturbation_breaks_the_symmetry_by_its_size():
    jumps = {}
    for eps in (0.0, 0.1, 1.0):
        ni, x = _growth(_nets()["mlp"], 2, perturbation=eps)
        for _ in range(5):
            ni.trainer.cycle()
        with torch.no_grad():
            before = ni.hier.nets[0](x)
            ni.grow()
            jumps[eps] = float((ni.hier.nets[0](x) - before).norm() / before.norm())
    assert jumps[0.0] < 1e-6 < jumps[0.1] < jumps[1.0]
    # the perturbation of a pair is antisymmetric: the function changes at second order in eps, not first
    assert jumps[1.0] / jumps[0.1] > 30


def _step_gap(net, parametrization):
    """Largest output difference between the coarse net's next step and the grown net's first step."""
    ni, x = _growth(net, 2, parametrization=parametrization)
    for _ in range(6):
        ni.trainer.cycle()
    coarse = copy.deepcopy(ni)
    coarse.trainer.cycle()                      # the coarse net's next step
    ni.grow()
    ni.trainer.cycle()                          # the fine net's first step, on the same minibatch
    with torch.no_grad():
        return float((coarse.hier.nets[0](x) - ni.hier.nets[0](x)).abs().max() / coarse.hier.nets[0](x).abs().max())


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_carried_adam_state_and_mup_rates_continue_the_coarse_training(kind):
    """With muP and eps = 0, the grown net's first step is the coarse net's next step where every aggregate is
    a pair (positive weights: every cosine is positive, so matching pairs every unit), and close to it with
    the singletons of a random net; with one rate for both widths it is not."""
    def paired():
        net = _nets()[kind]
        with torch.no_grad():
            for p in net.parameters():
                p.abs_()
        return net

    assert _step_gap(paired(), "mup") < 1e-5
    assert _step_gap(paired(), "standard") > 1e-3
    assert _step_gap(_nets()[kind], "mup") < 0.5 * _step_gap(_nets()[kind], "standard")


def test_mup_multipliers_follow_fan_in_against_the_base_shapes():
    fine = MLP([20, 16, 12, 3])
    coarse = fine.resized([8, 6])
    base = [p.shape for p in fine.parameters()]
    assert lr_multipliers(fine, base) == [1.0] * 6
    # input weights and biases keep the rate; hidden and output weights scale with base fan-in / fan-in
    assert lr_multipliers(coarse, base) == [1.0, 1.0, 2.0, 1.0, 2.0, 1.0]
    cnn = CNN(2, [(8, 3, 2), (8, 3, 1)], [12], out=3, in_size=(12, 12))
    mults = lr_multipliers(cnn.resized([4, 4, 6]), [p.shape for p in cnn.parameters()])
    assert mults == [1.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0]


def _update_size(width, parametrization, steps=3, base_width=32):
    """Mean |change| of the output and of the last hidden activations after a few Adam steps."""
    torch.manual_seed(1)
    net, base = MLP([16, width, width, 1]), MLP([16, base_width, base_width, 1])
    base_shapes = [p.shape for p in base.parameters()]
    mults = None
    if parametrization == "mup":
        mup_init_(net, base_shapes)
        mults = lr_multipliers(net, base_shapes)
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(256, 16, generator=g), torch.randn(256, 1, generator=g)
    groups = [{"params": [p], "lr": 1e-2 * (m if mults else 1.0)} for p, m in zip(net.parameters(), mults or [1] * 6)]
    opt = torch.optim.Adam(groups)

    def hidden(inp):
        return torch.relu(net.layers[1](torch.relu(net.layers[0](inp))))

    with torch.no_grad():
        h0, f0 = hidden(x), net(x)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    with torch.no_grad():
        return float((hidden(x) - h0).abs().mean()), float((net(x) - f0).abs().mean())


def test_mup_coordinate_check_updates_stay_flat_as_width_grows():
    """Tensor Programs V's coordinate check: under muP, activation and output updates do not grow with width."""
    sizes = {p: [_update_size(w, p) for w in (32, 128, 512)] for p in ("mup", "standard")}
    for which in (0, 1):   # hidden activations, output
        mup = [s[which] for s in sizes["mup"]]
        standard = [s[which] for s in sizes["standard"]]
        assert 0.5 < mup[-1] / mup[0] < 2.0, (which, mup)
        assert standard[-1] / standard[0] > 3.0, (which, standard)


def test_mup_with_sgd_is_refused_by_key():
    with pytest.raises(ConfigError, match="train.parametrization: 'mup' is not allowed with the sgd optimizer"):
        OptimizerConfig(kind="sgd", parametrization="mup")
