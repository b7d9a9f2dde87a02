"""The FAS cycle (Algorithm 2, section 6): tau correction, momentum, work units, cycles, resume."""

import io
import math

import pytest
import torch
from torch.nn import functional as F

from surrogate.models import CNN, MLP
from surrogate.multilevel import DivergenceError, FASTrainer, MinibatchStream, build_hierarchy
from surrogate.multilevel.optim import prolong_momentum, restrict_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def problem(n=64, seed=0, dtype=torch.float32):
    """A small smooth regression problem: 8 inputs, 2 outputs of a fixed random ReLU teacher."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 8, generator=g, dtype=dtype)
    teacher = torch.randn(8, 2, generator=g, dtype=dtype)
    Y = torch.tanh(X @ teacher) + 0.1 * torch.relu(X[:, :2])
    return X, Y


def make_trainer(levels, model=None, n=64, batch=8, seed=0, dtype=torch.float32, hier_kw=None, **kw):
    """A trainer on ``problem(n)``; ``seed`` picks the initial weights and the minibatch order."""
    torch.manual_seed(seed)
    X, Y = problem(n, 0, dtype)
    model = (model or MLP([8, 24, 24, 2])).to(dtype)
    hier = build_hierarchy(model, levels, **(hier_kw or {}))
    return FASTrainer(hier, X, Y, MinibatchStream(n, batch, seed=seed), **kw)


def grads_at(net, X, Y, idx):
    loss = F.mse_loss(net(X[idx]), Y[idx])
    return list(torch.autograd.grad(loss, list(net.parameters())))


def add(a, b):
    return a if b is None else [x + y for x, y in zip(a, b)]


# ---------------------------------------------------------------------------- tau correction
@pytest.mark.parametrize("tau", ["minibatch", "wholeset", "none"])
@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_corrected_coarse_gradient_at_pi_x_is_r_grad(tau, net):
    """gamma = 1: grad of g_c - x_c^T tau at Pi x equals R grad g(x), every level of 3, biases included."""
    model = MLP([8, 12, 10, 2]) if net == "mlp" else CNN(2, [(5, 2, 1)], [7], 2, in_size=(2, 2))
    tr = make_trainer(3, model, n=44, batch=8, dtype=torch.float64, tau=tau, gamma=1.0, pre=1, coarse=2, post=2)
    tr.cycle()                                   # move away from the initial weights first
    X, Y = tr.X, tr.Y
    for l in range(2):
        fine, coarse, transfer = tr.levels[l], tr.levels[l + 1], tr.hier.transfers[l]
        tr._restrict(l)
        tr._tau_correction(l)
        idx = torch.arange(len(X)) if tau == "wholeset" else torch.cat(coarse.batches)
        if tau == "none":
            assert coarse.shift is None
            continue
        assert [s.shape for s in coarse.shift] == [p.shape for p in coarse.params]
        expected = transfer.restrict_grad(add(grads_at(fine.net, X, Y, idx), fine.shift))
        corrected = add(grads_at(coarse.net, X, Y, idx), coarse.shift)
        for e, c in zip(expected, corrected):
            torch.testing.assert_close(c, e)


def test_gradient_shift_equals_the_linear_term_of_the_coarse_objective():
    """Adding -gamma tau to the gradients = minimising g_c(x_c) - gamma x_c^T tau (eq. 3, 6.1.4)."""
    tr = make_trainer(2, dtype=torch.float64, gamma=0.3, momentum=0.0)
    tr._smooth(0, tr.stream.take(2))
    tr._restrict(0)
    tr._tau_correction(0)
    coarse = tr.levels[1]
    tau = [-s / 0.3 for s in coarse.shift]
    before = [p.detach().clone() for p in coarse.params]
    idx = coarse.batches[0]
    tau_term = sum((p * t).sum() for p, t in zip(coarse.params, tau))
    objective = F.mse_loss(coarse.net(tr.X[idx]), tr.Y[idx]) - 0.3 * tau_term
    expected = [p - coarse.lr * g for p, g in zip(before, torch.autograd.grad(objective, coarse.params))]
    coarse.step(idx)                              # one SGD step on the corrected objective
    for p, e in zip(coarse.params, expected):
        torch.testing.assert_close(p.detach(), e)


# ---------------------------------------------------------------------------- momentum
def test_restrict_prolong_round_trip():
    tr = make_trainer(2, dtype=torch.float64, alpha_p=1.0, alpha_m=0.2)
    tr._smooth(0, tr.stream.take(3))
    fine, coarse, t = tr.levels[0], tr.levels[1], tr.hier.transfers[0]
    key = "momentum_buffer"
    x = [p.detach().clone() for p in fine.params]
    m = [fine.opt.state[p][key].clone() for p in fine.params]
    tr._restrict(0)
    for p_c, m_c in zip(coarse.params, t.restrict(m)):          # m_c = Pi m
        torch.testing.assert_close(coarse.opt.state[p_c][key], m_c)
    tr._prolong(0)                                              # no coarse steps: nothing changes
    for p, x0, m0 in zip(fine.params, x, m):
        torch.testing.assert_close(p.detach(), x0)
        torch.testing.assert_close(fine.opt.state[p][key], m0)
    # a coarse momentum change delta comes back as alpha_m P delta (eq. 36)
    tr._restrict(0)
    delta = [torch.randn_like(p) for p in coarse.params]
    for p_c, d in zip(coarse.params, delta):
        coarse.opt.state[p_c][key] += d
    tr._prolong(0)
    for p, m0, pd in zip(fine.params, m, t.prolong(delta)):
        torch.testing.assert_close(fine.opt.state[p][key], m0 + 0.2 * pd)


def test_adam_state_is_restricted_and_the_step_count_copied():
    tr = make_trainer(2, dtype=torch.float64, optimizer="adam")
    tr._smooth(0, tr.stream.take(3))
    fine, coarse, t = tr.levels[0], tr.levels[1], tr.hier.transfers[0]
    tr._restrict(0)
    m = t.restrict_grad([fine.opt.state[p]["exp_avg"] for p in fine.params])            # m_c = R m
    s = t.restrict_grad([fine.opt.state[p]["exp_avg_sq"].sqrt() for p in fine.params])  # sqrt(v_c) = R sqrt(v)
    for p_c, m_c, s_c in zip(coarse.params, m, s):
        torch.testing.assert_close(coarse.opt.state[p_c]["exp_avg"], m_c)
        torch.testing.assert_close(coarse.opt.state[p_c]["exp_avg_sq"], s_c ** 2)
    assert all(coarse.opt.state[p]["step"] == 3 for p in coarse.params)


def test_momentum_functions_without_momentum_are_no_ops():
    tr = make_trainer(2, momentum=0.0)
    fine, coarse, t = tr.levels[0], tr.levels[1], tr.hier.transfers[0]
    assert restrict_state(fine.opt, fine.params, coarse.opt, coarse.params, t) is None
    prolong_momentum(fine.opt, fine.params, coarse.opt, coarse.params, None, t, 0.2)


# ---------------------------------------------------------------------------- work units
@pytest.mark.parametrize("levels,expected", [(1, 1.0), (2, 7.0), (3, 10.75), (4, 6 * 2 - 10 * 2 / 4 ** 3)])
def test_work_units_match_the_hand_count(levels, expected):
    """Section 8: 2 levels, 2/2/2 steps = 4.5 smoothing + 2.5 tau = 7 under the 1/4 rule.

    Deeper V-cycles give eq. (40)'s closed form 6s - 10s/4^(k-1) with s = 2
    (the printed sums of (40) do not add up to it; see ``work.py``).
    """
    tr = make_trainer(levels, n=64, batch=8, pre=2, coarse=2, post=2, rematch_every=1000)
    spent = tr.cycle()
    assert spent["paper"] == pytest.approx(expected)
    assert tr.cycle()["paper"] == pytest.approx(expected)
    assert tr.work["paper"] == pytest.approx(2 * expected)
    assert 0 < spent["flops"] and (levels == 1) == (spent["flops"] == pytest.approx(1.0))


def test_flop_work_units_use_each_levels_true_cost():
    tr = make_trainer(2, MLP([8, 40, 40, 2]), n=16, batch=8, pre=1, coarse=1, post=1)
    c = tr._counter.cost[1]["flops"]
    sizes = tr.hier.nets[1].hidden_sizes
    assert c == pytest.approx((8 * sizes[0] + sizes[0] * sizes[1] + sizes[1] * 2) / (8 * 40 + 40 * 40 + 40 * 2))
    assert tr.cycle()["flops"] == pytest.approx(2 + 1 + c + c)   # pre + post, tau fine, coarse, tau coarse


def test_tau_none_costs_no_tau_work_and_wholeset_costs_the_set():
    none = make_trainer(2, n=64, batch=8, pre=2, coarse=2, post=2, tau="none").cycle()["paper"]
    whole = make_trainer(2, n=64, batch=8, pre=2, coarse=2, post=2, tau="wholeset").cycle()["paper"]
    assert none == pytest.approx(4.5)
    assert whole == pytest.approx(4.5 + 8 * 1.25)              # 8 minibatches, fine + coarse


def test_one_level_cycle_is_one_sgd_step():
    tr = make_trainer(1, dtype=torch.float64, lr=0.05)
    plain = MLP([8, 24, 24, 2]).double()
    plain.load_state_dict(tr.hier.nets[0].state_dict())
    opt = torch.optim.SGD(plain.parameters(), lr=0.05, momentum=0.9)
    stream = MinibatchStream(64, 8, seed=0)
    for _ in range(3):
        assert tr.cycle() == {"flops": 1.0, "paper": 1.0}
        idx = stream.next()
        opt.zero_grad()
        F.mse_loss(plain(tr.X[idx]), tr.Y[idx]).backward()
        opt.step()
    for a, b in zip(tr.hier.nets[0].parameters(), plain.parameters()):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------- training
def full_loss(tr):
    with torch.no_grad():
        return F.mse_loss(tr.hier.nets[0](tr.X), tr.Y).item()


@pytest.mark.parametrize("levels,cycle,optimizer", [(2, "V", "sgd"), (3, "V", "sgd"), (4, "V", "sgd"),
                                                    (3, "W", "sgd"), (3, "F", "sgd"), (2, "V", "adam")])
def test_cycles_lower_the_training_loss(levels, cycle, optimizer):
    tr = make_trainer(levels, cycle=cycle, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 0.005,
                      pre=2, coarse=2, post=2, rematch_every=3, hier_kw={"order": "random"})
    start = full_loss(tr)
    for _ in range(12):
        tr.cycle()
    losses = tr.level_losses()
    assert len(losses) == levels and all(math.isfinite(v) for v in losses)
    assert full_loss(tr) < 0.5 * start


def test_cnn_rownorm_cycles_lower_the_training_loss():
    torch.manual_seed(0)
    X = torch.randn(48, 2, 5, 5)
    Y = torch.stack([X.mean((1, 2, 3)), X[:, 0].amax((1, 2))], 1)
    model = CNN(2, [(8, 3, 1), (8, 2, 1)], [16], 2, in_size=(5, 5))
    tr = FASTrainer(build_hierarchy(model, 3, interpolation="rownorm", theta=0.1), X, Y,
                    MinibatchStream(48, 8), lr=0.05, pre=2, coarse=2, post=2, rematch_every=2)
    with torch.no_grad():
        start = F.mse_loss(model(X), Y).item()
    for _ in range(10):
        tr.cycle()
    with torch.no_grad():
        assert F.mse_loss(tr.hier.nets[0](X), Y).item() < 0.5 * start


def test_learning_rate_per_level():
    tr = make_trainer(5, MLP([8, 32, 32, 2]), lr=0.08, eta=2.0)
    assert [lv.lr for lv in tr.levels] == [0.08, 0.04, 0.02, 0.02, 0.02]
    assert [lv.opt.param_groups[0]["lr"] for lv in tr.levels] == [0.08, 0.04, 0.02, 0.02, 0.02]


def test_divergence_names_the_level_and_the_knobs():
    tr = make_trainer(2, lr=1e6)
    for _ in range(3):
        tr.cycle()
    with pytest.raises(DivergenceError, match="level 0") as err:
        tr.level_losses()
    assert err.value.level == 0 and "lr" in str(err.value) and "gamma" in str(err.value)


def test_bad_arguments_name_the_key():
    with pytest.raises(ValueError, match="cycle"):
        make_trainer(2, cycle="X")
    with pytest.raises(ValueError, match="tau"):
        make_trainer(2, tau="full")
    with pytest.raises(ValueError, match="coarse"):
        make_trainer(2, coarse=0)


def test_no_host_synchronisation_in_a_cycle(monkeypatch):
    tr = make_trainer(3, cycle="W", pre=1, coarse=1, post=1, rematch_every=1000)
    tr.cycle()

    def forbidden(*args, **kwargs):
        raise AssertionError("host synchronisation inside a cycle")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "numpy", "cpu"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    for _ in range(2):
        tr.cycle()
    monkeypatch.undo()
    assert all(math.isfinite(v) for v in tr.level_losses())


# ---------------------------------------------------------------------------- resume
@pytest.mark.parametrize("optimizer,hier_kw", [
    ("sgd", {"interpolation": "rownorm", "order": "random", "theta": 0.2}),
    ("adam", {"order": "random"})])
def test_state_dict_resumes_bit_identically(optimizer, hier_kw):
    kw = dict(optimizer=optimizer, lr=0.02, pre=1, coarse=2, post=1, cycle="F", rematch_every=2, n=44,
              hier_kw=hier_kw, dtype=torch.float64)
    a = make_trainer(3, **kw)
    for _ in range(3):
        a.cycle()
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    b = make_trainer(3, seed=5, **kw)                 # other initial weights, other stream seed
    b.load_state_dict(state)
    for _ in range(4):
        a.cycle()
        b.cycle()
    for net_a, net_b in zip(a.hier.nets, b.hier.nets):
        assert net_a.hidden_sizes == net_b.hidden_sizes
        for p, q in zip(net_a.parameters(), net_b.parameters()):
            assert torch.equal(p, q)
    assert a.work == b.work and a.cycles == b.cycles == 7
    assert a.level_losses() == b.level_losses()


def test_run_spends_the_budget():
    tr = make_trainer(2, pre=1, coarse=1, post=1)
    work = tr.run(20.0, measure="paper")
    assert 20.0 <= work["paper"] < 20.0 + 4.5
    with pytest.raises(ValueError, match="measure"):
        tr.run(1.0, measure="epochs")


def test_rematch_that_changes_widths_rebuilds_the_coarse_level():
    tr = make_trainer(2, MLP([8, 6, 6, 2]), rematch_every=1, match="before")  # matches the weights set below
    tr.cycle()
    old_net, old_cost = tr.hier.nets[1], tr._counter.cost[1]["flops"]
    with torch.no_grad():                     # orthogonal rows have strength 0: no pairs at theta = 0
        tr.hier.nets[0].layers[0].weight.copy_(torch.eye(6, 8))
    tr.cycle()
    assert tr.hier.nets[1] is not old_net and tr.hier.nets[1].hidden_sizes[0] == 6
    assert tr.levels[1].net is tr.hier.nets[1]
    assert tr._counter.cost[1]["flops"] > old_cost
    assert all(math.isfinite(v) for v in tr.level_losses())


@pytest.mark.parametrize("match, steps_before_rematch", [("before", 0), ("after", 3)])
def test_matching_before_or_after_pre_smoothing(match, steps_before_rematch):
    tr = make_trainer(2, rematch_every=1, pre=3, coarse=2, post=1, match=match)
    tr.cycle()
    seen = {"fine_steps": 0, "at_rematch": None}
    step, rematch = tr.levels[0].step, tr.hier.rematch

    def counting_step(idx):
        seen["fine_steps"] += 1
        step(idx)

    def recording_rematch():
        seen["at_rematch"] = seen["fine_steps"]
        rematch()

    tr.levels[0].step, tr.hier.rematch = counting_step, recording_rematch
    tr.cycle()
    assert seen["at_rematch"] == steps_before_rematch   # Algorithm 2 matches the pre-smoothed weights
