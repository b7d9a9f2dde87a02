"""The FNO's spectral convolution equals neuraloperator's on the same weights (skipped without the package)."""

import pytest
import torch

from surrogate.fno import FNO, SpectralConv2d

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("n,modes", [(16, 4), (16, 8), (12, 3)])
def test_spectral_conv_matches_neuraloperator(n, modes):
    neuralop = pytest.importorskip("neuralop.layers.spectral_convolution",
                                   reason="neuraloperator not installed (pip install -e '.[operators]')")
    torch.manual_seed(0)
    ours = SpectralConv2d(3, 5, modes)
    theirs = neuralop.SpectralConv(3, 5, n_modes=(2 * modes, 2 * modes - 2), fft_norm="forward")
    weight = torch.view_as_complex(ours.weight.detach())
    with torch.no_grad():    # their rows are fftshifted: k_x = -m..m-1 where ours start at k_x = 0
        theirs.weight.tensor.copy_(torch.roll(weight, shifts=modes, dims=2))
        theirs.bias.copy_(ours.bias)
    x = torch.randn(2, 3, n, n)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_spectral_conv_keeps_only_the_low_modes():
    torch.manual_seed(1)
    conv = SpectralConv2d(1, 1, 2)
    with torch.no_grad():
        conv.bias.zero_()
        conv.weight.zero_()
        conv.weight[0, 0, :, :, 0] = 1.0          # identity on the kept modes |k_x| <= 2, k_y < 2
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    low = torch.cos(2 * torch.pi * yy / 16) + torch.cos(2 * torch.pi * xx / 16)
    high = torch.cos(2 * torch.pi * 5 * xx / 16)
    out = conv((low + high)[None, None])[0, 0]
    torch.testing.assert_close(out, low, atol=1e-5, rtol=0)


def test_fno_has_no_width_hierarchy():
    from params import ConfigError
    from surrogate.multilevel import build_hierarchy

    net = FNO(1, 16, [(16, 16)], modes=4, width=8, layers=2)
    assert build_hierarchy(net, 1).nets == [net]
    with pytest.raises(ConfigError, match="levels.*2 is not allowed for a FNO.*levels 1"):
        build_hierarchy(net, 2)
