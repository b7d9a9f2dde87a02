"""Minibatch selection (section 6.1.1): one shuffled walk shared by all levels."""

import pytest
import torch

from surrogate.models import MLP
from surrogate.multilevel import FASTrainer, MinibatchStream, build_hierarchy
from surrogate.multilevel.smoother import Level

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("n,b", [(40, 8), (43, 8), (5, 8), (17, 1)])
def test_each_epoch_visits_every_sample_once(n, b):
    stream = MinibatchStream(n, b, seed=3)
    for _ in range(3):
        batches = [stream.next() for _ in range(stream.batches_per_epoch)]
        assert [len(x) for x in batches[:-1]] == [b] * (len(batches) - 1)
        assert sorted(torch.cat(batches).tolist()) == list(range(n))
    assert stream.epoch == 2


def test_epochs_are_reshuffled_and_state_resumes():
    a = MinibatchStream(30, 7, seed=1)
    first = torch.cat(a.take(a.batches_per_epoch))
    a.take(2)
    state = a.state_dict()
    b = MinibatchStream(30, 7, seed=99)
    b.load_state_dict(state)
    for _ in range(9):
        assert torch.equal(a.next(), b.next())
    second = MinibatchStream(30, 7, seed=1)
    second.take(second.batches_per_epoch)
    assert not torch.equal(first, torch.cat(second.take(second.batches_per_epoch)))
    with pytest.raises(ValueError, match="30 samples"):
        MinibatchStream(31, 7).load_state_dict(state)


@pytest.mark.parametrize("n", [48, 50, 53, 7])
@pytest.mark.parametrize("levels,cycle", [(2, "V"), (3, "V"), (3, "W"), (4, "F")])
def test_tau_uses_exactly_the_minibatches_the_coarse_level_smooths_on(monkeypatch, n, levels, cycle):
    torch.manual_seed(0)
    X, Y = torch.randn(n, 4), torch.randn(n, 2)
    stream = MinibatchStream(n, 8, seed=0)
    trainer = FASTrainer(build_hierarchy(MLP([4, 16, 16, 2]), levels), X, Y, stream,
                         pre=2, coarse=3, post=1, cycle=cycle, rematch_every=2)
    drawn, events = [], []
    take = stream.take

    def record_take(m):
        out = take(m)
        drawn.extend(out)
        return out

    monkeypatch.setattr(stream, "take", record_take)
    step, gradient = Level.step, Level.gradient

    def record_step(self, idx):
        events.append(("step", trainer.levels.index(self), idx))
        step(self, idx)

    def record_gradient(self, chunks, corrected=True):
        if not corrected:                          # the coarse side of a tau correction
            events.append(("tau", trainer.levels.index(self), torch.cat(chunks)))
        return gradient(self, chunks, corrected)

    monkeypatch.setattr(Level, "step", record_step)
    monkeypatch.setattr(Level, "gradient", record_gradient)
    for _ in range(4):
        trainer.cycle()
    # every tau correction covers exactly the samples its level smooths on until the next one
    taus = [i for i, e in enumerate(events) if e[0] == "tau"]
    assert taus
    for i in taus:
        level = events[i][1]
        steps = []
        for kind, lev, idx in events[i + 1:]:
            if lev < level or (kind == "tau" and lev == level):
                break
            if kind == "step" and lev == level:
                steps.append(idx)
        assert torch.equal(torch.cat(steps), events[i][2])
        assert len(steps) == 3                        # coarse = 3 on the coarsest level, pre + post = 3 above
    # and all levels walk one shuffled stream: each sample once per epoch
    walked = torch.cat(drawn)
    for e in range(len(walked) // n):
        assert sorted(walked[e * n:(e + 1) * n].tolist()) == list(range(n))


def test_chunk_local_order_visits_every_sample_once_and_few_chunks_per_window():
    for seed in range(5):
        stream = MinibatchStream(100, 10, seed=seed, block=8, window=2)
        epoch = torch.cat(stream.take(10)).tolist()
        assert sorted(epoch) == list(range(100))
        blocks = [i // 8 for i in epoch]
        first_seen = list(dict.fromkeys(blocks))
        for k in range(0, len(first_seen), 2):   # the samples of a window of 2 blocks come together
            window = set(first_seen[k:k + 2])
            positions = [p for p, b in enumerate(blocks) if b in window]
            assert positions == list(range(positions[0], positions[0] + len(positions)))
    plain = MinibatchStream(100, 10, seed=3)
    assert torch.equal(torch.cat(plain.take(10)), torch.cat(MinibatchStream(100, 10, seed=3, block=1).take(10)))
