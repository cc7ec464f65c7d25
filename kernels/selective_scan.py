r"""The Mamba-1 selective scan: a diagonal linear recurrence with input-dependent parameters.

For each batch element :math:`b`, channel :math:`d` and state index :math:`n`, with
:math:`\Delta = \mathrm{softplus}(\delta + \delta_\text{bias})` (or :math:`\delta + \delta_\text{bias}`
without ``delta_softplus``):

.. math::
    h_t &= \exp(\Delta_t A_{dn})\, h_{t-1} + \Delta_t\, B_{nt}\, u_t, \qquad h_{-1} = 0 \\
    y_t &= \textstyle\sum_n C_{nt}\, h_t + D_d\, u_t, \qquad
    \mathrm{out}_t = y_t \cdot \mathrm{silu}(z_t) \ \text{(when } z \text{ is given)}

(Gu and Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces", 2023). The
arguments, shapes and semantics are those of mamba-ssm's ``selective_scan_fn``, so code written
for it can call :func:`selective_scan` instead:

Shapes:
    - ``u``, ``delta``, ``z``: ``(batch, dim, length)``
    - ``A``: ``(dim, state)``, real
    - ``B``, ``C``: ``(batch, state, length)`` (shared by all channels), ``(batch, groups,
      state, length)`` (channel ``d`` uses group ``d // (dim // groups)``) or ``(dim, state)``
      (not input-dependent)
    - ``D``, ``delta_bias``: ``(dim,)``
    - output: like ``u``; with ``return_last_state`` also the final state ``(batch, dim, state)``
      in float32 (float64 for float64 inputs)

Variable-length sequences are packed along ``length`` with ``batch == 1`` and a ``ptr`` of
sequence offsets (``ptr[0] == 0``, ``ptr[-1] == length``, PyG's convention): the state restarts
at every ``ptr[i]``, so the output equals running each sequence alone, with no padding, and
the last state is one row per sequence. The state is kept in float32 (float64 for float64
inputs, so gradients can be checked with ``torch.autograd.gradcheck``); half-precision inputs
give outputs in their own dtype.

Two implementations behind one custom op (dispatch: :func:`~graphlearn.kernels.use_triton`):
:func:`reference` (plain PyTorch; the oracle and the CPU path) and the Triton kernels of
:mod:`graphlearn.kernels.triton_scan`. Both have a hand-written backward that recomputes the
states instead of storing one ``(batch, dim, state)`` tensor per step, so training memory does
not grow with the sequence length times the state size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from graphlearn.errors import DeviceError, DTypeError, InvalidArgumentError, ShapeError

from ._dispatch import use_triton

__all__ = ["selective_scan", "packed_positions", "reference", "reference_backward"]

OP_NAME = "graphlearn::selective_scan"

# Elements of the transient (length, batch, dim, state) buffer the reference backward may hold
# at once; larger batches are processed in slices (about 256 MiB of float32).
_BACKWARD_BUDGET = 1 << 26


# ----------------------------------------------------------------------------------------
# layout helpers shared by the reference and the Triton path
# ----------------------------------------------------------------------------------------


def expand_groups(M: Tensor, batch: int, dim: int, length: int) -> Tensor:
    """``B``/``C`` as a ``(batch, dim, state, length)`` per-channel view (stride 0 where shared)."""
    Mg = as_groups(M, batch, dim, length)
    groups, n = Mg.size(1), Mg.size(2)
    return Mg.unsqueeze(2).expand(batch, groups, dim // groups, n, length).reshape(
        batch, dim, n, length)


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the state is kept in: float64 for float64 inputs, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def process_delta(delta: Tensor, delta_bias: Tensor | None, softplus: bool) -> Tensor:
    """``softplus(delta + bias)`` (or ``delta + bias``) in the accumulation dtype."""
    acc = acc_dtype(delta.dtype)
    dl = delta.to(acc)
    if delta_bias is not None:
        dl = dl + delta_bias.to(acc).view(1, -1, 1)
    return F.softplus(dl) if softplus else dl


def packed_positions(ptr: Tensor, length: int) -> tuple[Tensor, Tensor]:
    """(sequence id, position in its sequence) of each of the ``length`` packed positions.

    ``ptr`` holds PyG-style offsets; nothing is read back to the host.
    """
    lengths = ptr.diff()
    seq = torch.repeat_interleave(torch.arange(lengths.numel(), device=ptr.device), lengths,
                                  output_size=length)
    return seq, torch.arange(length, device=ptr.device) - ptr[seq]


def _pack_index(ptr: Tensor, length: int) -> tuple[Tensor, Tensor, int]:
    """:func:`packed_positions` and the longest sequence's length."""
    seq, pos = packed_positions(ptr, length)
    lengths = ptr.diff()
    return seq, pos, int(lengths.max()) if lengths.numel() else 0


