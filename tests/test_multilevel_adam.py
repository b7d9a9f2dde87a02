"""Adam/AdamW as the FAS smoother: one level is torch's Adam, moments restricted with R, velocity prolonged."""

import math

import pytest
import torch
from torch.nn import functional as F

from surrogate.models import MLP
from surrogate.multilevel import FASTrainer, MinibatchStream, build_hierarchy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TORCH_ADAM = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def problem(n=96):
    """A smooth regression target of 4 inputs, 2 outputs (float64)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 4, generator=g, dtype=torch.float64)
    Y = torch.stack([torch.sin(X[:, 0] + 0.5 * X[:, 1]), torch.cos(X[:, 2]) * X[:, 3]], 1)
    return X, Y


def make_trainer(levels, kind="adam", model=None, seed=0, **kw):
    torch.manual_seed(seed)
    X, Y = problem()
    model = (model or MLP([4, 32, 32, 2])).double()
    return FASTrainer(build_hierarchy(model, levels), X, Y, MinibatchStream(len(X), 8, seed=seed),
                      optimizer=kind, **kw)


def full_loss(tr):
    with torch.no_grad():
        return F.mse_loss(tr.hier.nets[0](tr.X), tr.Y).item()


def velocity(opt, p):
    """u = m_hat / (sqrt(v_hat) + eps): Adam's step is -lr u."""
    group, state = opt.param_groups[0], opt.state[p]
    (b1, b2), t = group["betas"], float(state["step"])
    return state["exp_avg"] / (1 - b1 ** t) / ((state["exp_avg_sq"] / (1 - b2 ** t)).sqrt() + group["eps"])


def fine_state(level, key):
    return [level.opt.state[p][key].clone() for p in level.params]


