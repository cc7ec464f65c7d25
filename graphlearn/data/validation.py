"""Input validators: one per input kind, called once at each public entry point.

Each ``check_*`` function returns its (possibly converted) input and raises a
:mod:`graphlearn.errors` exception whose message gives the expected value, what came in
(shape, dtype, device), which input failed, who called, and the fix.

Cheap checks (rank, dtype, device, sizes known on the host) always run. Checks that read
tensor *values* (index range, NaN) need a device-to-host synchronisation on CUDA, so layers
run them only for CPU tensors or when ``GRAPHLEARN_VALIDATE=1``; dataset loading, the
trainer and :func:`validate` always run them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphlearn.env import env_flag
from graphlearn.errors import (
    DeviceError,
    DTypeError,
    EmptyGraphError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    NonFiniteError,
    ShapeError,
)

__all__ = [
    "value_checks_enabled",
    "check_edge_index",
    "check_dense_edge_index",
    "check_node_features",
    "check_same_device",
    "validate",
]


def value_checks_enabled(*tensors: Tensor | None) -> bool:
    """Whether value checks (index range, NaN) should run for these tensors in a layer.

    True when every given tensor lives on the CPU (the check is then cheap and needs no
    device synchronisation) or when the environment sets ``GRAPHLEARN_VALIDATE=1``.
    """
    flag = env_flag("GRAPHLEARN_VALIDATE")
    if flag is not None:
        return flag
    return all(t is None or t.device.type == "cpu" for t in tensors)


def _where(caller: str | None, name: str) -> str:
    return f"{name!s} passed to {caller}" if caller else name


def check_edge_index(
    edge_index: Tensor,
    *,
    num_nodes: int | tuple[int, int] | None = None,
    ensure_in_range: bool = True,
    caller: str | None = None,
    input_name: str = "edge_index",
) -> Tensor:
    """Check a COO ``edge_index`` of shape ``(2, |E|)`` and dtype ``long`` (or ``int32``).

    Args:
        edge_index (Tensor): Source (row 0) and destination (row 1) node ids.
        num_nodes (int or (int, int), optional): Number of nodes, or the pair
            (number of source nodes, number of destination nodes) for bipartite graphs.
            Needed for the range check.
        ensure_in_range (bool): Check that ids lie in ``[0, num_nodes)``; reads values.
        caller (str, optional): Name of the calling function or layer, for messages.
        input_name (str): Name of the argument, for messages.

    Returns:
        The same tensor.
    """
    where = _where(caller, input_name)
    if not isinstance(edge_index, Tensor):
        raise DTypeError(
            f"{where} must be a torch.Tensor of shape (2, num_edges), got {type(edge_index).__name__}"
        )
    if edge_index.dtype not in (torch.long, torch.int32):
        raise DTypeError(
            f"{where} must have dtype torch.long, got {edge_index.dtype}; "
            f"convert it with edge_index.long()"
        )
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        fix = " (transpose it with edge_index.t())" if edge_index.dim() == 2 and edge_index.size(1) == 2 else ""
        raise ShapeError(
            f"{where} must have shape (2, num_edges), got {tuple(edge_index.shape)}{fix}"
        )
    if ensure_in_range and num_nodes is not None and edge_index.numel() > 0:
        n_src, n_dst = (num_nodes, num_nodes) if isinstance(num_nodes, int) else num_nodes
        for row, n, role in ((0, n_src, "source"), (1, n_dst, "destination")):
            ids = edge_index[row]
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= n:
                bad = lo if lo < 0 else hi
                raise IndexOutOfRangeError(
                    f"{where} holds {role} node id {bad}, outside [0, {n}) for a graph with {n} "
                    f"{role} nodes; ids must be 0-based and smaller than the number of rows of x"
                )
    return edge_index


def check_dense_edge_index(edge_index, *, caller: str) -> None:
    """Reject SparseTensor / torch sparse adjacencies where a dense ``(2, |E|)`` index is needed."""
    if isinstance(edge_index, Tensor) and edge_index.layout == torch.strided:
        return
    got = type(edge_index).__name__
    if isinstance(edge_index, Tensor):
        got = f"a sparse tensor ({edge_index.layout})"
    raise DTypeError(
        f"edge_index passed to {caller} must be a dense (2, num_edges) tensor, got {got}; "
        f"SparseTensor/sparse adjacency input is not supported, convert it with "
        f"torch.stack(adj_t.t().coo()[:2]) or torch_geometric.utils.to_edge_index(adj)"
    )


def check_node_features(
    x: Tensor,
    *,
    ensure_finite: bool = True,
    allow_empty: bool = False,
    caller: str | None = None,
    input_name: str = "x",
) -> Tensor:
    """Check node features: a floating-point tensor of shape ``(|V|, F)``.

    Args:
        x (Tensor): Node feature matrix.
        ensure_finite (bool): Reject NaN and infinity; reads values.
        allow_empty (bool): Accept a graph with zero nodes.
        caller (str, optional): Name of the caller, for messages.
        input_name (str): Name of the argument, for messages.
    """
    where = _where(caller, input_name)
    if not isinstance(x, Tensor):
        raise DTypeError(f"{where} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise DTypeError(
            f"{where} must be a floating-point tensor, got {x.dtype}; convert it with x.float()"
        )
    if x.dim() != 2:
        fix = " (use x.view(-1, 1) for one feature per node)" if x.dim() == 1 else ""
        raise ShapeError(f"{where} must have shape (num_nodes, num_features), got {tuple(x.shape)}{fix}")
    if x.size(0) == 0 and not allow_empty:
        raise EmptyGraphError(f"{where} has 0 nodes; a graph needs at least one node")
    # x.sum() is finite iff no entry is NaN/inf (barring overflow), and is ~30x cheaper than
    # isfinite(x).all() on large feature matrices; the exact check runs only on suspicion.
    if ensure_finite and x.numel() > 0 and not bool(torch.isfinite(x.sum())) \
            and not bool(torch.isfinite(x).all()):
        n_bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise NonFiniteError(
            f"{where} holds NaN or infinite values in {n_bad} of {x.size(0)} rows; "
            f"impute or drop them before training (e.g. torch.nan_to_num(x))"
        )
    return x


def check_same_device(*named: tuple[str, Tensor | None], caller: str | None = None) -> None:
    """Raise :class:`DeviceError` unless all given tensors share one device."""
    present = [(name, t) for name, t in named if t is not None]
    if not present:
        return
    first_name, first = present[0]
    for name, t in present[1:]:
        if t.device != first.device:
            who = f" in {caller}" if caller else ""
            raise DeviceError(
                f"{name} is on {t.device} but {first_name} is on {first.device}{who}; "
                f"move both to one device, e.g. {name}.to({first_name}.device)"
            )


def validate(data, *, caller: str | None = "graphlearn.validate"):
    """Validate a PyG ``Data`` object (or a ``Batch``) in full and return it.

    Checks node features (floating point, 2-D, finite), ``edge_index`` (shape, dtype,
    id range), ``edge_attr`` (one row per edge, finite) and that all tensors share a
    device. Raises a :mod:`graphlearn.errors` exception naming the problem.
    """
    num_nodes = data.num_nodes
    if num_nodes is None or num_nodes == 0:
        raise EmptyGraphError(
            f"graph passed to {caller} has no nodes; check the dataset or the sampler"
        )
    x = getattr(data, "x", None)
    if x is not None:
        check_node_features(x, caller=caller, input_name="data.x")
    edge_index = getattr(data, "edge_index", None)
    if edge_index is not None:
        check_edge_index(edge_index, num_nodes=num_nodes, caller=caller, input_name="data.edge_index")
    edge_attr = getattr(data, "edge_attr", None)
    if edge_attr is not None and edge_index is not None:
        if edge_attr.size(0) != edge_index.size(1):
            raise ShapeError(
                f"data.edge_attr passed to {caller} has {edge_attr.size(0)} rows but edge_index has "
                f"{edge_index.size(1)} edges; give one row of edge features per edge"
            )
        if edge_attr.is_floating_point() and not bool(torch.isfinite(edge_attr).all()):
            raise NonFiniteError(f"data.edge_attr passed to {caller} holds NaN or infinite values")
    check_same_device(("data.x", x), ("data.edge_index", edge_index), ("data.edge_attr", edge_attr),
                      caller=caller)
    y = getattr(data, "y", None)
    if y is not None and y.is_floating_point() and not bool(torch.isfinite(y).all()):
        raise NonFiniteError(f"data.y passed to {caller} holds NaN or infinite labels")
    return data


def check_positive_int(value, name: str, *, caller: str | None = None, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum``; raise InvalidArgumentError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        who = f" of {caller}" if caller else ""
        raise InvalidArgumentError(f"{name}{who} must be an integer >= {minimum}, got {value!r}")
    return value