def _to_padded(x: Tensor, seq: Tensor, pos: Tensor, num_seqs: int, max_len: int) -> Tensor:
    """(1, ..., L) packed -> (S, ..., max_len) padded with zeros at the end of each sequence."""
    inner = x.shape[1:-1]
    out = x.new_zeros((num_seqs, max_len, *inner))
    out[seq, pos] = x[0].movedim(-1, 0)
    return out.movedim(1, -1)


def _to_packed(x: Tensor, seq: Tensor, pos: Tensor) -> Tensor:
    """(S, ..., max_len) padded -> (1, ..., L) packed."""
    return x.movedim(-1, 1)[seq, pos].movedim(0, -1).unsqueeze(0)


# ----------------------------------------------------------------------------------------
# reference: plain PyTorch, a time loop vectorised over batch, channels and states
# ----------------------------------------------------------------------------------------


def as_groups(M: Tensor, batch: int, dim: int, length: int) -> Tensor:
    """``B``/``C`` as a ``(batch, groups, state, length)`` view; channel ``d`` uses group
    ``d // (dim // groups)``. Shared ``(batch, state, length)`` is one group; a constant
    ``(dim, state)`` is ``dim`` groups broadcast over batch and length (stride 0)."""
    if M.dim() == 2:
        return M.view(1, dim, M.size(1), 1).expand(batch, dim, M.size(1), length)
    return M.unsqueeze(1) if M.dim() == 3 else M


def _scan_padded(u, dl, A, Bg, Cg, keep_states=False):
    """Run the recurrence on (batch, dim, length) inputs with B/C as (b, g, n, l) groups.

    Returns ``y`` (without the D skip and the gate), the last state and, with
    ``keep_states``, every state as a (length, batch, dim, state) tensor. Each step is a
    few in-place passes over the (batch, dim, state) state and one batched matrix product
    for the output (``torch.einsum`` over the groups).
    """
    b, d, length = u.shape
    n, g = A.size(1), Bg.size(1)
    k = d // g
    y = u.new_empty((b, d, length))
    states = u.new_empty((length, b, d, n)) if keep_states else None
    h = u.new_zeros((b, d, n))
    dlu = dl * u
    for t in range(length):
        dA = torch.exp(dl[:, :, t, None] * A)
        h = torch.mul(dA, h, out=states[t]) if keep_states else h.mul_(dA)
        hv = h.view(b, g, k, n)
        hv.addcmul_(dlu[:, :, t].view(b, g, k, 1), Bg[..., t].unsqueeze(2))
        y[:, :, t] = torch.einsum("bgkn,bgn->bgk", hv, Cg[..., t]).reshape(b, d)
    return y, (h.clone() if keep_states else h), states


def _pad_groups(Mg: Tensor, seq: Tensor, pos: Tensor, num_seqs: int, max_len: int) -> Tensor:
    """Pad a (1, g, n, L) group view; a constant (stride-0) one just broadcasts."""
    if Mg.stride(0) == 0 and Mg.stride(-1) == 0:
        return Mg[:1, :, :, :1].expand(num_seqs, Mg.size(1), Mg.size(2), max_len)
    return _to_padded(Mg, seq, pos, num_seqs, max_len)


