"""The MLP and CNN regressors express the paper's four networks (section 8)."""

import pytest
import torch

from surrogate.models import CNN, MLP, build_model


def shapes(net):
    return [tuple(p.shape) for p in net.parameters()]


def test_poisson_fc():
    net = MLP([3072, 400, 400, 1024])
    assert shapes(net) == [(400, 3072), (400,), (400, 400), (400,), (1024, 400), (1024,)]
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 1024)
    assert net.hidden_sizes == [400, 400]


def test_poisson_cnn():
    net = CNN(3, conv=[(200, 7, 2), (200, 7, 2)], fc=[400, 400], out=1024)
    # 32 -> 13 -> 4 with kernel 7, stride 2: 200 channels of 4x4 enter the first FC layer
    assert shapes(net) == [(200, 3, 7, 7), (200,), (200, 200, 7, 7), (200,), (400, 3200), (400,),
                           (400, 400), (400,), (1024, 400), (1024,)]
    assert net.positions == [169, 16, 1, 1, 1]
    assert net(torch.zeros(2, 3 * 32 * 32)).shape == (2, 1024)
    assert net.hidden_sizes == [200, 200, 400, 400]


def test_darcy_fc():
    net = MLP([1024, 1024, 1024, 1024, 1])
    assert len(net.layers) == 4 and net.hidden_sizes == [1024] * 3
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 1)


def test_darcy_cnn():
    net = CNN(1, conv=[(100, 11, 2), (200, 7, 1), (400, 3, 1)], fc=[2048, 2048], out=1)
    # 32 -> 11 -> 5 -> 3
    assert [tuple(layer.weight.shape) for layer in net.layers] == [
        (100, 1, 11, 11), (200, 100, 7, 7), (400, 200, 3, 3), (2048, 3600), (2048, 2048), (1, 2048)]
    assert [layer.stride for layer in net.layers[:3]] == [(2, 2), (1, 1), (1, 1)]
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 1)


def test_forward_is_relu_chain_with_linear_output():
    torch.manual_seed(0)
    net = MLP([4, 5, 3])
    x = torch.randn(7, 4)
    l0, l1 = net.layers
    expected = l1(torch.relu(l0(x)))
    torch.testing.assert_close(net(x), expected)
    assert (net(x) < 0).any()                      # linear output, no final ReLU


def test_resized_same_class_io_and_device():
    cnn = CNN(2, conv=[(6, 3, 1), (8, 3, 2)], fc=[10], out=3, in_size=(9, 9)).double()
    small = cnn.resized([3, 4, 5])
    assert type(small) is CNN and small.hidden_sizes == [3, 4, 5]
    assert next(small.parameters()).dtype == torch.float64
    assert small(torch.zeros(1, 2, 9, 9, dtype=torch.float64)).shape == (1, 3)
    mlp = MLP([5, 7, 7, 2]).resized([3, 4])
    assert mlp.widths == [5, 3, 4, 2]
    with pytest.raises(ValueError):
        MLP([5, 7, 2]).resized([1, 2])


def test_build_model_from_spec():
    mlp = build_model({"kind": "mlp", "hidden": [16, 8]}, (3, 4, 4), 5)
    assert isinstance(mlp, MLP) and mlp.widths == [48, 16, 8, 5]
    cnn = build_model({"kind": "cnn", "conv": [[4, 3, 1]], "fc": [6]}, (3, 8, 8), 2)
    assert isinstance(cnn, CNN) and cnn.hidden_sizes == [4, 6] and cnn.out_size == (6, 6)
    with pytest.raises(ValueError, match="kind"):
        build_model({"kind": "rnn"}, (3,), 1)
    with pytest.raises(ValueError, match="does not fit"):
        CNN(1, conv=[(4, 11, 1)], in_size=(8, 8))
