r"""GRAG's generator: a Hugging Face causal LM that reads the retrieved subgraph twice, as
graph soft-prompt tokens and as text.

GRAG (Hu et al., 2024, `arXiv:2405.16506 <https://arxiv.org/abs/2405.16506>`_, Sec. 3.4)
hands the LLM two views of the retrieved (and softly pruned) subgraph:

- a **graph view**: a GNN over the member text embeddings, with node and edge features
  scaled by the soft-pruning gates (:class:`~graphlearn.kg.grag.SoftPruner`), mean-pooled and
  projected into the LM's token-embedding space as :math:`T` soft-prompt vectors
  (:class:`GraphPromptEncoder`);
- a **text view**: GRAG's hierarchical description of the subgraph, in the text prompt
  (:func:`~graphlearn.kg.grag.build_prompt`).

:class:`SoftPromptGenerator` feeds the LM ``[BOS] [soft tokens] [prompt tokens]`` as
``inputs_embeds`` and decodes greedily. The LM stays frozen, or is adapted with LoRA
(`peft <https://huggingface.co/docs/peft>`_); only the graph encoder, its projector and the
LoRA weights train (:meth:`SoftPromptGenerator.fit`, teacher forcing with the cross-entropy
on the answer tokens), and only they are saved (:meth:`SoftPromptGenerator.save`, as
``safetensors``).

Example::

    from graphlearn.kg.grag import GraphIndex, HashingEncoder, TextGraph, retrieve
    from graphlearn.kg.grag.hf import SoftPromptGenerator

    index = GraphIndex.build(TextGraph.from_triples(triples), HashingEncoder(256))
    gen = SoftPromptGenerator("models/Qwen2.5-0.5B-Instruct", in_channels=index.dim,
                              lora=True)
    gen.fit([(q, retrieve(index, q), a) for q, a in train], epochs=3)
    print(gen.generate("where does bob live?", retrieve(index, "where does bob live?")))

``transformers`` and ``peft`` are imported when a generator is built, not with
:mod:`graphlearn.kg.grag`.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlearn.errors import (
    DataFormatError,
    DataNotFoundError,
    DTypeError,
    InvalidArgumentError,
    ShapeError,
)

from .generate import DEFAULT_TEMPLATE, BaseGenerator, build_prompt
from .index import _check_int
from .manifest import read_manifest
from .retrieve import Retrieval, _check_question

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["GraphPromptEncoder", "SoftPromptGenerator"]

FORMAT = "graphlearn.SoftPromptGenerator"
FORMAT_VERSION = 1
_CONFIG = "generator.json"
_ENCODER = "graph_encoder.safetensors"
_ADAPTER = "adapter"
_ADAPTER_WEIGHTS = "adapter_model.safetensors"


# ---------------------------------------------------------------------------- graph encoder
class GraphPromptEncoder(nn.Module):
    r"""The graph view of GRAG: a GATv2 network over a retrieved subgraph, pooled and
    projected into :math:`T` soft-prompt vectors for a language model.

    Node features are the members' text embeddings :math:`\mathbf{x}_u`, edge features the
    edge embeddings :math:`\mathbf{y}_e`, each scaled by its soft-pruning gate when one is
    given (GRAG's ``x * node_gate[:, None]``). :math:`L` `GATv2
    <https://arxiv.org/abs/2105.14491>`_ layers (ReLU between them, the edge features
    entering every layer's attention) give :math:`\mathbf{h}_u`; the graph vector is their
    mean, optionally concatenated with the question embedding :math:`\mathbf{q}`, and a
    two-layer MLP maps it to :math:`T` vectors of the LM's hidden size :math:`H`:

    .. math::
        \mathbf{z} = \Bigl[\tfrac{1}{|V|} \textstyle\sum_{u \in V} \mathbf{h}_u \,\Big\Vert\,
        \mathbf{q}\Bigr], \qquad
        [\mathbf{p}_1, \dots, \mathbf{p}_T] = \mathbf{W}_2\,\mathrm{GELU}(\mathbf{W}_1
        \mathbf{z} + \mathbf{b}_1) + \mathbf{b}_2

    A graph with no nodes pools to the zero vector, so its prompt carries the question only.

    Args:
        in_channels (int): Text-embedding size :math:`d` (the index's ``dim``).
        out_channels (int): The LM's hidden size :math:`H`.
        hidden_channels (int): GNN width. (default: :obj:`256`)
        num_layers (int): GATv2 layers. (default: :obj:`2`)
        heads (int): Attention heads per layer (averaged, so the width stays
            :obj:`hidden_channels`). (default: :obj:`4`)
        num_prompt_tokens (int): Soft-prompt vectors :math:`T` per graph. (default: :obj:`1`)
        projector_channels (int, optional): Hidden width of the projector MLP (default:
            :obj:`out_channels`).
        use_question (bool): Concatenate the question embedding to the pooled graph vector.
            (default: :obj:`True`)
        bidirectional (bool): Pass messages along both directions of each edge (a fact is
            relevant to its head and to its tail). (default: :obj:`True`)
        dropout (float): Dropout between GNN layers and in the projector. (default: :obj:`0.0`)

    Shapes:
        - **input:** node embeddings :math:`(|V|, d)`, edge_index :math:`(2, |E|)`, edge
          embeddings :math:`(|E|, d)`, batch :math:`(|V|,)`, question :math:`(B, d)`, gates
          :math:`(|V|,)` and :math:`(|E|,)`
        - **output:** :math:`(B, T, H)`
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 256,
                 num_layers: int = 2, heads: int = 4, num_prompt_tokens: int = 1,
                 projector_channels: int | None = None, use_question: bool = True,
                 bidirectional: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        from torch_geometric.nn import GATv2Conv

        self.in_channels = _check_int(in_channels, "in_channels", 1)
        self.out_channels = _check_int(out_channels, "out_channels", 1)
        self.hidden_channels = _check_int(hidden_channels, "hidden_channels", 1)
        self.num_layers = _check_int(num_layers, "num_layers", 1)
        self.heads = _check_int(heads, "heads", 1)
        self.num_prompt_tokens = _check_int(num_prompt_tokens, "num_prompt_tokens", 1)
        self.projector_channels = (out_channels if projector_channels is None else
                                   _check_int(projector_channels, "projector_channels", 1))
        self.use_question = bool(use_question)
        self.bidirectional = bool(bidirectional)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
                0.0 <= dropout < 1.0):
            raise InvalidArgumentError(f"dropout must be a float in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.convs = nn.ModuleList(
            GATv2Conv(in_channels if i == 0 else hidden_channels, hidden_channels, heads=heads,
                      concat=False, edge_dim=in_channels)
            for i in range(num_layers))
        pooled = hidden_channels + (in_channels if self.use_question else 0)
        self.projector = nn.Sequential(
            nn.Linear(pooled, self.projector_channels), nn.GELU(), nn.Dropout(self.dropout),
            nn.Linear(self.projector_channels, num_prompt_tokens * out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        for layer in self.projector:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def config(self) -> dict[str, Any]:
        """The constructor arguments (for :meth:`SoftPromptGenerator.save`)."""
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "hidden_channels": self.hidden_channels, "num_layers": self.num_layers,
                "heads": self.heads, "num_prompt_tokens": self.num_prompt_tokens,
                "projector_channels": self.projector_channels,
                "use_question": self.use_question, "bidirectional": self.bidirectional,
                "dropout": self.dropout}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers}, "
                f"heads={self.heads}, num_prompt_tokens={self.num_prompt_tokens})")

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor | None = None,
                question: Tensor | None = None, node_gate: Tensor | None = None,
                edge_gate: Tensor | None = None, num_graphs: int | None = None) -> Tensor:
        """Soft prompts of a batch of graphs (PyG's disjoint-union batching).

        Args:
            x (Tensor): ``(|V|, d)`` node embeddings.
            edge_index (Tensor): ``(2, |E|)`` long, into the rows of ``x``.
            edge_attr (Tensor): ``(|E|, d)`` edge embeddings.
            batch (Tensor, optional): ``(|V|,)`` graph of each node (default: one graph).
            question (Tensor, optional): ``(B, d)`` or ``(d,)``; zeros when omitted.
            node_gate, edge_gate (Tensor, optional): ``(|V|,)`` and ``(|E|,)`` gates.
            num_graphs (int, optional): :math:`B` (default: ``batch.max() + 1``, or 1), needed
                when the last graphs of a batch have no nodes.

        Returns:
            Tensor: ``(B, T, H)``.
        """
        from torch_geometric.nn import global_mean_pool

        p = self.projector[0].weight
        x, edge_attr = x.to(p), edge_attr.to(p)
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ShapeError(f"node embeddings must have shape (num_nodes, {self.in_channels}), "
                             f"got {tuple(x.shape)}")
        if edge_attr.dim() != 2 or edge_attr.size(1) != self.in_channels or (
                edge_attr.size(0) != edge_index.size(1)):
            raise ShapeError(f"edge embeddings must have shape ({edge_index.size(1)}, "
                             f"{self.in_channels}) (one per edge), got {tuple(edge_attr.shape)}")
        if batch is None:
            batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 1
        if node_gate is not None:
            x = x * node_gate.to(p).view(-1, 1)
        if edge_gate is not None:
            edge_attr = edge_attr * edge_gate.to(p).view(-1, 1)
        edge_index = edge_index.to(x.device)
        if self.bidirectional:
            edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
            edge_attr = torch.cat([edge_attr, edge_attr], dim=0)
        if x.size(0) == 0:
            h = x.new_zeros(0, self.hidden_channels)
        else:
            h = x
            for i, conv in enumerate(self.convs):
                h = conv(h, edge_index, edge_attr)
                if i < self.num_layers - 1:
                    h = F.dropout(h.relu(), p=self.dropout, training=self.training)
        pooled = global_mean_pool(h, batch.to(h.device), size=num_graphs)
        if self.use_question:
            if question is None:
                question = pooled.new_zeros(num_graphs, self.in_channels)
            question = question.to(p).reshape(-1, self.in_channels)
            if question.size(0) != num_graphs:
                question = question.expand(num_graphs, -1)
            pooled = torch.cat([pooled, question], dim=1)
        out = self.projector(pooled)
        return out.view(num_graphs, self.num_prompt_tokens, self.out_channels)

    def encode(self, retrievals: Sequence[Retrieval | None]) -> Tensor:
        """Soft prompts ``(B, T, H)`` of retrieved subgraphs (``None``: no graph), using their
        member embeddings, question embeddings and gates."""
        device = self.projector[0].weight.device
        xs, edges, attrs, node_gates, edge_gates, batch, questions = [], [], [], [], [], [], []
        offset = 0
        for i, r in enumerate(retrievals):
            if r is None:
                questions.append(torch.zeros(self.in_channels))
                continue
            n, m = r.num_nodes, r.num_edges
            xs.append(r.node_embeddings)
            attrs.append(r.edge_embeddings)
            edges.append(r.graph.edges.t() + offset)
            node_gates.append(torch.ones(n) if r.node_gates is None else r.node_gates.float().cpu())
            edge_gates.append(torch.ones(m) if r.edge_gates is None else r.edge_gates.float().cpu())
            batch.append(torch.full((n,), i, dtype=torch.long))
            q = r.question_embedding
            questions.append(torch.zeros(self.in_channels) if q is None else q.float().cpu())
            offset += n

        def cat(parts: list[Tensor], empty: Tensor) -> Tensor:
            return torch.cat([t.to(device) for t in parts]) if parts else empty.to(device)

        d = self.in_channels
        x = cat([t.float() for t in xs], torch.zeros(0, d))
        edge_attr = cat([t.float() for t in attrs], torch.zeros(0, d))
        edge_index = (torch.cat(edges, dim=1) if edges else torch.zeros(2, 0, dtype=torch.long))
        has_gates = any(r is not None and (r.node_gates is not None or r.edge_gates is not None)
                        for r in retrievals)
        return self(x, edge_index.to(device), edge_attr,
                    batch=cat(batch, torch.zeros(0, dtype=torch.long)),
                    question=torch.stack(questions).to(device),
                    node_gate=cat(node_gates, torch.zeros(0)) if has_gates else None,
                    edge_gate=cat(edge_gates, torch.zeros(0)) if has_gates else None,
                    num_graphs=len(retrievals))


