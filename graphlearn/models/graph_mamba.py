r"""Graph Mamba Networks: selective state-space models over neighbourhood token sequences.

From `"Graph Mamba: Towards Learning on Graphs with State Space Models"
<https://arxiv.org/abs/2402.08678>`_ (Behrouz and Hashemi, KDD 2024). A GMN layer reads,
for every node, a sequence of tokens describing its neighbourhood with a bidirectional
selective SSM instead of attention. The five stages are separate, replaceable parts:

1. **Tokenization** (:mod:`graphlearn.tokenizers.neighbourhood`): random-walk subgraph tokens
   of hop lengths :math:`m..0`, each repeated :math:`s` times (``tokenizer="random-walk"``),
   or the nodes themselves as tokens (``tokenizer="node"``, the paper's :math:`m = 0`).
2. **Ordering**: hop order, the largest neighbourhood first and the node itself last, for
   subgraph tokens; ``"degree"`` or ``"degree-noise"`` for node tokens (Wang et al.'s
   Graph-Mamba; with ``eval_samples > 1`` the evaluation averages the logits of several
   random orderings, their test-time ensembling).
3. **Bidirectional selective SSM** (:class:`~graphlearn.nn.BidirectionalMamba`); for subgraph
   tokens the node's embedding is the output at its own (last) position.
4. **Local encoding** of each subgraph token: GCN or GATv2 message passing over the token's
   walked edges, mean-pooled (``"gcn"``, ``"gatv2"``), or random-walk features (``"rwf"``:
   the members' mean features with the token's size and walked-edge count).
5. **PE/SE** (optional): random-walk structural encodings or Laplacian eigenvectors from
   PyG's :class:`~torch_geometric.transforms.AddRandomWalkPE` /
   :class:`~torch_geometric.transforms.AddLaplacianEigenvectorPE`, added to the input
   embedding.

Each layer is pre-norm and residual: :math:`h \leftarrow h + \mathrm{SSM}(\ldots)`, then an
optional MPNN branch (``mpnn``), then a feed-forward block. Tokens are sampled once per
forward pass from the global RNG in training (so the trainer's seed fixes them) and from a
fixed seed in evaluation (so validation scores are reproducible).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GCNConv
from torch_geometric.utils import scatter, to_undirected

from graphlearn.data.dataset import TaskKind
from graphlearn.data.validation import (
    check_edge_index,
    check_node_features,
    check_positive_int,
    value_checks_enabled,
)
from graphlearn.errors import InvalidArgumentError
from graphlearn.models.readout import Readout
from graphlearn.models.registry import register_model
from graphlearn.nn import GATv2Conv
from graphlearn.nn.mamba import BidirectionalMamba
from graphlearn.tokenizers.neighbourhood import (
    NeighbourhoodTokens,
    NodeTokenizer,
    RandomWalkTokenizer,
)

__all__ = ["GraphMambaNetwork", "StructuralEncoding", "TokenEncoder"]

_EVAL_SEED = 0x6A4D


class TokenEncoder(torch.nn.Module):
    """Local encoding of subgraph tokens: ``(|V|, C)`` node features -> ``(|V|, L, C)``.

    ``"gcn"``/``"gatv2"``: one message-passing layer over each token's walked edges (made
    undirected) on private copies of its members, then the mean over members. ``"rwf"``:
    the members' mean features and the token's structure (log-size, log-walked-edges),
    projected.
    """

    KINDS = ("gcn", "gatv2", "rwf")

    def __init__(self, kind: str, channels: int) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise InvalidArgumentError(f"local_encoder={kind!r} is not supported; use one of "
                                       f"{', '.join(self.KINDS)}")
        self.kind = kind
        if kind == "gcn":
            self.conv = GCNConv(channels, channels)
        elif kind == "gatv2":
            self.conv = GATv2Conv(channels, channels, heads=1)
        else:
            self.proj = torch.nn.Linear(channels + 2, channels)

    def reset_parameters(self) -> None:
        for module in self.children():
            module.reset_parameters()

    def forward(self, x: Tensor, tokens: NeighbourhoodTokens) -> Tensor:
        members = x.index_select(0, tokens.member_node)
        T = tokens.num_tokens
        if self.kind == "rwf":
            mean = scatter(members, tokens.member_token, 0, dim_size=T, reduce="mean")
            size = torch.bincount(tokens.member_token, minlength=T).to(x.dtype)
            walked = torch.bincount(tokens.member_token[tokens.member_edge_index[0]],
                                    minlength=T).to(x.dtype)
            stats = torch.stack([size.log1p(), walked.log1p()], dim=-1)
            out = self.proj(torch.cat([mean, stats], dim=-1))
        else:
            edges = to_undirected(tokens.member_edge_index, num_nodes=members.size(0))
            members = F.gelu(self.conv(members, edges))
            out = scatter(members, tokens.member_token, 0, dim_size=T, reduce="mean")
        return out.view(tokens.num_nodes, tokens.seq_len, -1)


class StructuralEncoding(torch.nn.Module):
    """PE/SE from PyG's transforms, cached for a graph seen again (full-batch training).

    ``"rwse"``: :class:`~torch_geometric.transforms.AddRandomWalkPE` (return probabilities
    of 1..k-step walks; exact per graph of a disjoint batch). ``"laplacian"``:
    :class:`~torch_geometric.transforms.AddLaplacianEigenvectorPE` per graph of the batch,
    zero-padded when a graph has fewer than ``k + 1`` nodes, with random sign flips in
    training (the eigenvectors' sign is arbitrary).
    """

    KINDS = ("rwse", "laplacian")

    def __init__(self, kind: str, dim: int) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise InvalidArgumentError(f"pe={kind!r} is not supported; use one of "
                                       f"{', '.join(self.KINDS)} or null")
        self.kind, self.dim = kind, check_positive_int(dim, "pe_dim", caller="GraphMamba")
        self._cache: tuple | None = None

    def _compute(self, edge_index: Tensor, num_nodes: int, batch: Tensor | None) -> Tensor:
        from torch_geometric.data import Data
        from torch_geometric.transforms import AddLaplacianEigenvectorPE, AddRandomWalkPE

        if self.kind == "rwse":
            data = AddRandomWalkPE(self.dim, attr_name="pe")(Data(edge_index=edge_index,
                                                                 num_nodes=num_nodes))
            return data.pe
        pe = torch.zeros(num_nodes, self.dim)
        graphs = batch if batch is not None else torch.zeros(num_nodes, dtype=torch.long)
        counts = torch.bincount(graphs)
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        for g in range(counts.numel()):
            lo, hi = int(ptr[g]), int(ptr[g + 1])
            k = min(self.dim, hi - lo - 2)
            if k < 1:
                continue
            mask = (edge_index[0] >= lo) & (edge_index[0] < hi)
            sub = Data(edge_index=edge_index[:, mask] - lo, num_nodes=hi - lo)
            sub = AddLaplacianEigenvectorPE(k, attr_name="pe", is_undirected=True)(sub)
            pe[lo:hi, :k] = sub.pe
        return pe

    def forward(self, edge_index: Tensor, num_nodes: int, batch: Tensor | None) -> Tensor:
        key = (edge_index.data_ptr(), edge_index.shape, edge_index._version, num_nodes,
               None if batch is None else (batch.data_ptr(), batch._version))
        if self._cache is None or self._cache[0] != key:
            pe = self._compute(edge_index.cpu(), num_nodes,
                               None if batch is None else batch.cpu()).to(edge_index.device)
            self._cache = (key, pe)
        pe = self._cache[1]
        if self.kind == "laplacian" and self.training:
            sign = torch.randint(0, 2, (1, self.dim), device=pe.device) * 2 - 1
            pe = pe * sign
        return pe


class _Layer(torch.nn.Module):
    """One GMN layer: (local encoding +) bidirectional SSM, optional MPNN, feed-forward."""

    def __init__(self, channels: int, seq_len: int | None, local_encoder: str | None,
                 mpnn: str | None, dropout: float, mamba_kwargs: dict) -> None:
        super().__init__()
        self.encoder = TokenEncoder(local_encoder, channels) if seq_len else None
        self.position = torch.nn.Parameter(torch.zeros(seq_len, channels)) if seq_len else None
        self.norm_ssm = torch.nn.LayerNorm(channels)
        self.ssm = BidirectionalMamba(channels, **mamba_kwargs)
        self.mpnn = None
        if mpnn == "gcn":
            self.mpnn = GCNConv(channels, channels)
        elif mpnn == "gatv2":
            self.mpnn = GATv2Conv(channels, channels, heads=1)
        elif mpnn is not None:
            raise InvalidArgumentError(f"mpnn={mpnn!r} is not supported; use 'gcn', 'gatv2' or "
                                       f"null")
        self.norm_mpnn = torch.nn.LayerNorm(channels) if self.mpnn is not None else None
        self.norm_ffn = torch.nn.LayerNorm(channels)
        self.ffn = torch.nn.Sequential(torch.nn.Linear(channels, 2 * channels), torch.nn.GELU(),
                                       torch.nn.Linear(2 * channels, channels))
        self.dropout = dropout

    def forward(self, h: Tensor, edge_index: Tensor, tokens: NeighbourhoodTokens | None,
                order) -> Tensor:
        drop = lambda t: F.dropout(t, self.dropout, self.training)  # noqa: E731
        if tokens is not None:
            seq = self.encoder(h, tokens) + self.position
            out = self.ssm(self.norm_ssm(seq))[:, -1]
        else:
            seq = self.norm_ssm(h).index_select(0, order.perm).unsqueeze(0)
            out = torch.empty_like(h).index_copy_(0, order.perm, self.ssm(seq, order.ptr)[0])
        h = h + drop(out)
        if self.mpnn is not None:
            h = h + drop(F.gelu(self.mpnn(self.norm_mpnn(h), edge_index)))
        return h + drop(self.ffn(self.norm_ffn(h)))


@register_model("graph-mamba", tasks=(TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION),
                aliases=("gmn",))
class GraphMambaNetwork(torch.nn.Module):
    r"""Graph Mamba Network (Behrouz and Hashemi, KDD 2024); see the module docstring.

    Args:
        in_channels (int): Input node features.
        out_channels (int): Number of classes.
        hidden_channels (int): Model width. (default: :obj:`64`)
        num_layers (int): GMN layers. (default: :obj:`2`)
        tokenizer (str): ``"random-walk"`` (subgraph tokens) or ``"node"``. (default:
            :obj:`"random-walk"`)
        max_hops (int): Longest walk :math:`m` of subgraph tokens. (default: :obj:`2`)
        num_walks (int): Walks :math:`M` per subgraph token. (default: :obj:`4`)
        repeats (int): Repetitions :math:`s` of each hop length. (default: :obj:`1`)
        non_backtracking (bool): Non-backtracking walks, which reach further per step.
            (default: :obj:`False`)
        order (str): Node-token order, ``"degree"`` or ``"degree-noise"``. (default:
            :obj:`"degree-noise"`)
        local_encoder (str): ``"gcn"``, ``"gatv2"`` or ``"rwf"``. (default: :obj:`"gcn"`)
        mpnn (str, optional): An MPNN branch per layer, ``"gcn"`` or ``"gatv2"``. (default:
            :obj:`None`; with node tokens, ``"gcn"``)
        pe (str, optional): ``"rwse"`` or ``"laplacian"``. (default: :obj:`None`)
        pe_dim (int): PE/SE size. (default: :obj:`8`)
        state_dim (int): SSM state size :math:`N`. (default: :obj:`16`)
        expand (int): Mamba's inner expansion. (default: :obj:`2`)
        conv_kernel (int): Mamba's causal convolution width. (default: :obj:`4`)
        dropout (float): Dropout on residual branches and before the head. (default: :obj:`0.2`)
        eval_samples (int): Token samplings (or node orderings) averaged at evaluation.
            (default: :obj:`1`)
        readout (str, optional): Graph-level pooling; ``None`` for node tasks.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 64,
                 num_layers: int = 2, tokenizer: str = "random-walk", max_hops: int = 2,
                 num_walks: int = 4, repeats: int = 1, non_backtracking: bool = False,
                 order: str = "degree-noise",
                 local_encoder: str = "gcn", mpnn: str | None = "auto", pe: str | None = None,
                 pe_dim: int = 8, state_dim: int = 16, expand: int = 2, conv_kernel: int = 4,
                 dropout: float = 0.2, eval_samples: int = 1, readout: str | None = None) -> None:
        super().__init__()
        name = "GraphMambaNetwork"
        check_positive_int(num_layers, "num_layers", caller=name)
        check_positive_int(hidden_channels, "hidden_channels", caller=name)
        self.eval_samples = check_positive_int(eval_samples, "eval_samples", caller=name)
        if not 0.0 <= float(dropout) < 1.0:
            raise InvalidArgumentError(f"dropout of {name} must lie in [0, 1), got {dropout!r}")
        if tokenizer == "random-walk":
            self.tokenizer = RandomWalkTokenizer(max_hops, num_walks, repeats, non_backtracking)
            seq_len = self.tokenizer.seq_len
            mpnn = None if mpnn == "auto" else mpnn
        elif tokenizer == "node":
            self.tokenizer = NodeTokenizer(order)
            seq_len = None
            mpnn = "gcn" if mpnn == "auto" else mpnn
        else:
            raise InvalidArgumentError(f"tokenizer={tokenizer!r} is not supported; use "
                                       f"'random-walk' or 'node'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.hidden_channels, self.num_layers, self.dropout = hidden_channels, num_layers, dropout
        self.input = torch.nn.Linear(in_channels, hidden_channels)
        self.pe = StructuralEncoding(pe, pe_dim) if pe is not None else None
        self.pe_proj = torch.nn.Linear(pe_dim, hidden_channels) if pe is not None else None
        mamba_kwargs = dict(state_dim=state_dim, expand=expand, conv_kernel=conv_kernel)
        self.layers = torch.nn.ModuleList(
            _Layer(hidden_channels, seq_len, local_encoder, mpnn, dropout, mamba_kwargs)
            for _ in range(num_layers))
        self.norm = torch.nn.LayerNorm(hidden_channels)
        self.readout = Readout(readout) if readout is not None else None
        self.head = torch.nn.Linear(hidden_channels, out_channels)

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def _generator(self, device: torch.device, sample: int) -> torch.Generator:
        gen = torch.Generator(device=device)
        if self.training:
            gen.manual_seed(int(torch.randint(0, 2**62, (1,))))
        else:
            gen.manual_seed(_EVAL_SEED + sample)
        return gen

    def embed(self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None,
              generator: torch.Generator | None = None) -> Tensor:
        """Node embeddings ``(|V|, hidden_channels)`` for one token sampling."""
        values = (not torch.compiler.is_compiling()) and value_checks_enabled(x, edge_index)
        check_node_features(x, ensure_finite=values, caller="GraphMambaNetwork")
        n = x.size(0)
        check_edge_index(edge_index, num_nodes=n, ensure_in_range=values,
                         caller="GraphMambaNetwork")
        h = self.input(x)
        if self.pe is not None:
            h = h + self.pe_proj(self.pe(edge_index, n, batch).to(h.dtype))
        tokens = order = None
        if isinstance(self.tokenizer, RandomWalkTokenizer):
            tokens = self.tokenizer(edge_index, n, generator)
        else:
            order = self.tokenizer(edge_index, n, batch, generator)
        for layer in self.layers:
            h = layer(h, edge_index, tokens, order)
        return self.norm(h)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None) -> Tensor:
        """Logits per node, or per graph of ``batch`` when the model has a ``readout``."""
        samples = 1 if self.training else self.eval_samples
        out = 0
        for sample in range(samples):
            h = self.embed(x, edge_index, batch, self._generator(x.device, sample))
            if self.readout is not None:
                h = self.readout(h, batch)
            out = out + self.head(F.dropout(h, self.dropout, self.training))
        return out / samples if samples > 1 else out

    def __repr__(self) -> str:
        return (f"GraphMambaNetwork({self.in_channels}, {self.out_channels}, "
                f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers}, "
                f"tokenizer={self.tokenizer!r})")