def reference(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
              z: Tensor | None = None, delta_bias: Tensor | None = None,
              delta_softplus: bool = False, ptr: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Plain-PyTorch forward of :func:`selective_scan`: ``(out, last_state)``.

    Packed sequences (``ptr``) are scattered into a zero-padded batch first: a padded step
    has :math:`\\Delta = 0`, so it leaves the state unchanged and the loop runs over the
    longest sequence only, not the packed length.
    """
    batch, dim, length = u.shape
    acc = acc_dtype(u.dtype)
    uf, dl = u.to(acc), process_delta(delta, delta_bias, delta_softplus)
    Bg, Cg = _common_groups(as_groups(B.to(acc), batch, dim, length),
                            as_groups(C.to(acc), batch, dim, length))
    Af = A.to(acc)
    if ptr is not None:
        seq, pos, max_len = _pack_index(ptr, length)
        S = ptr.numel() - 1
        y, last, _ = _scan_padded(_to_padded(uf, seq, pos, S, max_len),
                                  _to_padded(dl, seq, pos, S, max_len), Af,
                                  _pad_groups(Bg, seq, pos, S, max_len),
                                  _pad_groups(Cg, seq, pos, S, max_len))
        y = _to_packed(y, seq, pos)
    else:
        y, last, _ = _scan_padded(uf, dl, Af, Bg, Cg)
    if D is not None:
        y = y + uf * D.to(acc).view(1, -1, 1)
    if z is not None:
        y = y * F.silu(z.to(acc))
    return y.to(u.dtype), last


def _common_groups(Bg: Tensor, Cg: Tensor) -> tuple[Tensor, Tensor]:
    """B/C group views widened to one group count (the lcm), e.g. a constant B with a shared C."""
    groups = math.lcm(Bg.size(1), Cg.size(1))

    def widen(M: Tensor) -> Tensor:
        b, g, n, length = M.shape
        return M if g == groups else M.unsqueeze(2).expand(b, g, groups // g, n, length).reshape(
            b, groups, n, length)

    return widen(Bg), widen(Cg)


def _reduce_groups(g: Tensor, like: Tensor) -> Tensor:
    """Reduce a (b, g, n, l) group gradient (g: the common group count) to ``B``/``C``'s shape."""
    if like.dim() == 2:  # constant (dim, state)
        return g.sum(dim=(0, 3))
    b, groups, n, length = g.shape
    own = 1 if like.dim() == 3 else like.size(1)
    if own != groups:
        g = g.reshape(b, own, groups // own, n, length).sum(2)
    return g.squeeze(1) if like.dim() == 3 else g


def reference_backward(grad_out: Tensor, grad_last: Tensor | None, u: Tensor, delta: Tensor,
                       A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
                       delta_bias: Tensor | None, delta_softplus: bool, ptr: Tensor | None):
    r"""Gradients of :func:`reference` w.r.t. ``u, delta, A, B, C, D, z, delta_bias``.

    The adjoint :math:`a_t = \partial L/\partial h_t` runs backwards,
    :math:`a_t = C_t\, \bar g_t + e^{\Delta_{t+1}A} a_{t+1}` (with :math:`\bar g` the gradient
    of :math:`y`), and every input gradient is a product of :math:`a_t` with the recomputed
    states :math:`h_{t-1}`, e.g. :math:`\partial L/\partial \Delta_t = \sum_n a_t
    (A\,e^{\Delta_t A} h_{t-1} + B_t u_t)`. The forward states are recomputed in batch
    slices of bounded size; the recomputation also gives the pre-gate output the gradient
    of ``z`` needs.
    """
    batch, dim, length = u.shape
    acc = acc_dtype(u.dtype)
    uf, dl = u.to(acc), process_delta(delta, delta_bias, delta_softplus)
    Af = A.to(acc)
    Bg, Cg = _common_groups(as_groups(B.to(acc), batch, dim, length),
                            as_groups(C.to(acc), batch, dim, length))
    g = grad_out.to(acc)
    Df = D.to(acc) if D is not None else None
    zf = z.to(acc) if z is not None else None
    if ptr is not None:
        seq, pos, max_len = _pack_index(ptr, length)
        S = ptr.numel() - 1
        pad = lambda x: _to_padded(x, seq, pos, S, max_len) if x is not None else None  # noqa: E731
        parts = _adjoint(pad(uf), pad(dl), Af, _pad_groups(Bg, seq, pos, S, max_len),
                         _pad_groups(Cg, seq, pos, S, max_len), pad(g), grad_last, Df, pad(zf))
        g_u, g_dl, g_A, g_Bg, g_Cg, g_D, g_z = (
            _to_packed(p, seq, pos) if i in (0, 1, 3, 4, 6) and p is not None else p
            for i, p in enumerate(parts))
    else:
        g_u, g_dl, g_A, g_Bg, g_Cg, g_D, g_z = _adjoint(uf, dl, Af, Bg, Cg, g, grad_last, Df, zf)
    if delta_softplus:
        raw = delta.to(acc) + (delta_bias.to(acc).view(1, -1, 1) if delta_bias is not None else 0)
        g_dl = g_dl * torch.sigmoid(raw)
    g_bias = g_dl.sum(dim=(0, 2)).to(delta_bias.dtype) if delta_bias is not None else None
    return (g_u.to(u.dtype), g_dl.to(delta.dtype), g_A.to(A.dtype),
            _reduce_groups(g_Bg, B).to(B.dtype), _reduce_groups(g_Cg, C).to(C.dtype),
            g_D.to(D.dtype) if D is not None else None,
            g_z.to(z.dtype) if z is not None else None, g_bias)


def _adjoint(u, dl, A, Bg, Cg, grad_out, grad_last, D, z):
    """The reverse-time sweep on padded inputs, over batch slices of bounded size.

    Returns the gradients of ``u``, of the processed ``delta``, of ``A``, of the (b, g, n, l)
    group views of ``B`` and ``C``, of ``D`` and of ``z``. Per step it does a few passes over
    the (batch, dim, state) adjoint; sums over a group's channels are batched matrix products
    (``torch.einsum``), and the terms with :math:`h_{t-1}` are written over the recomputed
    states (no longer needed by then) and reduced after the sweep in one product each.
    """
    b, d, length = u.shape
    n, groups = A.size(1), Bg.size(1)
    k = d // groups
    g_u = torch.empty_like(u)
    g_dl = torch.empty_like(u)
    g_A = torch.zeros_like(A)
    g_D = torch.zeros_like(D) if D is not None else None
    g_z = torch.empty_like(z) if z is not None else None
    g_Bg = u.new_empty((b, groups, n, length))
    g_Cg = u.new_empty((b, groups, n, length))
    dlu = dl * u
    step = max(1, _BACKWARD_BUDGET // max(1, length * d * n))
    for lo in range(0, b, step):
        sl = slice(lo, min(b, lo + step))
        rows = sl.stop - sl.start
        Bs, Cs, u_s, dl_s = Bg[sl], Cg[sl], u[sl], dl[sl]
        y, _, states = _scan_padded(u_s, dl_s, A, Bs, Cs, keep_states=True)
        g = grad_out[sl]
        if D is not None:
            y = y + u_s * D.view(1, -1, 1)
        if z is not None:
            sig = torch.sigmoid(z[sl])
            g_z[sl] = g * y * sig * (1 + z[sl] * (1 - sig))
            g = g * z[sl] * sig
        if D is not None:
            g_D += (g * u_s).sum(dim=(0, 2))
        a = (grad_last[sl].to(u.dtype).clone() if grad_last is not None
             else u.new_zeros((rows, d, n)))
        av = a.view(rows, groups, k, n)
        if length:
            g_Cg[sl, :, :, -1] = torch.einsum("bgk,bgkn->bgn", g[:, :, -1].view(rows, groups, k),
                                              states[-1].view(rows, groups, k, n))
        for t in range(length - 1, -1, -1):
            g_t = g[:, :, t].view(rows, groups, k)
            av.addcmul_(g_t.unsqueeze(-1), Cs[..., t].unsqueeze(2))
            aB = torch.einsum("bgkn,bgn->bgk", av, Bs[..., t]).reshape(rows, d)
            g_u[sl, :, t] = dl_s[:, :, t] * aB
            g_dl[sl, :, t] = u_s[:, :, t] * aB
            g_Bg[sl, :, :, t] = torch.einsum("bgkn,bgk->bgn", av,
                                             dlu[sl, :, t].view(rows, groups, k))
            dA = torch.exp(dl_s[:, :, t, None] * A)
            if t > 0:  # a_t e^{dl_t A} h_{t-1}, over the state h_{t-1} once C's gradient has it
                g_Cg[sl, :, :, t - 1] = torch.einsum(
                    "bgk,bgkn->bgn", g[:, :, t - 1].view(rows, groups, k),
                    states[t - 1].view(rows, groups, k, n))
                states[t - 1].mul_(a).mul_(dA)
            a.mul_(dA)
        if D is not None:
            g_u[sl] += g * D.view(1, -1, 1)
        if length > 1:  # terms with h_{t-1}, which is zero at t = 0
            adAh = states[: length - 1]  # (l-1, rows, d, n)
            dl_next = dl_s[:, :, 1:].permute(2, 0, 1)  # (l-1, rows, d)
            g_A += (adAh * dl_next.unsqueeze(-1)).sum(dim=(0, 1))
            g_dl[sl, :, 1:] += (adAh * A).sum(-1).permute(1, 2, 0)
    return g_u, g_dl, g_A, g_Bg, g_Cg, g_D, g_z


# ----------------------------------------------------------------------------------------
# the op: validation, dispatch, autograd
# ----------------------------------------------------------------------------------------


def _check(u, delta, A, B, C, D, z, delta_bias, ptr) -> None:
    for name, t in (("u", u), ("delta", delta), ("A", A), ("B", B), ("C", C), ("D", D),
                    ("z", z), ("delta_bias", delta_bias)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise DTypeError(f"{OP_NAME}: {name} must be a tensor, got {type(t).__name__}")
        if t.is_complex():
            raise DTypeError(f"{OP_NAME}: complex {name} is not supported; use a real A (Mamba-1 "
                             f"with real A, as Mamba's language models do)")
        if not t.is_floating_point():
            raise DTypeError(f"{OP_NAME}: {name} must be floating point, got {t.dtype}")
        if t.device != u.device:
            raise DeviceError(f"{OP_NAME}: {name} is on {t.device} but u is on {u.device}; move "
                              f"all inputs to one device")
    if u.dim() != 3:
        raise ShapeError(f"{OP_NAME}: u must be (batch, dim, length), got {tuple(u.shape)}")
    batch, dim, length = u.shape
    for name, t in (("delta", delta), ("z", z)):
        if t is not None and t.shape != u.shape:
            raise ShapeError(f"{OP_NAME}: {name} must have u's shape {tuple(u.shape)}, got "
                             f"{tuple(t.shape)}")
    if A.dim() != 2 or A.size(0) != dim:
        raise ShapeError(f"{OP_NAME}: A must be (dim, state) = ({dim}, N), got {tuple(A.shape)}")
    state = A.size(1)
    for name, t in (("B", B), ("C", C)):
        ok = ((t.dim() == 2 and t.shape == A.shape)
              or (t.dim() == 3 and t.shape == (batch, state, length))
              or (t.dim() == 4 and t.shape[0] == batch and t.shape[2:] == (state, length)
                  and t.size(1) > 0 and dim % t.size(1) == 0))
        if not ok:
            raise ShapeError(
                f"{OP_NAME}: {name} must be (batch, state, length) = ({batch}, {state}, {length}), "
                f"(batch, groups, state, length) with groups dividing dim={dim}, or (dim, state) "
                f"= ({dim}, {state}); got {tuple(t.shape)}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and t.shape != (dim,):
            raise ShapeError(f"{OP_NAME}: {name} must be ({dim},), got {tuple(t.shape)}")
    if ptr is not None:
        if not isinstance(ptr, Tensor) or ptr.dtype != torch.long or ptr.dim() != 1:
            raise DTypeError(f"{OP_NAME}: ptr must be a 1-D torch.long tensor of sequence offsets")
        if ptr.device != u.device:
            raise DeviceError(f"{OP_NAME}: ptr is on {ptr.device} but u is on {u.device}")
        if batch != 1:
            raise ShapeError(f"{OP_NAME}: packed sequences (ptr) need batch == 1, got {batch}; "
                             f"concatenate the sequences along the length axis")
        if ptr.numel() < 2 or int(ptr[0]) != 0 or int(ptr[-1]) != length or bool(
                (ptr.diff() < 0).any()):
            raise InvalidArgumentError(
                f"{OP_NAME}: ptr must start at 0, end at length={length} and never decrease "
                f"(got {ptr.tolist()[:8]}{'...' if ptr.numel() > 8 else ''})")


@torch.library.custom_op(OP_NAME, mutates_args=())
def _selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                    z: Tensor | None, delta_bias: Tensor | None, delta_softplus: bool,
                    ptr: Tensor | None) -> tuple[Tensor, Tensor]:
    if use_triton(OP_NAME, u, has_triton=_has_triton()):
        from . import triton_scan

        return triton_scan.forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, ptr)
    return reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus, ptr)


@_selective_scan.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus, ptr):
    rows = u.size(0) if ptr is None else ptr.size(0) - 1
    return torch.empty_like(u), u.new_empty((rows, u.size(1), A.size(1)),
                                            dtype=acc_dtype(u.dtype))


def _has_triton() -> bool:
    import importlib.util

    return importlib.util.find_spec(__package__ + ".triton_scan") is not None


def _setup_context(ctx, inputs, output):
    u, delta, A, B, C, D, z, delta_bias, delta_softplus, ptr = inputs
    ctx.delta_softplus = delta_softplus
    ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, ptr)