# ---------------------------------------------------------------------------- helpers
def _check_dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise DTypeError(f"dtype must be a torch.dtype or its name (e.g. 'bfloat16'), got {dtype!r}")


def _load_lm(path: str | os.PathLike, dtype: torch.dtype | None) -> PreTrainedModel:
    folder = Path(path)
    hint = (f"download one first, e.g. `huggingface-cli download Qwen/Qwen2.5-0.5B-Instruct "
            f"--local-dir {folder}` (or `hf download ...`), or pass a transformers "
            f"PreTrainedModel and its tokenizer")
    if not folder.is_dir():
        raise DataNotFoundError(f"no language model folder at {str(folder)!r}; {hint}")
    if not (folder / "config.json").is_file():
        raise DataNotFoundError(f"{str(folder)!r} has no config.json, so it is not a Hugging "
                                f"Face model folder; {hint}")
    import transformers
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"local_files_only": True}
    if dtype is not None:
        major, minor = (int(v) for v in transformers.__version__.split(".")[:2])
        kwargs["dtype" if (major, minor) >= (4, 56) else "torch_dtype"] = dtype
    try:
        return AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"cannot load a causal language model from {str(folder)!r}: "
                              f"{exc}") from exc


def _load_tokenizer(path: str | os.PathLike) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    folder = Path(path)
    if not folder.is_dir():
        raise DataNotFoundError(f"no tokenizer folder at {str(folder)!r}; pass the model "
                                f"folder or a transformers tokenizer")
    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"cannot load a tokenizer from {str(folder)!r}: {exc}") from exc


