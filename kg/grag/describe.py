r"""GRAG's hierarchical text description of a :class:`TextGraph`, and its exact inverse.

GRAG (Hu et al., 2024, `arXiv:2405.16506 <https://arxiv.org/abs/2405.16506>`_) hands the
LLM a retrieved subgraph as a *hierarchical description*: a breadth-first forest grown from
the most relevant nodes, printed as an indented tree so that the topology is visible in the
text, followed by the edges the tree does not cover. :func:`describe` writes it and
:func:`parse_description` reads it back; the round trip is lossless for every graph:

``parse_description(describe(g)).triples()`` equals ``g.triples()`` as a multiset of
``(head, relation, tail)`` texts, and the node texts are the same set (isolated nodes, parallel
edges and self-loops included), whatever the texts hold. Node ids and edge order are not kept
(the parsed graph numbers nodes in order of first mention).

Example: for ``alice -knows-> bob``, ``bob -lives in-> paris``, ``carol -parent of-> alice``,
``alice -likes-> paris`` and a node ``dave`` without edges, ``describe(g, roots=[bob])`` is::

    # Graph: 5 nodes, 4 edges.
    # Tree (breadth-first from the most relevant nodes; an indented "-> r -> x" line means the node above has relation r to x, "<- r <- x" means x has relation r to the node above):
    bob
      <- knows <- alice
        <- parent of <- carol
      -> lives in -> paris
    # Other edges ("h -> r -> t" means h has relation r to t):
    alice -> likes -> paris
    # Isolated nodes:
    dave

``alice -knows-> bob`` is a tree edge that breadth-first search from ``bob`` followed against
its direction, so its line starts with ``<-``; ``alice -likes-> paris`` joins two nodes already
in the tree, so it is listed among the other edges.

Grammar
-------
A description is lines separated by ``"\n"`` (a trailing ``"\r"`` is ignored)::

    line    := comment | blank | node | child | edge
    comment := "#" anything                        ignored by the parser
    blank   := ""                                  ignored
    node    := FIELD                               at column 0: declares a node and starts a tree
    child   := INDENT "-> " FIELD " -> " FIELD     parent -relation-> child
             | INDENT "<- " FIELD " <- " FIELD     child -relation-> parent
    edge    := FIELD " -> " FIELD " -> " FIELD     at column 0: head -relation-> tail
    INDENT  := "  " repeated depth times (depth >= 1); the parent is the node of the
               nearest line above at depth - 1 in the same tree (a node line is depth 0;
               an edge line ends the tree)
    FIELD   := BARE | QUOTED

A text is written BARE (as it is, no escaping at all: backslashes, quotes, brackets and
unicode stay readable) unless one of these holds, in which case it is QUOTED:

- it is empty, or starts or ends with whitespace (``str.isspace``);
- it starts with ``"`` (a quoted field) or ``#`` (a comment);
- it contains ``->`` or ``<-`` (the arrows);
- it contains a control character (Unicode category Cc: newline, tab, ...), a line or
  paragraph separator (Zl, Zp) or a lone surrogate (Cs).

``QUOTED := '"' (CHAR | ESCAPE)* '"'`` with the escapes ``\\`` ``\"`` ``\n`` ``\t`` ``\r``
and ``\uXXXX`` (four hex digits, one code point, used for the other Cc/Cs/Zl/Zp
characters); any other character stands for itself.

Why this is unambiguous: a BARE text holds no arrow and no surrounding space, so the first
``" -> "`` (or ``" <- "``) after a BARE field is the separator; a QUOTED field ends at its
first unescaped ``"``; no text ever holds a raw line break, so every line is one record;
and indentation is counted in spaces, which no field starts with.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from collections.abc import Sequence

import torch
from torch import Tensor

from graphlearn.errors import DataFormatError, DTypeError, IndexOutOfRangeError

from .textgraph import TextGraph

__all__ = ["describe", "parse_description", "format_text"]

_INDENT = "  "
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNESCAPE = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}

_TREE_HEADER = ('# Tree (breadth-first from the most relevant nodes; an indented "-> r -> x" '
                'line means the node above has relation r to x, "<- r <- x" means x has '
                'relation r to the node above):')
_EDGES_HEADER = '# Other edges ("h -> r -> t" means h has relation r to t):'
_ISOLATED_HEADER = "# Isolated nodes:"
_QUOTE_HEADER = ('# Texts in double quotes are escaped: \\n newline, \\t tab, \\" quote, '
                 '\\\\ backslash, \\uXXXX other control characters.')


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def _is_bare(text: str) -> bool:
    """Whether ``text`` can be written as it is (see the module grammar)."""
    return (text != "" and not text[0].isspace() and not text[-1].isspace()
            and text[0] not in '"#' and "->" not in text and "<-" not in text
            # printable ASCII has no unsafe character: skip the per-character lookup
            and ((text.isascii() and text.isprintable())
                 or not any(_unsafe(ch) for ch in text)))


def format_text(text: str) -> str:
    """``text`` as a description field: as it is when that is unambiguous, else quoted."""
    if _is_bare(text):
        return text
    out = ['"']
    for ch in text:
        esc = _SHORT_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif _unsafe(ch):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _priority(graph: TextGraph, roots, degree: Tensor) -> list[int]:
    order: list[int] = []
    seen: set[int] = set()
    if roots is not None:
        ids = torch.as_tensor(roots if not isinstance(roots, int) else [roots])
        if ids.numel() == 0:  # [] is a float tensor
            ids = ids.long()
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise DTypeError(f"roots must be integer node ids in priority order, got {ids.dtype}")
        for i in ids.view(-1).tolist():
            if not 0 <= i < graph.num_nodes:
                raise IndexOutOfRangeError(f"roots holds node id {i} outside "
                                           f"[0, {graph.num_nodes})")
            if i not in seen:
                seen.add(i)
                order.append(i)
    # the rest by descending degree, ties by id (a stable sort keeps ids ascending)
    rest = torch.argsort(-degree, stable=True).tolist()
    order.extend(i for i in rest if i not in seen)
    return order


def describe(graph: TextGraph, roots: Sequence[int] | Tensor | None = None, *,
             comments: bool = True) -> str:
    """GRAG's hierarchical description of ``graph`` (grammar in the module docstring).

    A breadth-first forest is grown from the nodes in priority order: ``roots`` first (node
    ids, most relevant first), then every other node by descending degree (ties by id), so
    that every node with an edge lies in some tree. Breadth-first search follows edges in
    both directions (in edge-id order); a tree edge followed against its direction is
    printed with ``<-``. Each tree is printed depth-first with two spaces of indentation
    per level, then the edges no tree uses (parallel edges and self-loops among them) in
    edge-id order, then the isolated nodes in priority order.

    Args:
        graph (TextGraph): The graph.
        roots (sequence of int or Tensor, optional): Node ids in priority order
            (e.g. by retrieval score). (default: by degree)
        comments (bool): Write the ``#`` header lines that explain the notation to a reader
            (:func:`parse_description` ignores them). (default: :obj:`True`)

    Returns:
        str: The description (no trailing newline). An empty graph gives only the header
        (``""`` without comments).
    """
    if not isinstance(graph, TextGraph):
        raise DTypeError(f"describe() takes a TextGraph, got {type(graph).__name__}")
    n, num_edges = graph.num_nodes, graph.num_edges
    degree_t = graph.degree()
    order = _priority(graph, roots, degree_t)
    degree = degree_t.tolist()
    edges = graph.edges.tolist()
    adjacency: list[list[tuple[int, int, bool]]] = [[] for _ in range(n)]
    for e, (h, t) in enumerate(edges):
        if h != t:  # a self-loop never joins a tree
            adjacency[h].append((e, t, True))
            adjacency[t].append((e, h, False))

    visited = [False] * n
    in_tree = [False] * num_edges
    children: list[list[tuple[int, int, bool]]] = [[] for _ in range(n)]
    trees: list[int] = []
    for root in order:
        if visited[root] or degree[root] == 0:
            continue
        visited[root] = True
        trees.append(root)
        queue = deque([root])
        while queue:
            u = queue.popleft()
            for e, v, forward in adjacency[u]:
                if not visited[v]:
                    visited[v] = True
                    in_tree[e] = True
                    children[u].append((e, v, forward))
                    queue.append(v)

    texts, rels = graph.node_text, graph.edge_text
    formatted: dict[str, str] = {}

    def fmt(text: str) -> str:  # a text recurs on every edge it is in: format it once
        out = formatted.get(text)
        if out is None:
            out = formatted[text] = format_text(text)
        return out

    tree_lines: list[str] = []
    for root in trees:
        tree_lines.append(fmt(texts[root]))
        stack = [(v, 1, e, fwd) for e, v, fwd in reversed(children[root])]
        while stack:
            v, depth, e, forward = stack.pop()
            arrow = "->" if forward else "<-"
            tree_lines.append(f"{_INDENT * depth}{arrow} {fmt(rels[e])} {arrow} {fmt(texts[v])}")
            stack.extend((w, depth + 1, f, fw) for f, w, fw in reversed(children[v]))
    edge_lines = [f"{fmt(texts[h])} -> {fmt(rels[e])} -> {fmt(texts[t])}"
                  for e, (h, t) in enumerate(edges) if not in_tree[e]]
    isolated_lines = [fmt(texts[i]) for i in order if degree[i] == 0]

    lines: list[str] = []
    if comments:
        lines.append(f"# Graph: {n} node{'s' * (n != 1)}, "
                     f"{num_edges} edge{'s' * (num_edges != 1)}.")
        if any(fmt(t) != t for t in texts) or any(fmt(r) != r for r in rels):
            lines.append(_QUOTE_HEADER)
    for header, body in ((_TREE_HEADER, tree_lines), (_EDGES_HEADER, edge_lines),
                         (_ISOLATED_HEADER, isolated_lines)):
        if body:
            if comments:
                lines.append(header)
            lines.extend(body)
    return "\n".join(lines)


# ---------------------------------------------------------------------------- parsing
class _Line:
    """A cursor over one description line, for error messages with line and column."""

    def __init__(self, text: str, lineno: int) -> None:
        self.text = text
        self.lineno = lineno
        self.pos = 0

    def error(self, why: str, pos: int | None = None) -> DataFormatError:
        pos = self.pos if pos is None else pos
        return DataFormatError(f"description line {self.lineno}, column {pos + 1}: {why}; "
                               f"line: {self.text[:120]!r}")

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def expect(self, token: str) -> None:
        if not self.text.startswith(token, self.pos):
            found = self.text[self.pos:self.pos + len(token)]
            raise self.error(f"expected {token!r}, found {found!r}" if found else
                             f"expected {token!r}, found the end of the line")
        self.pos += len(token)

    def field(self, separator: str | None) -> str:
        """Read a field that ends at ``separator`` (``None``: at the end of the line)."""
        if self.text.startswith('"', self.pos):
            return self._quoted()
        start = self.pos
        if separator is None:
            end = len(self.text)
        else:
            end = self.text.find(separator, start)
            if end < 0:
                raise self.error(f"expected {separator!r} after this text")
        text = self.text[start:end]
        if not _is_bare(text):
            raise self.error(f"{text!r} must be written in double quotes (it is empty, has "
                             f"surrounding space, starts with '#' or '\"', or holds an arrow "
                             f"or a control character)", start)
        self.pos = end
        return text

    def _quoted(self) -> str:
        start = self.pos
        text, i, out = self.text, self.pos + 1, []
        while i < len(text):
            ch = text[i]
            if ch == '"':
                self.pos = i + 1
                return "".join(out)
            if ch == "\\":
                nxt = text[i + 1:i + 2]
                if nxt in _UNESCAPE and nxt:
                    out.append(_UNESCAPE[nxt])
                    i += 2
                    continue
                if nxt == "u":
                    digits = text[i + 2:i + 6]
                    if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
                        out.append(chr(int(digits, 16)))
                        i += 6
                        continue
                    raise self.error("\\u must be followed by four hex digits", i)
                raise self.error(f"unknown escape {text[i:i + 2]!r} (use \\\\ for a backslash)", i)
            out.append(ch)
            i += 1
        raise self.error("this quoted text is never closed (a quoted text cannot span lines)",
                         start)


def parse_description(text: str) -> TextGraph:
    """Read a description written by :func:`describe` back into a :class:`TextGraph`.

    Nodes are numbered in order of first mention and edges follow the order of their lines
    (tree edges, then the other edges). Comment (``#``) and blank lines are skipped.

    Raises:
        DTypeError: ``text`` is not a str.
        DataFormatError: A line breaks the grammar of the module docstring; the message names
            the line, the column and what was expected.
    """
    if not isinstance(text, str):
        raise DTypeError(f"parse_description() takes a str, got {type(text).__name__}")
    nodes: dict[str, None] = {}  # every node text, in order of first appearance
    triples: list[tuple[str, str, str]] = []

    def node(t: str) -> str:
        nodes.setdefault(t)
        return t

    stack: list[str] = []  # stack[d]: the node at depth d of the current tree
    for lineno, raw in enumerate(text.split("\n"), 1):
        if raw.endswith("\r"):
            raw = raw[:-1]
        if not raw or raw.startswith("#"):
            continue
        line = _Line(raw, lineno)
        spaces = len(raw) - len(raw.lstrip(" "))
        if spaces:
            if spaces % len(_INDENT):
                raise line.error(f"indentation of {spaces} spaces is not a multiple of "
                                 f"{len(_INDENT)}")
            depth = spaces // len(_INDENT)
            if depth > len(stack):
                raise line.error(f"a line at depth {depth} needs a parent line at depth "
                                 f"{depth - 1} above it" if stack else
                                 "an indented line needs a node line (column 0) above it")
            line.pos = spaces
            arrow = raw[spaces:spaces + 2]
            if arrow not in ("->", "<-"):
                raise line.error("an indented line starts with '-> ' or '<- '")
            line.expect(arrow + " ")
            relation = line.field(f" {arrow} ")
            line.expect(f" {arrow} ")
            child = node(line.field(None))
            parent = stack[depth - 1]
            triples.append((parent, relation, child) if arrow == "->" else
                           (child, relation, parent))
            del stack[depth:]
            stack.append(child)
            continue
        # column 0: a node line or an edge line
        first_quoted = raw.startswith('"')
        if not first_quoted and " -> " not in raw:
            stack = [node(line.field(None))]
            continue
        head = node(line.field(" -> "))
        if line.at_end():  # a quoted node text alone on its line
            stack = [head]
            continue
        line.expect(" -> ")
        relation = line.field(" -> ")
        line.expect(" -> ")
        triples.append((head, relation, node(line.field(None))))
        stack = []  # an edge line ends the tree: no indented line may follow it
    return TextGraph.from_triples(triples, nodes=list(nodes))
