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

import torch
import torch.nn.functional as F
from torch import Tensor

from graphlearn.errors import DeviceError, DTypeError, InvalidArgumentError, ShapeError

from ._dispatch import use_triton

__all__ = ["selective_scan", "reference", "reference_backward"]

OP_NAME = "graphlearn::selective_scan"

# Elements of the transient (length, batch, dim, state) buffer the reference backward may hold
# at once; larger batches are processed in slices (about 256 MiB of float32).
_BACKWARD_BUDGET = 1 << 26


# ----------------------------------------------------------------------------------------
# layout helpers shared by the reference and the Triton path
# ----------------------------------------------------------------------------------------


def expand_groups(M: Tensor, batch: int, dim: int, length: int) -> Tensor:
    """``B``/``C`` as a ``(batch, dim, state, length)`` view (stride 0 where shared)."""
    if M.dim() == 2:  # (dim, state): not input-dependent
        return M.view(1, dim, M.size(1), 1).expand(batch, dim, M.size(1), length)
    if M.dim() == 3:  # (batch, state, length): one group
        M = M.unsqueeze(1)
    g = M.size(1)
    return M.unsqueeze(2).expand(batch, g, dim // g, M.size(2), length).reshape(
        batch, dim, M.size(2), length) if g > 1 else M.expand(batch, dim, M.size(2), length)


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


def _pack_index(ptr: Tensor, length: int) -> tuple[Tensor, Tensor, int]:
    """(sequence id, position in sequence) of every packed position, and the longest length."""
    lengths = ptr.diff()
    seq = torch.repeat_interleave(torch.arange(lengths.numel(), device=ptr.device), lengths,
                                  output_size=length)
    pos = torch.arange(length, device=ptr.device) - ptr[seq]
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


def _scan_padded(u, dl, A, Bx, Cx, h0=None, keep_states=False):
    """Run the recurrence on (batch, dim, length) float32 inputs; B/C as (b, d, n, l) views.

    Returns ``y`` (without the D skip and the gate), the last state and, with
    ``keep_states``, every state as a (length, batch, dim, state) tensor.
    """
    b, d, length = u.shape
    h = u.new_zeros((b, d, A.size(1))) if h0 is None else h0
    y = u.new_empty((b, d, length))
    states = u.new_empty((length, b, d, A.size(1))) if keep_states else None
    for t in range(length):
        dl_t = dl[:, :, t, None]
        h = torch.exp(dl_t * A) * h + (dl_t * u[:, :, t, None]) * Bx[..., t]
        y[:, :, t] = (h * Cx[..., t]).sum(-1)
        if keep_states:
            states[t] = h
    return y, h, states


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
    Bx = expand_groups(B.to(acc), batch, dim, length)
    Cx = expand_groups(C.to(acc), batch, dim, length)
    Af = A.to(acc)
    if ptr is not None:
        seq, pos, max_len = _pack_index(ptr, length)
        S = ptr.numel() - 1
        up, dlp = _to_padded(uf, seq, pos, S, max_len), _to_padded(dl, seq, pos, S, max_len)
        Bp, Cp = _to_padded(Bx, seq, pos, S, max_len), _to_padded(Cx, seq, pos, S, max_len)
        y, last, _ = _scan_padded(up, dlp, Af, Bp, Cp)
        y = _to_packed(y, seq, pos)
    else:
        y, last, _ = _scan_padded(uf, dl, Af, Bx, Cx)
    if D is not None:
        y = y + uf * D.to(acc).view(1, -1, 1)
    if z is not None:
        y = y * F.silu(z.to(acc))
    return y.to(u.dtype), last