def _lora_config(lora: Any) -> Any:
    from peft import LoraConfig

    if isinstance(lora, LoraConfig):
        return lora
    if lora is True:
        kwargs: dict[str, Any] = {}
    elif isinstance(lora, dict):
        kwargs = dict(lora)
    else:
        raise DTypeError(f"lora must be a bool, a dict of peft.LoraConfig arguments or a "
                         f"LoraConfig, got {type(lora).__name__}")
    kwargs.setdefault("r", 8)
    kwargs.setdefault("lora_alpha", 2 * kwargs["r"])
    kwargs.setdefault("lora_dropout", 0.0)
    kwargs.setdefault("task_type", "CAUSAL_LM")
    try:
        return LoraConfig(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"invalid lora settings {lora!r}: {exc}; pass arguments of "
                                   f"peft.LoraConfig, e.g. lora={{'r': 8, 'target_modules': "
                                   f"['q_proj', 'v_proj']}}") from exc


def _wrap_lora(lm: nn.Module, config: Any) -> nn.Module:
    from peft import get_peft_model

    try:
        with warnings.catch_warnings():  # peft still calls a transformers 5 deprecated name
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*",
                                    category=FutureWarning)
            return get_peft_model(lm, config)
    except ValueError as exc:
        model_type = getattr(getattr(lm, "config", None), "model_type", type(lm).__name__)
        raise InvalidArgumentError(f"peft cannot adapt this {model_type} model with LoRA "
                                   f"({exc}); name the layers, e.g. lora={{'target_modules': "
                                   f"['q_proj', 'v_proj']}} (see print(model) for the names)"
                                   ) from exc


