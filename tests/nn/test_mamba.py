import torch
import torch.nn.functional as F

from graphlearn.nn import BidirectionalMamba, MambaBlock
from graphlearn.nn.mamba import reverse_packed


def test_packed_sequences_equal_running_each_alone():
    torch.manual_seed(0)
    block = MambaBlock(8, state_dim=4, conv_kernel=3)
    ptr = torch.tensor([0, 3, 4, 4, 9])  # includes a length-1 and an empty sequence
    x = torch.randn(1, 9, 8, requires_grad=True)
    packed = block(x, ptr)
    alone = torch.cat([block(x[:, a:b]) for a, b in zip(ptr[:-1].tolist(), ptr[1:].tolist(), strict=True)
                       if b > a], dim=1)
    torch.testing.assert_close(packed, alone)
    g = torch.randn_like(packed)
    (gp,) = torch.autograd.grad((packed * g).sum(), x)
    (ga,) = torch.autograd.grad((alone * g).sum(), x)
    torch.testing.assert_close(gp, ga)


def test_causal_conv_with_ptr_matches_conv1d_on_one_sequence():
    torch.manual_seed(1)
    block = MambaBlock(4, conv_kernel=4)
    x = torch.randn(1, block.inner, 7)
    ref = F.conv1d(F.pad(x, (3, 0)), block.conv_weight.unsqueeze(1), block.conv_bias,
                   groups=block.inner)
    torch.testing.assert_close(block._causal_conv(x, torch.tensor([0, 7])), ref)
    # causality: the output at t does not depend on inputs after t
    y = block(torch.randn(1, 6, 4))
    x2 = torch.randn(1, 6, 4)
    x3 = x2.clone()
    x3[:, 4:] += 1.0
    torch.testing.assert_close(block(x2)[:, :4], block(x3)[:, :4])
    del y


def test_bidirectional_merge_is_forward_plus_flipped_backward():
    torch.manual_seed(2)
    bi = BidirectionalMamba(6, state_dim=4)
    ptr = torch.tensor([0, 2, 7])
    x = torch.randn(1, 7, 6)
    parts = []
    for a, b in ((0, 2), (2, 7)):
        seq = x[:, a:b]
        parts.append(bi.forward_block(seq) + bi.backward_block(seq.flip(1)).flip(1))
    torch.testing.assert_close(bi(x, ptr), torch.cat(parts, 1))
    # without ptr, on a batch
    xb = torch.randn(3, 5, 6)
    torch.testing.assert_close(
        bi(xb), bi.forward_block(xb) + bi.backward_block(xb.flip(1)).flip(1))
    # the first position sees the end of its sequence (bidirectional), unlike the forward block
    x2 = xb.clone()
    x2[:, -1] += 1.0
    assert not torch.allclose(bi(xb)[:, 0], bi(x2)[:, 0])
    torch.testing.assert_close(bi.forward_block(xb)[:, 0], bi.forward_block(x2)[:, 0])


def test_reverse_packed():
    x = torch.arange(6.0).view(1, 6, 1)
    out = reverse_packed(x, torch.tensor([0, 2, 6]))
    assert out.view(-1).tolist() == [1.0, 0.0, 5.0, 4.0, 3.0, 2.0]
    assert reverse_packed(x, None).view(-1).tolist() == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]


def test_initialisation_follows_mamba():
    block = MambaBlock(32, state_dim=16)
    A = -torch.exp(block.A_log)
    torch.testing.assert_close(A[0], -torch.arange(1, 17, dtype=torch.float32))
    dt = F.softplus(block.dt_proj.bias)
    assert dt.min() >= 1e-4 and dt.max() <= 0.1 + 1e-6
    assert torch.equal(block.D, torch.ones(block.inner))