def _group_sum(g: Tensor, like: Tensor, batch: int, dim: int) -> Tensor:
    """Reduce a (b, d, n, l) gradient to the shape of ``B``/``C`` (groups, shared, constant)."""
    if like.dim() == 2:
        return g.sum(dim=(0, 3))
    n, length = g.shape[2], g.shape[3]
    if like.dim() == 3:
        return g.sum(1)
    groups = like.size(1)
    return g.view(batch, groups, dim // groups, n, length).sum(2)


def reference_backward(grad_out: Tensor, grad_last: Tensor | None, u: Tensor, delta: Tensor,
                       A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
                       delta_bias: Tensor | None, delta_softplus: bool, ptr: Tensor | None):
    r"""Gradients of :func:`reference` w.r.t. ``u, delta, A, B, C, D, z, delta_bias``.

    The adjoint :math:`a_t = \partial L/\partial h_t` runs backwards,
    :math:`a_t = C_t\, \bar g_t + e^{\Delta_{t+1}A} a_{t+1}` (with :math:`\bar g` the gradient
    of :math:`y`), and every input gradient is a product of :math:`a_t` with the recomputed
    states :math:`h_{t-1}`, e.g. :math:`\partial L/\partial \Delta_t = \sum_n a_t
    (A\,e^{\Delta_t A} h_{t-1} + B_t u_t)`. The forward states are recomputed in batch
    slices of bounded size.
    """
    batch, dim, length = u.shape
    acc = acc_dtype(u.dtype)
    uf, dl = u.to(acc), process_delta(delta, delta_bias, delta_softplus)
    Af = A.to(acc)
    Bx = expand_groups(B.to(acc), batch, dim, length)
    Cx = expand_groups(C.to(acc), batch, dim, length)
    g = grad_out.to(acc)
    g_z = None
    if z is not None:
        zf = z.to(acc)
        sig = torch.sigmoid(zf)
        y_pre, _ = reference(uf, delta, A, B, C, D, None, delta_bias, delta_softplus, ptr)
        g_z = (g * y_pre * sig * (1 + zf * (1 - sig))).to(z.dtype)
        g = g * zf * sig
    g_D = (g * uf).sum(dim=(0, 2)).to(D.dtype) if D is not None else None
    g_u = g * D.to(acc).view(1, -1, 1) if D is not None else torch.zeros_like(uf)

    if ptr is not None:
        seq, pos, max_len = _pack_index(ptr, length)
        S = ptr.numel() - 1
        pad = lambda x: _to_padded(x, seq, pos, S, max_len)  # noqa: E731
        parts = _adjoint(pad(uf), pad(dl), Af, pad(Bx), pad(Cx), pad(g), grad_last)
        g_u_s, g_dl, g_A, g_Bx, g_Cx = parts
        g_u_s, g_dl = _to_packed(g_u_s, seq, pos), _to_packed(g_dl, seq, pos)
        g_Bx, g_Cx = _to_packed(g_Bx, seq, pos), _to_packed(g_Cx, seq, pos)
    else:
        g_u_s, g_dl, g_A, g_Bx, g_Cx = _adjoint(uf, dl, Af, Bx, Cx, g, grad_last)
    g_u = (g_u + g_u_s).to(u.dtype)
    if delta_softplus:
        raw = delta.to(acc) + (delta_bias.to(acc).view(1, -1, 1) if delta_bias is not None else 0)
        g_dl = g_dl * torch.sigmoid(raw)
    g_bias = g_dl.sum(dim=(0, 2)).to(delta_bias.dtype) if delta_bias is not None else None
    return (g_u, g_dl.to(delta.dtype), g_A.to(A.dtype),
            _group_sum(g_Bx, B, batch, dim).to(B.dtype), _group_sum(g_Cx, C, batch, dim).to(C.dtype),
            g_D, g_z, g_bias)


def _adjoint(u, dl, A, Bx, Cx, g, grad_last):
    """The reverse-time sweep on padded float32 inputs, over batch slices of bounded size."""
    b, d, length = u.shape
    n = A.size(1)
    g_u = torch.empty_like(u)
    g_dl = torch.empty_like(u)
    g_A = torch.zeros_like(A)
    g_Bx = u.new_empty((b, d, n, length))
    g_Cx = u.new_empty((b, d, n, length))
    step = max(1, _BACKWARD_BUDGET // max(1, length * d * n))
    for lo in range(0, b, step):
        sl = slice(lo, min(b, lo + step))
        _, _, states = _scan_padded(u[sl], dl[sl], A, Bx[sl], Cx[sl], keep_states=True)
        a = (grad_last[sl].to(u.dtype).clone() if grad_last is not None
             else u.new_zeros((states.size(1), d, n)))
        for t in range(length - 1, -1, -1):
            h_t = states[t]
            h_prev = states[t - 1] if t > 0 else torch.zeros_like(h_t)
            dl_t = dl[sl, :, t, None]
            u_t = u[sl, :, t, None]
            g_t = g[sl, :, t, None]
            a = a + g_t * Cx[sl, ..., t]
            g_Cx[sl, ..., t] = g_t * h_t
            dA = torch.exp(dl_t * A)
            dAh = dA * h_prev
            g_dl[sl, :, t] = (a * (A * dAh + Bx[sl, ..., t] * u_t)).sum(-1)
            g_A += (a * dl_t * dAh).sum(0)
            g_u[sl, :, t] = (a * dl_t * Bx[sl, ..., t]).sum(-1)
            g_Bx[sl, ..., t] = a * dl_t * u_t
            a = a * dA
    return g_u, g_dl, g_A, g_Bx, g_Cx


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