def _as_example(example: Any, i: int) -> tuple[str, Retrieval | None, str]:
    if isinstance(example, (tuple, list)):
        if len(example) != 3:
            raise InvalidArgumentError(f"examples[{i}] has {len(example)} items; pass "
                                       f"(question, retrieval, answer) triples")
        question, retrieval, answer = example
    elif hasattr(example, "question") and hasattr(example, "retrieval"):
        question, retrieval = example.question, example.retrieval
        answer = getattr(example, "answer", None)
        if answer is None:
            answers = getattr(example, "answers", None)
            answer = answers[0] if answers else None
    else:
        raise DTypeError(f"examples[{i}] is a {type(example).__name__}; pass (question, "
                         f"retrieval, answer) triples or objects with question, retrieval and "
                         f"answer (or answers) attributes")
    if not isinstance(answer, str) or not answer.strip():
        raise InvalidArgumentError(f"examples[{i}] has no answer text (got {answer!r}); every "
                                   f"training example needs a non-empty answer")
    return question, retrieval, answer


# ---------------------------------------------------------------------------- generator
class SoftPromptGenerator(BaseGenerator):
    r"""A :class:`~graphlearn.kg.grag.Generator` from a Hugging Face causal LM that reads the
    subgraph as graph soft-prompt tokens (:class:`GraphPromptEncoder`) and as GRAG's text
    description (GRAG, Hu et al., 2024, `arXiv:2405.16506
    <https://arxiv.org/abs/2405.16506>`_).

    The LM's input is the embedding sequence ``[BOS] [p_1 .. p_T] [prompt tokens]`` (the BOS
    only where the tokenizer adds one), with the prompt from
    :func:`~graphlearn.kg.grag.build_prompt`. Decoding is greedy, with a key-value cache,
    and stops at the end-of-sequence token or after ``max_new_tokens``.

    The LM is frozen (``requires_grad=False``), or with ``lora`` wrapped by ``peft`` so that
    only its low-rank adapters train; either way :meth:`fit` trains the graph encoder and
    projector. Both changes are made **in place** on a model passed in.

    Every model call (and tokenizer call) holds a re-entrant lock, so the generator may be
    shared by threads; :meth:`stream` takes the lock once per token, so concurrent streams
    interleave and an abandoned stream blocks no one.
    Do not :meth:`fit` while serving: answers in flight would mix old and new weights.

    Args:
        model (str, PathLike or PreTrainedModel): A local model folder (loaded with
            ``AutoModelForCausalLM.from_pretrained(path, local_files_only=True)``; nothing is
            downloaded) or a built causal LM.
        tokenizer (PreTrainedTokenizerBase, str or PathLike, optional): The tokenizer or its
            folder (default: the model folder; required with a model object).
        in_channels (int): Text-embedding size of the retrievals (the index's ``dim``).
        hidden_channels (int): GNN width. (default: :obj:`256`)
        num_layers (int): GATv2 layers. (default: :obj:`2`)
        heads (int): Attention heads per GNN layer. (default: :obj:`4`)
        num_prompt_tokens (int): Soft-prompt tokens per subgraph. (default: :obj:`1`)
        projector_channels (int, optional): Projector hidden width (default: the LM's hidden
            size).
        use_question (bool): Feed the question embedding to the projector too. (default:
            :obj:`True`)
        bidirectional (bool): GNN messages along both directions of each edge. (default:
            :obj:`True`)
        dropout (float): Dropout in the graph encoder. (default: :obj:`0.0`)
        lora (bool, dict or peft.LoraConfig): Adapt the LM with LoRA: ``True`` (rank 8,
            alpha 16, on the layers peft knows for the architecture, e.g. ``q_proj`` and
            ``v_proj`` for Llama), a dict of ``LoraConfig`` arguments, or a config.
            (default: :obj:`False`, the LM frozen)
        template (str): Prompt template with ``{description}`` and ``{question}``.
            (default: :data:`~graphlearn.kg.grag.DEFAULT_TEMPLATE`)
        max_new_tokens (int): Default answer length limit. (default: :obj:`64`)
        device (str or torch.device, optional): Where to run (default: the model's device).
        dtype (torch.dtype or str, optional): The LM's dtype (e.g. ``"bfloat16"``); the graph
            encoder stays ``float32`` and its output is cast. (default: unchanged)

    Raises:
        DataNotFoundError: ``model`` is a path without a model.
        InvalidArgumentError: A model object without a tokenizer, or bad settings.
        DTypeError: ``model`` is neither a path nor a causal LM.
    """

    def __init__(self, model: str | os.PathLike | PreTrainedModel,
                 tokenizer: PreTrainedTokenizerBase | str | os.PathLike | None = None, *,
                 in_channels: int, hidden_channels: int = 256, num_layers: int = 2,
                 heads: int = 4, num_prompt_tokens: int = 1,
                 projector_channels: int | None = None, use_question: bool = True,
                 bidirectional: bool = True, dropout: float = 0.0,
                 lora: bool | dict[str, Any] | Any = False,
                 template: str = DEFAULT_TEMPLATE, max_new_tokens: int = 64,
                 device: str | torch.device | None = None,
                 dtype: torch.dtype | str | None = None) -> None:
        dtype = _check_dtype(dtype)
        build_prompt("?", None, template)  # checks the template
        self.template = template
        self.max_new_tokens = _check_int(max_new_tokens, "max_new_tokens", 1)
        if isinstance(model, (str, os.PathLike)):
            self.model_path: str | None = os.path.abspath(model)
            lm = _load_lm(model, dtype)
            tokenizer = _load_tokenizer(model if tokenizer is None else tokenizer)
        elif isinstance(model, nn.Module):
            if not hasattr(model, "get_input_embeddings"):
                raise DTypeError(f"model must be a transformers causal LM (with "
                                 f"get_input_embeddings), got {type(model).__name__}")
            self.model_path = getattr(model, "name_or_path", None) or None
            lm = model if dtype is None else model.to(dtype)
            if tokenizer is None:
                raise InvalidArgumentError("a model object needs its tokenizer: pass "
                                           "SoftPromptGenerator(model, tokenizer, ...), e.g. "
                                           "AutoTokenizer.from_pretrained(<model folder>)")
            if isinstance(tokenizer, (str, os.PathLike)):
                tokenizer = _load_tokenizer(tokenizer)
        else:
            raise DTypeError(f"model must be a local model folder (str or PathLike) or a "
                             f"transformers PreTrainedModel, got {type(model).__name__}")
        if not callable(tokenizer) or not hasattr(tokenizer, "decode"):
            raise DTypeError(f"tokenizer must be a transformers tokenizer, got "
                             f"{type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        if device is not None:
            lm = lm.to(device)
        self.device = torch.device(device) if device is not None else next(lm.parameters()).device
        lm.requires_grad_(False)
        self._embed = lm.get_input_embeddings()
        hidden = self._embed.weight.size(1)
        self.encoder = GraphPromptEncoder(
            in_channels, hidden, hidden_channels=hidden_channels, num_layers=num_layers,
            heads=heads, num_prompt_tokens=num_prompt_tokens,
            projector_channels=projector_channels, use_question=use_question,
            bidirectional=bidirectional, dropout=dropout).to(self.device)
        self.lora = bool(lora)
        if lora:
            lm = _wrap_lora(lm, _lora_config(lora))
        self.lm = lm
        self.lm.eval()
        self.encoder.eval()
        self._lock = threading.RLock()
        base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
        params = inspect.signature(base.forward).parameters
        # only the last position's logits at inference (a prompt's full (L, vocab) logits
        # would dominate memory for a large vocabulary)
        self._last_only: dict[str, Any] = ({"logits_to_keep": 1} if "logits_to_keep" in params
                                           else {"num_logits_to_keep": 1}
                                           if "num_logits_to_keep" in params else {})

    # ------------------------------------------------------------------ properties
    @property
    def in_channels(self) -> int:
        return self.encoder.in_channels

    @property
    def num_prompt_tokens(self) -> int:
        return self.encoder.num_prompt_tokens

    @property
    def stop_token_ids(self) -> set[int]:
        """Token ids that end an answer: the tokenizer's EOS and the generation config's."""
        ids = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        config_eos = getattr(getattr(self.lm, "generation_config", None), "eos_token_id", None)
        if isinstance(config_eos, int):
            ids.add(config_eos)
        elif isinstance(config_eos, (list, tuple)):
            ids.update(int(t) for t in config_eos)
        return ids

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters :meth:`fit` trains: the graph encoder's and the LoRA adapters'."""
        return [p for p in self.encoder.parameters() if p.requires_grad] + [
            p for p in self.lm.parameters() if p.requires_grad]

    def __repr__(self) -> str:
        name = self.model_path or type(self.lm).__name__
        return (f"{type(self).__name__}({name!r}, in_channels={self.in_channels}, "
                f"num_prompt_tokens={self.num_prompt_tokens}, lora={self.lora})")

    # ------------------------------------------------------------------ inputs
    def _check_retrieval(self, retrieval: Retrieval | None) -> None:
        if retrieval is None:
            return
        if not isinstance(retrieval, Retrieval):
            raise DTypeError(f"retrieval must be a graphlearn.kg.grag.Retrieval or None, got "
                             f"{type(retrieval).__name__}")
        d = self.in_channels
        for name in ("node_embeddings", "edge_embeddings", "question_embedding"):
            t = getattr(retrieval, name)
            if t is not None and t.size(-1) != d:
                raise ShapeError(f"the retrieval's {name} have size {t.size(-1)}, but the "
                                 f"generator's graph encoder was built with in_channels={d}; "
                                 f"build the generator with in_channels={t.size(-1)} (the "
                                 f"index's dim) or retrieve with the matching index")

    def _prompt_ids(self, question: str, retrieval: Retrieval | None) -> tuple[list[int],
                                                                                 list[int]]:
        """The prompt's token ids, split after a leading BOS (where the soft tokens go)."""
        ids = list(self.tokenizer(build_prompt(question, retrieval, self.template))["input_ids"])
        bos = self.tokenizer.bos_token_id
        cut = 1 if ids and bos is not None and ids[0] == bos else 0
        return ids[:cut], ids[cut:]

    def _token_embeddings(self, ids: list[int]) -> Tensor:
        return self._embed(torch.tensor(ids, dtype=torch.long, device=self.device))

    def _batch(self, items: Sequence[tuple[str, Retrieval | None, str | None]]
               ) -> tuple[Tensor, Tensor, Tensor]:
        """``inputs_embeds (B, L, H)``, ``attention_mask (B, L)`` and ``labels (B, L)`` (-100
        outside the answers), right-padded."""
        soft = self.encoder.encode([r for _, r, _ in items]).to(self._embed.weight.dtype)
        eos = self.tokenizer.eos_token_id
        seqs, labels = [], []
        for (question, retrieval, answer), prompt in zip(items, soft, strict=True):
            head, tail = self._prompt_ids(question, retrieval)
            answer_ids: list[int] = []
            if answer is not None:
                answer_ids = list(self.tokenizer(answer, add_special_tokens=False)["input_ids"])
                if eos is not None:
                    answer_ids.append(int(eos))
            seqs.append(torch.cat([self._token_embeddings(head), prompt,
                                   self._token_embeddings(tail + answer_ids)]))
            ignored = len(head) + prompt.size(0) + len(tail)
            labels.append(torch.tensor([-100] * ignored + answer_ids, dtype=torch.long))
        length = max(s.size(0) for s in seqs)
        embeds = seqs[0].new_zeros(len(seqs), length, seqs[0].size(1))
        mask = torch.zeros(len(seqs), length, dtype=torch.long, device=self.device)
        target = torch.full((len(seqs), length), -100, dtype=torch.long, device=self.device)
        for i, (s, lab) in enumerate(zip(seqs, labels, strict=True)):
            embeds[i, :s.size(0)] = s
            mask[i, :s.size(0)] = 1
            target[i, :s.size(0)] = lab.to(self.device)
        return embeds, mask, target

    def _check_call(self, question: str, retrieval: Retrieval | None,
                    max_new_tokens: int | None) -> int:
        _check_question(question)
        self._check_retrieval(retrieval)
        if max_new_tokens is None:
            return self.max_new_tokens
        return _check_int(max_new_tokens, "max_new_tokens", 1)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def logits(self, question: str, retrieval: Retrieval | None) -> Tensor:
        """The LM's next-token logits ``(vocab_size,)`` (float32) right after the prompt."""
        self._check_call(question, retrieval, None)
        with self._lock:
            embeds, mask, _ = self._batch([(question, retrieval, None)])
            out = self.lm(inputs_embeds=embeds, attention_mask=mask, use_cache=False,
                          **self._last_only)
        return out.logits[0, -1].float()

    def _greedy(self, question: str, retrieval: Retrieval | None,
                max_new_tokens: int) -> Iterator[int]:
        """Greedy token ids, each computed under the lock; stops before a stop token."""
        stop = self.stop_token_ids
        with self._lock, torch.no_grad():
            embeds, mask, _ = self._batch([(question, retrieval, None)])
            out = self.lm(inputs_embeds=embeds, attention_mask=mask, use_cache=True,
                          **self._last_only)
        for step in range(max_new_tokens):
            token = int(out.logits[0, -1].argmax())
            if token in stop:
                return
            yield token
            if step == max_new_tokens - 1:
                return
            mask = torch.cat([mask, mask.new_ones(1, 1)], dim=1)
            with self._lock, torch.no_grad():
                out = self.lm(input_ids=torch.tensor([[token]], device=self.device),
                              attention_mask=mask, past_key_values=out.past_key_values,
                              use_cache=True, **self._last_only)

    def _decode(self, ids: list[int]) -> str:
        with self._lock:
            return self.tokenizer.decode(ids, skip_special_tokens=True,
                                         clean_up_tokenization_spaces=False)

    def generate(self, question: str, retrieval: Retrieval | None, *,
                 max_new_tokens: int | None = None) -> str:
        """The greedy answer (special tokens removed).

        Args:
            question (str): A non-empty question.
            retrieval (Retrieval, optional): The retrieved (pruned) subgraph; ``None`` gives
                an empty description and a graph vector of zeros.
            max_new_tokens (int, optional): Length limit (default: the generator's).

        Raises:
            InvalidArgumentError: ``question`` is blank or ``max_new_tokens < 1``.
            ShapeError: The retrieval's embedding size differs from ``in_channels``.
        """
        limit = self._check_call(question, retrieval, max_new_tokens)
        return self._decode(list(self._greedy(question, retrieval, limit)))

    def stream(self, question: str, retrieval: Retrieval | None, *,
               max_new_tokens: int | None = None) -> Iterator[str]:
        """The greedy answer in pieces, one per decoded token (a piece ending in an
        incomplete multi-byte character waits for the next token); ``"".join`` of the pieces
        equals :meth:`generate`'s text. Arguments as for :meth:`generate`."""
        limit = self._check_call(question, retrieval, max_new_tokens)
        return self._stream(question, retrieval, limit)

    def _stream(self, question: str, retrieval: Retrieval | None, limit: int) -> Iterator[str]:
        ids: list[int] = []
        sent = ""
        for token in self._greedy(question, retrieval, limit):
            ids.append(token)
            text = self._decode(ids)
            if text.endswith("\ufffd") or not text.startswith(sent):
                continue
            if len(text) > len(sent):
                yield text[len(sent):]
                sent = text
        text = self._decode(ids)
        if text.startswith(sent) and len(text) > len(sent):
            yield text[len(sent):]

    # ------------------------------------------------------------------ training
    def compute_loss(self, examples: Iterable[Any]) -> Tensor:
        """The teacher-forced cross-entropy (mean over answer tokens, each followed by EOS)
        of a batch, with gradients; the model's train/eval mode is left as it is.

        Args:
            examples: ``(question, retrieval, answer)`` triples, or objects with
                ``question``, ``retrieval`` and ``answer`` (or ``answers``, the first used).
        """
        items = [_as_example(ex, i) for i, ex in enumerate(examples)]
        if not items:
            raise InvalidArgumentError("no examples; pass (question, retrieval, answer) "
                                       "triples")
        for question, retrieval, _ in items:
            _check_question(question)
            self._check_retrieval(retrieval)
        with self._lock:
            embeds, mask, labels = self._batch(items)
            logits = self.lm(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits
        target = labels[:, 1:]
        scored = target != -100  # only the answer positions, before the float cast
        return F.cross_entropy(logits[:, :-1][scored].float(), target[scored])

    @torch.no_grad()
    def loss(self, examples: Iterable[Any], *, batch_size: int = 8) -> float:
        """Mean (over batches) of :meth:`compute_loss` in eval mode."""
        items = list(examples)
        batch_size = _check_int(batch_size, "batch_size", 1)
        if not items:
            raise InvalidArgumentError("no examples; pass (question, retrieval, answer) "
                                       "triples")
        losses = [float(self.compute_loss(items[s:s + batch_size]))
                  for s in range(0, len(items), batch_size)]
        return sum(losses) / len(losses)

    def fit(self, examples: Iterable[Any], *, epochs: int = 1, lr: float = 1e-4,
            weight_decay: float = 0.0, batch_size: int = 4, max_grad_norm: float | None = 1.0,
            seed: int | None = 0, progress: bool | None = None) -> list[float]:
        """Train the graph encoder, projector and LoRA adapters with teacher forcing (AdamW):
        the loss is the LM's cross-entropy on the answer tokens and the EOS after them, the
        prompt and soft tokens masked out.

        Args:
            examples: ``(question, retrieval, answer)`` triples, or objects with
                ``question``, ``retrieval`` and ``answer`` (or ``answers``).
            epochs (int): Passes over the examples. (default: :obj:`1`)
            lr (float): Learning rate. (default: :obj:`1e-4`)
            weight_decay (float): AdamW weight decay. (default: :obj:`0.0`)
            batch_size (int): Examples per step. (default: :obj:`4`)
            max_grad_norm (float, optional): Gradient-norm clipping (``None``: off).
                (default: :obj:`1.0`)
            seed (int, optional): Seeds the shuffling. (default: :obj:`0`)
            progress (bool, optional): ``tqdm`` bar over epochs (``None``: for more than 20).

        Returns:
            list[float]: the mean training loss of each epoch.
        """
        items = list(examples)
        if not items:
            raise InvalidArgumentError("no training examples; pass (question, retrieval, "
                                       "answer) triples")
        for i, ex in enumerate(items):  # fail before training, not in the middle
            question, retrieval, _ = _as_example(ex, i)
            _check_question(question)
            self._check_retrieval(retrieval)
        epochs = _check_int(epochs, "epochs", 1)
        batch_size = _check_int(batch_size, "batch_size", 1)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0:
            raise InvalidArgumentError(f"lr must be a positive float, got {lr!r}")
        if max_grad_norm is not None and (isinstance(max_grad_norm, bool) or not isinstance(
                max_grad_norm, (int, float)) or max_grad_norm <= 0):
            raise InvalidArgumentError(f"max_grad_norm must be a positive float or None, got "
                                       f"{max_grad_norm!r}")
        generator = torch.Generator()
        generator.manual_seed(seed if seed is not None else int(torch.seed() % (2 ** 63)))
        params = self.trainable_parameters()
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        epoch_iter: Iterable[int] = range(epochs)
        if progress or (progress is None and epochs > 20):
            from tqdm.auto import tqdm

            epoch_iter = tqdm(epoch_iter, desc="training SoftPromptGenerator", unit="epoch",
                              leave=False)
        history = []
        with self._lock:
            self.encoder.train()
            self.lm.train(self.lora)
            try:
                for _ in epoch_iter:
                    order = torch.randperm(len(items), generator=generator).tolist()
                    total, steps = 0.0, 0
                    for start in range(0, len(order), batch_size):
                        loss = self.compute_loss([items[i]
                                                  for i in order[start:start + batch_size]])
                        optimizer.zero_grad()
                        loss.backward()
                        if max_grad_norm is not None:
                            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                        optimizer.step()
                        total += float(loss.detach())
                        steps += 1
                    history.append(total / steps)
            finally:
                self.encoder.eval()
                self.lm.eval()
        return history

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the trained parts to the folder ``path`` (created; files overwritten).

        Files: ``generator.json`` (format, encoder settings, template, limits, the base
        model's name or path and hidden size), ``graph_encoder.safetensors`` and, with LoRA,
        ``adapter/`` (peft's ``adapter_config.json`` and ``adapter_model.safetensors``). The
        LM itself is not copied; nothing is pickled.

        Returns:
            Path: the folder.
        """
        from safetensors.torch import save_file

        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise InvalidArgumentError(f"{str(folder)!r} is a file; save a "
                                       f"SoftPromptGenerator to a folder")
        folder.mkdir(parents=True, exist_ok=True)
        config_path = folder / _CONFIG
        if config_path.exists():
            config_path.unlink()  # a crash below leaves no stale config behind
        with self._lock:
            state = {k: v.detach().cpu().contiguous().clone()
                     for k, v in self.encoder.state_dict().items()}
            save_file(state, str(folder / _ENCODER))
            if self.lora:
                self.lm.save_pretrained(str(folder / _ADAPTER), safe_serialization=True)
        config = {"format": FORMAT, "format_version": FORMAT_VERSION,
                  "encoder": self.encoder.config(), "template": self.template,
                  "max_new_tokens": self.max_new_tokens, "lora": self.lora,
                  "base_model": self.model_path,
                  "lm_hidden_size": self.encoder.out_channels,
                  "vocab_size": int(self._embed.weight.size(0))}
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike, model: str | os.PathLike | PreTrainedModel | None = None,
             tokenizer: PreTrainedTokenizerBase | str | os.PathLike | None = None, *,
             device: str | torch.device | None = None,
             dtype: torch.dtype | str | None = None) -> SoftPromptGenerator:
        """Read a generator written by :meth:`save`.

        Args:
            path: The folder.
            model: The base LM (a folder or a *fresh* model object: with LoRA, peft adds the
                adapters to it in place). Default: the saved ``base_model`` folder.
            tokenizer: As for the constructor.
            device, dtype: As for the constructor.

        Raises:
            DataNotFoundError: The folder or one of its files is missing, or no model is given
                and the saved base model folder does not exist.
            DataFormatError: A file is corrupt or not a generator's.
            ShapeError: ``model``'s hidden size differs from the saved one.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(path)
        config_path = folder / _CONFIG
        config = read_manifest(config_path, format=FORMAT, versions=(FORMAT_VERSION,),
                               what="SoftPromptGenerator",
                               fix="write one with SoftPromptGenerator.save(path)")
        if model is None:
            model = config.get("base_model")
            if not model:
                raise InvalidArgumentError(f"{config_path} names no base model folder; pass "
                                           f"SoftPromptGenerator.load(path, model=...)")
        for name in [_ENCODER] + ([f"{_ADAPTER}/{_ADAPTER_WEIGHTS}"] if config["lora"] else []):
            if not (folder / name).is_file():
                raise DataNotFoundError(f"SoftPromptGenerator folder {str(folder)!r} lacks "
                                        f"{name}; save the generator again")
        enc = dict(config["encoder"])
        out_channels = enc.pop("out_channels")
        gen = cls(model, tokenizer, template=config["template"],
                  max_new_tokens=config["max_new_tokens"], device=device, dtype=dtype,
                  lora=False, **enc)
        if gen.encoder.out_channels != out_channels:
            raise ShapeError(f"the saved generator was trained for an LM of hidden size "
                             f"{out_channels}, but the given model's is "
                             f"{gen.encoder.out_channels}; load it with the same base model "
                             f"({config.get('base_model')!r})")
        try:
            state = load_file(str(folder / _ENCODER))
            adapter = (load_file(str(folder / _ADAPTER / _ADAPTER_WEIGHTS))
                       if config["lora"] else None)
        except (SafetensorError, OSError) as exc:
            raise DataFormatError(f"a weights file in {str(folder)!r} is corrupt ({exc}); save "
                                  f"the generator again") from exc
        try:
            gen.encoder.load_state_dict(state)
        except RuntimeError as exc:
            raise DataFormatError(f"{folder / _ENCODER} does not match {_CONFIG} ({exc})"
                                  ) from exc
        if adapter is not None:
            from peft import LoraConfig, set_peft_model_state_dict

            lora_config = LoraConfig.from_pretrained(str(folder / _ADAPTER))
            lora_config.inference_mode = False
            gen.lm = _wrap_lora(gen.lm, lora_config)
            result = set_peft_model_state_dict(gen.lm, adapter)
            unexpected = getattr(result, "unexpected_keys", [])
            if unexpected:
                raise DataFormatError(f"{folder / _ADAPTER} does not fit the model (unexpected "
                                      f"keys {unexpected[:3]}); load it with the same base model")
            gen.lora = True
            gen.lm.eval()
        return gen

