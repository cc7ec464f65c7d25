"""`graphlearn.kg.grag.describe` / `parse_description`: the lossless hierarchical description."""

from collections import Counter

import pytest
import torch
from graphlearn.kg.grag import TextGraph, describe, format_text, parse_description
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphlearn.errors import DataFormatError, DTypeError, IndexOutOfRangeError

# texts that look like the description's own syntax or break naive line formats
ADVERSARIAL = [
    "", " ", "  lead", "trail ", "\n", "a\nb", "\t", "tab\tin", "\r", "\r\n", "->", "<-",
    "a -> b", "a <- b", " -> ", "-> x -> y", "<- r <- x", "  -> knows -> bob", "#", "# Other edges",
    '"', '"quoted"', 'say "hi"', "\\", "\\n", '\\"', "\\u0041", "\\u12", "[", "]", "(a; b; c)",
    "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x00", "\x7f", "\ud800", "\udfff",
    "\ud83d\ude00", "😀", "日本語", "\u00a0nbsp", "nbsp\u00a0", "\u3000", "\ufeff", "-", "<", ">",
    "- >", "< -", "a->", "->b", "a-", "-a", "'single'", "x -", "- x", "a - > b", "alice",
]
texts = st.one_of(
    st.sampled_from(ADVERSARIAL),
    st.text(max_size=8),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=6),  # surrogates too
    st.text(alphabet=' ->"<#\\\n\r\tab', max_size=8),
)
relations = st.one_of(st.sampled_from(["r", "knows", "r2"]), texts)


@st.composite
def text_graphs(draw):
    nodes = draw(st.lists(texts, unique=True, max_size=9))
    edges = []
    if nodes:
        n = len(nodes)
        edges = draw(st.lists(st.tuples(st.integers(0, n - 1), relations, st.integers(0, n - 1)),
                              max_size=16))
        if edges and draw(st.booleans()):  # duplicate some edges: parallel multi-edges
            edges += draw(st.lists(st.sampled_from(edges), max_size=4))
    g = TextGraph(nodes, torch.tensor([(h, t) for h, _, t in edges], dtype=torch.long).reshape(-1, 2),
                  [r for _, r, _ in edges])
    roots = None
    if nodes and draw(st.booleans()):
        roots = draw(st.lists(st.integers(0, len(nodes) - 1), max_size=4))
    return g, roots


def _assert_same(g: TextGraph, back: TextGraph) -> None:
    assert Counter(back.triples()) == Counter(g.triples())
    assert set(back.node_text) == set(g.node_text)
    assert back.num_nodes == g.num_nodes


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_graphs(), st.booleans())
def test_round_trip_is_lossless(graph_and_roots, comments):
    g, roots = graph_and_roots
    text = describe(g, roots, comments=comments)
    _assert_same(g, parse_description(text))
    # one record per line for every line splitter, and always encodable
    assert len(text.splitlines()) == len(text.split("\n")) or text == ""
    text.encode("utf-8")
    # CRLF line ends (a file written on Windows) read back the same
    _assert_same(g, parse_description(text.replace("\n", "\r\n")))


@settings(max_examples=200, deadline=None)
@given(texts)
def test_format_text_round_trips_alone(t):
    g = TextGraph([t])
    assert parse_description(describe(g)).node_text == [t]
    assert format_text(t) == t or format_text(t).startswith('"')


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_every_adversarial_text_in_every_position(text):
    other = "x" if text != "x" else "y"
    g = TextGraph.from_triples([(text, text, other), (other, text, text), (text, "r", text),
                                (text, text, other)], nodes=[text + "!", "iso" + text])
    for roots in (None, [g.node_id(other)], [g.node_id(text)]):
        _assert_same(g, parse_description(describe(g, roots)))


def test_example_layout_and_direction():
    g = TextGraph.from_triples([("alice", "knows", "bob"), ("bob", "lives in", "paris"),
                                ("carol", "parent of", "alice"), ("alice", "likes", "paris")],
                               nodes=["dave"])
    text = describe(g, roots=[g.node_id("bob")], comments=False)
    assert text == ("bob\n"
                    "  <- knows <- alice\n"
                    "    <- parent of <- carol\n"
                    "  -> lives in -> paris\n"
                    "alice -> likes -> paris\n"
                    "dave")
    back = parse_description(text)
    assert Counter(back.triples()) == Counter(g.triples())  # direction kept both ways
    full = describe(g, roots=[g.node_id("bob")])
    assert full.startswith("# Graph: 5 nodes, 4 edges.\n# Tree")
    assert "# Other edges" in full and "# Isolated nodes:\ndave" in full
    body = [line for line in full.split("\n") if not line.startswith("#")]
    assert body == text.split("\n")  # comments are whole lines of their own
    assert not any('"' in line for line in body)  # ordinary text is never quoted