def _backward(ctx, grad_out, grad_last):
    u, delta, A, B, C, D, z, delta_bias, ptr = ctx.saved_tensors
    if grad_out is None:
        grad_out = torch.zeros_like(u)
    args = (grad_out.contiguous(), grad_last, u, delta, A, B, C, D, z, delta_bias,
            ctx.delta_softplus, ptr)
    if use_triton(OP_NAME, u, has_triton=_has_triton()):
        from . import triton_scan

        grads = triton_scan.backward(*args)
    else:
        grads = reference_backward(*args)
    return (*grads[:7], grads[7], None, None)


_selective_scan.register_autograd(_backward, setup_context=_setup_context)


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                   D: Tensor | None = None, z: Tensor | None = None,
                   delta_bias: Tensor | None = None, delta_softplus: bool = False,
                   return_last_state: bool = False, *, ptr: Tensor | None = None):
    """The Mamba-1 selective scan, a drop-in for mamba-ssm's ``selective_scan_fn``.

    See the module docstring for the recurrence and the shapes. Differentiable in every
    tensor argument; registered as ``torch.ops.graphlearn.selective_scan``.

    Args:
        return_last_state (bool, optional): Also return the final state, float32 ``(batch,
            dim, state)`` (one row per sequence with ``ptr``). (default: :obj:`False`)
        ptr (Tensor, optional): Offsets of variable-length sequences packed along the length
            axis of a batch of one; the state restarts at each offset. (default: :obj:`None`)

    Example:
        >>> import torch
        >>> from graphlearn.kernels import selective_scan
        >>> u = torch.randn(2, 4, 10); delta = torch.rand(2, 4, 10)
        >>> A = -torch.rand(4, 8); B = torch.randn(2, 8, 10); C = torch.randn(2, 8, 10)
        >>> selective_scan(u, delta, A, B, C, delta_softplus=True).shape
        torch.Size([2, 4, 10])
    """
    _check(u, delta, A, B, C, D, z, delta_bias, ptr)
    out, last = _selective_scan(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus), ptr)
    return (out, last) if return_last_state else out