# ---------------------------------------------------------------------------- one level
@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_one_level_is_torch_adam_step_for_step(kind):
    tr = make_trainer(1, kind, lr=0.01, weight_decay=0.01)
    plain = MLP([4, 32, 32, 2]).double()
    plain.load_state_dict(tr.hier.nets[0].state_dict())
    opt = TORCH_ADAM[kind](plain.parameters(), lr=0.01, betas=(0.9, 0.999), weight_decay=0.01)
    stream = MinibatchStream(len(tr.X), 8, seed=0)
    for _ in range(20):
        tr.cycle()
        idx = stream.next()
        opt.zero_grad()
        F.mse_loss(plain(tr.X[idx]), tr.Y[idx]).backward()
        opt.step()
    for a, b in zip(tr.hier.nets[0].parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------- restriction
@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_coarse_moments_are_those_of_the_restricted_gradients(kind):
    """m_c = R m, sqrt(v_c) = R sqrt(v); after a coarse step at Pi x (gamma = 1): m_c = R m', v_c <= (R sqrt v')^2."""
    tr = make_trainer(2, kind, lr=0.01, gamma=1.0, coarse=1, weight_decay=0.01 if kind == "adamw" else 0.0)
    tr._smooth(0, tr.stream.take(5))
    fine, coarse, t = tr.levels[0], tr.levels[1], tr.hier.transfers[0]
    m, v = fine_state(fine, "exp_avg"), fine_state(fine, "exp_avg_sq")
    tr._restrict(0)
    tr._tau_correction(0)
    for p_c, m_c, s_c in zip(coarse.params, t.restrict_grad(m), t.restrict_grad([x.sqrt() for x in v])):
        torch.testing.assert_close(coarse.opt.state[p_c]["exp_avg"], m_c, rtol=0, atol=1e-14)
        torch.testing.assert_close(coarse.opt.state[p_c]["exp_avg_sq"], s_c ** 2, rtol=0, atol=1e-14)
        assert coarse.opt.state[p_c]["step"] == 5
    idx = coarse.batches[0]
    g = torch.autograd.grad(F.mse_loss(fine.net(tr.X[idx]), tr.Y[idx]), fine.params)
    coarse.step(idx)
    m1 = [0.9 * a + 0.1 * b for a, b in zip(m, g)]
    v1 = [0.999 * a + 0.001 * b * b for a, b in zip(v, g)]
    for p_c, m_c, s_c in zip(coarse.params, t.restrict_grad(m1), t.restrict_grad([x.sqrt() for x in v1])):
        torch.testing.assert_close(coarse.opt.state[p_c]["exp_avg"], m_c)
        assert (coarse.opt.state[p_c]["exp_avg_sq"] <= s_c ** 2 * (1 + 1e-12)).all()


# ---------------------------------------------------------------------------- prolongation
def test_velocity_prolongation_round_trip_and_eq_36():
    tr = make_trainer(2, alpha_m=0.5, lr=0.01)
    tr._smooth(0, tr.stream.take(3))
    fine, coarse, t = tr.levels[0], tr.levels[1], tr.hier.transfers[0]
    x, m, v = [p.detach().clone() for p in fine.params], fine_state(fine, "exp_avg"), fine_state(fine, "exp_avg_sq")
    tr._restrict(0)
    tr._prolong(0)                                              # no coarse steps: nothing changes
    for p, x0, m0 in zip(fine.params, x, m):
        assert torch.equal(p.detach(), x0) and torch.equal(fine.opt.state[p]["exp_avg"], m0)
    u = [velocity(fine.opt, p) for p in fine.params]
    tr._restrict(0)
    u_c0 = [velocity(coarse.opt, p) for p in coarse.params]
    tr._tau_correction(0)
    tr._smooth(1, coarse.batches)
    change = [velocity(coarse.opt, p) - a for p, a in zip(coarse.params, u_c0)]
    tr._prolong(0)
    for p, u0, du, v0 in zip(fine.params, u, t.prolong(change), v):
        torch.testing.assert_close(velocity(fine.opt, p), u0 + 0.5 * du)       # eq. (36) on u
        assert torch.equal(fine.opt.state[p]["exp_avg_sq"], v0)


def test_a_dead_neuron_paired_with_a_live_one_keeps_a_bounded_step():
    """Neuron 1 copies neuron 0's weights (HEM pairs them) but its bias keeps it inactive: v = 0 there."""
    torch.manual_seed(0)
    model = MLP([4, 8, 8, 2]).double()
    with torch.no_grad():
        w = model.layers[0].weight
        w[1] = w[0]
        model.layers[0].bias[:2] = torch.tensor([1.0, -1.0]) * 20 * w[0].norm()
    tr = make_trainer(2, model=model, alpha_m=1.0, lr=0.01, rematch_every=1000)
    zeta = tr.hier.transfers[0].coarsenings[0].zeta
    assert zeta[0] == zeta[1]
    for _ in range(5):
        tr.cycle()
        assert tr.levels[0].opt.state[model.layers[0].bias]["exp_avg_sq"][1] == 0     # still inactive
        u = [velocity(tr.levels[0].opt, p) for p in tr.levels[0].params]
        assert u[1][1] != 0                                   # the coarse direction reaches the dead neuron
        assert max(x.abs().max().item() for x in u) < 10      # P on m alone: m ~ 1e23, |u| ~ 1e7 here


# ---------------------------------------------------------------------------- training
@pytest.mark.parametrize("kind", ["adam", "adamw"])
@pytest.mark.parametrize("levels", [2, 3])
@pytest.mark.parametrize("alpha_m", [0.2, 1.0])
def test_v_cycles_stay_finite_and_lower_the_loss(kind, levels, alpha_m):
    tr = make_trainer(levels, kind, lr=0.005, alpha_m=alpha_m)
    start = full_loss(tr)
    for _ in range(15):
        tr.cycle()
    assert all(math.isfinite(v) for v in tr.level_losses())
    assert full_loss(tr) < 0.5 * start