def test_default_roots_are_highest_degree_first():
    g = TextGraph.from_triples([("a", "r", "hub"), ("b", "r", "hub"), ("hub", "r", "c"), ("x", "s", "y")])
    lines = describe(g, comments=False).split("\n")
    assert lines[0] == "hub" and lines[1:4] == ["  <- r <- a", "  <- r <- b", "  -> r -> c"]
    assert lines[4:] == ["x", "  -> s -> y"]  # second tree: ties broken by node id


def test_self_loops_and_parallel_edges_are_other_edges():
    g = TextGraph.from_triples([("a", "r", "b"), ("a", "r", "b"), ("b", "r", "a"), ("a", "loop", "a")])
    text = describe(g, comments=False)
    assert text.split("\n") == ["a", "  -> r -> b", "a -> r -> b", "b -> r -> a", "a -> loop -> a"]
    _assert_same(g, parse_description(text))
    only_loop = TextGraph.from_triples([("z", "self", "z")])
    assert describe(only_loop, comments=False) == "z\nz -> self -> z"


def test_isolated_nodes_follow_root_priority():
    g = TextGraph.from_triples([("a", "r", "b")], nodes=["i1", "i2", "i3"])
    text = describe(g, roots=[g.node_id("i3")], comments=False)
    assert text.split("\n") == ["a", "  -> r -> b", "i3", "i1", "i2"]


def test_quoting_only_where_needed():
    assert format_text("alice") == "alice"
    assert format_text("C:\\path\\file") == "C:\\path\\file"  # backslashes stay readable
    assert format_text('say "hi" (loudly) [now]') == 'say "hi" (loudly) [now]'
    assert format_text("日本語 😀") == "日本語 😀"
    assert format_text("") == '""'
    assert format_text(" x") == '" x"'
    assert format_text("a -> b") == '"a -> b"'
    assert format_text('"q"') == '"\\"q\\""'
    assert format_text("#tag") == '"#tag"'
    assert format_text("a\nb\tc\\") == '"a\\nb\\tc\\\\"'
    assert format_text("x\u2028y\x00") == '"x\\u2028y\\u0000"'
    g = TextGraph.from_triples([("a\nb", "r", "c")])
    assert "# Texts in double quotes are escaped" in describe(g)
    assert "escaped" not in describe(TextGraph.from_triples([("a", "r", "c")]))


def test_deep_tree_has_no_recursion_limit():
    n = 3000
    g = TextGraph.from_triples([(f"n{i}", "next", f"n{i + 1}") for i in range(n)])
    text = describe(g, roots=[0], comments=False)
    assert text.split("\n")[-1].startswith("  " * n + "-> next -> ")
    _assert_same(g, parse_description(text))


def test_empty_graph():
    assert describe(TextGraph([])) == "# Graph: 0 nodes, 0 edges."
    assert describe(TextGraph([]), comments=False) == ""
    assert parse_description("").num_nodes == 0
    assert parse_description("# only a comment\n\n").num_nodes == 0


def test_roots_errors():
    g = TextGraph.from_triples([("a", "r", "b")])
    with pytest.raises(IndexOutOfRangeError, match="node id 5"):
        describe(g, roots=[5])
    with pytest.raises(DTypeError, match="integer node ids"):
        describe(g, roots=[0.5])
    with pytest.raises(DTypeError, match="TextGraph"):
        describe([("a", "r", "b")])
    assert describe(g, roots=torch.tensor([1, 1]), comments=False) == "b\n  <- r <- a"


@pytest.mark.parametrize(("text", "pattern"), [
    ("a\n   -> r -> b", "line 2, column 1: indentation of 3 spaces"),
    ("  -> r -> b", "line 1.*needs a node line"),
    ("a\n    -> r -> b", "line 2.*depth 2 needs a parent line at depth 1"),
    ("a\n  -> r <- b", r"line 2.*expected ' -> '"),
    ("a\n  => r -> b", "starts with '-> ' or '<- '"),
    ("a\n  -> r -> ", r"line 2, column 11: '' must be written in double quotes"),
    ('"unclosed', "line 1, column 1: this quoted text is never closed"),
    ('"bad \\q escape"', r"unknown escape '\\\\q'"),
    ('"bad \\u12"', "four hex digits"),
    ('"a" b', r"expected ' -> ', found ' b'"),
    ("a -> r", r"expected ' -> ' after this text"),
    ("a -> r -> b -> c", "'b -> c' must be written in double quotes"),
    ("a->b", "'a->b' must be written in double quotes"),
    ("x\na -> r -> b\n  -> s -> c", "line 3.*needs a node line"),
])
def test_parse_errors_name_line_and_column(text, pattern):
    with pytest.raises(DataFormatError, match=pattern):
        parse_description(text)
    with pytest.raises(DTypeError):
        parse_description(None)
