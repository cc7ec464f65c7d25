r"""Mamba blocks: selective state-space sequence layers over (packed) token sequences.

:class:`MambaBlock` is the block of Gu and Dao ("Mamba: Linear-Time Sequence Modeling with
Selective State Spaces", 2023): an input projection to ``(x, z)``, a short depthwise causal
convolution and SiLU on ``x``, input-dependent :math:`\Delta, B, C` projected from ``x``, the
selective scan (:func:`graphlearn.kernels.selective_scan`) gated by :math:`\mathrm{silu}(z)`,
and an output projection. Parameters are initialised as in the paper: :math:`A_{dn} = -n`
(S4D-real), :math:`D = 1`, and :math:`\Delta` biased so that
:math:`\mathrm{softplus}(\text{bias}) \sim \mathrm{LogUniform}(10^{-3}, 10^{-1})`.

:class:`BidirectionalMamba` runs one block over the sequence and another over its reverse and
sums the two (Graph Mamba's bidirectional encoder): every position sees the whole sequence,
which a graph's token order, unlike text, gives no reason to deny it.

Sequences are ``(batch, length, channels)``, or variable-length sequences packed as
``(1, total, channels)`` with PyG-style offsets ``ptr``: the convolution and the scan restart
at every offset, so packed sequences give exactly what each sequence gives alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from graphlearn.data.validation import check_positive_int
from graphlearn.errors import ShapeError
from graphlearn.kernels import selective_scan
from graphlearn.kernels.selective_scan import packed_positions

__all__ = ["BidirectionalMamba", "MambaBlock", "reverse_packed"]


def reverse_packed(x: Tensor, ptr: Tensor | None) -> Tensor:
    """Reverse each sequence of ``x`` ``(batch, length, C)`` along its length (within ``ptr``)."""
    if ptr is None:
        return x.flip(1)
    seq, pos = packed_positions(ptr, x.size(1))
    # position p of a sequence [start, end) maps to its mirror end - 1 - p
    return x.index_select(1, ptr[seq + 1] - 1 - pos)


class MambaBlock(torch.nn.Module):
    """One Mamba (selective SSM) block; see the module docstring.

    Args:
        channels (int): Model width :math:`d`.
        state_dim (int): SSM state size :math:`N` per channel. (default: :obj:`16`)
        expand (int): Inner width :math:`e d`. (default: :obj:`2`)
        conv_kernel (int): Causal convolution width. (default: :obj:`4`)
        dt_rank (int, optional): Rank of the :math:`\\Delta` projection
            (default: :math:`\\lceil d/16 \\rceil`).
    """

    def __init__(self, channels: int, state_dim: int = 16, expand: int = 2, conv_kernel: int = 4,
                 dt_rank: int | None = None, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        self.channels = check_positive_int(channels, "channels", caller="MambaBlock")
        self.state_dim = check_positive_int(state_dim, "state_dim", caller="MambaBlock")
        self.inner = check_positive_int(expand, "expand", caller="MambaBlock") * channels
        self.conv_kernel = check_positive_int(conv_kernel, "conv_kernel", caller="MambaBlock")
        self.dt_rank = dt_rank or math.ceil(channels / 16)
        self.dt_min, self.dt_max = dt_min, dt_max
        self.in_proj = torch.nn.Linear(channels, 2 * self.inner, bias=False)
        self.conv_weight = torch.nn.Parameter(torch.empty(self.inner, conv_kernel))
        self.conv_bias = torch.nn.Parameter(torch.empty(self.inner))
        self.x_proj = torch.nn.Linear(self.inner, self.dt_rank + 2 * state_dim, bias=False)
        self.dt_proj = torch.nn.Linear(self.dt_rank, self.inner, bias=True)
        self.A_log = torch.nn.Parameter(torch.empty(self.inner, state_dim))
        self.D = torch.nn.Parameter(torch.empty(self.inner))
        self.out_proj = torch.nn.Linear(self.inner, channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.in_proj.reset_parameters()
        self.x_proj.reset_parameters()
        self.out_proj.reset_parameters()
        bound = 1.0 / math.sqrt(self.conv_kernel)  # Conv1d's default for one input channel
        torch.nn.init.uniform_(self.conv_weight, -bound, bound)
        torch.nn.init.uniform_(self.conv_bias, -bound, bound)
        std = self.dt_rank ** -0.5
        torch.nn.init.uniform_(self.dt_proj.weight, -std, std)
        with torch.no_grad():
            dt = torch.exp(torch.rand(self.inner) * (math.log(self.dt_max) - math.log(self.dt_min))
                           + math.log(self.dt_min)).clamp_min(1e-4)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
            self.A_log.copy_(torch.log(torch.arange(1, self.state_dim + 1, dtype=torch.float32))
                             .expand(self.inner, -1))
            self.D.fill_(1.0)

    def _causal_conv(self, x: Tensor, ptr: Tensor | None) -> Tensor:
        """Depthwise causal convolution over ``(batch, inner, length)``, restarting at ``ptr``."""
        k = self.conv_kernel
        if ptr is None:
            out = F.conv1d(F.pad(x, (k - 1, 0)), self.conv_weight.unsqueeze(1), self.conv_bias,
                           groups=self.inner)
            return out
        _, pos = packed_positions(ptr, x.size(-1))
        out = self.conv_bias.view(1, -1, 1).expand_as(x).clone()
        for shift in range(k):  # tap k-1-shift looks `shift` steps back
            w = self.conv_weight[:, k - 1 - shift].view(1, -1, 1)
            shifted = F.pad(x, (shift, 0))[..., : x.size(-1)] if shift else x
            valid = (pos >= shift).to(x.dtype).view(1, 1, -1)
            out = out + w * shifted * valid
        return out

    def forward(self, x: Tensor, ptr: Tensor | None = None) -> Tensor:
        """Map ``(batch, length, channels)`` to the same shape (``batch == 1`` with ``ptr``)."""
        if x.dim() != 3 or x.size(-1) != self.channels:
            raise ShapeError(f"MambaBlock expects (batch, length, {self.channels}), got "
                             f"{tuple(x.shape)}")
        xz = self.in_proj(x).transpose(1, 2)  # (b, 2*inner, l)
        u, z = xz.chunk(2, dim=1)
        u = F.silu(self._causal_conv(u, ptr))
        dbc = self.x_proj(u.transpose(1, 2))  # (b, l, r + 2N)
        dt, B, C = dbc.split([self.dt_rank, self.state_dim, self.state_dim], dim=-1)
        delta = (dt @ self.dt_proj.weight.t()).transpose(1, 2)  # bias added inside the scan
        y = selective_scan(u, delta.contiguous(), -torch.exp(self.A_log.float()),
                           B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(),
                           self.D.float(), z.contiguous(), self.dt_proj.bias.float(),
                           delta_softplus=True, ptr=ptr)
        return self.out_proj(y.transpose(1, 2))

    def __repr__(self) -> str:
        return (f"MambaBlock({self.channels}, state_dim={self.state_dim}, "
                f"inner={self.inner}, conv_kernel={self.conv_kernel})")


class BidirectionalMamba(torch.nn.Module):
    """Two :class:`MambaBlock` s, one over the sequence and one over its reverse, summed.

    :math:`y = \\mathrm{Mamba}_\\rightarrow(x) + \\mathrm{flip}(\\mathrm{Mamba}_\\leftarrow(
    \\mathrm{flip}(x)))`, with ``flip`` reversing each (packed) sequence. Keyword arguments
    go to both blocks.
    """

    def __init__(self, channels: int, **kwargs) -> None:
        super().__init__()
        self.forward_block = MambaBlock(channels, **kwargs)
        self.backward_block = MambaBlock(channels, **kwargs)

    def reset_parameters(self) -> None:
        self.forward_block.reset_parameters()
        self.backward_block.reset_parameters()

    def forward(self, x: Tensor, ptr: Tensor | None = None) -> Tensor:
        back = reverse_packed(self.backward_block(reverse_packed(x, ptr), ptr), ptr)
        return self.forward_block(x, ptr) + back

    def __repr__(self) -> str:
        return f"BidirectionalMamba({self.forward_block!r})"
