import itertools

import pytest
import torch
from torch_geometric.utils import to_undirected

from graphlearn.errors import InvalidArgumentError
from graphlearn.tokenizers import NodeTokenizer, RandomWalkTokenizer, random_walks


def ring(n=8):
    src = torch.arange(n)
    return to_undirected(torch.stack([src, (src + 1) % n]), num_nodes=n)


def grid_graph():
    # a 3x3 grid plus an isolated node 9
    edges = []
    for r in range(3):
        for c in range(3):
            v = 3 * r + c
            if c < 2:
                edges.append((v, v + 1))
            if r < 2:
                edges.append((v, v + 3))
    return to_undirected(torch.tensor(edges).t(), num_nodes=10), 10


def test_random_walks_follow_edges_and_stay_at_sinks():
    edge_index, n = grid_graph()
    gen = torch.Generator().manual_seed(0)
    walks = random_walks(edge_index, n, torch.arange(n).repeat(20), 5, gen)
    assert walks.shape == (200, 6)
    assert torch.equal(walks[:, 0], torch.arange(n).repeat(20))
    edges = set(map(tuple, edge_index.t().tolist()))
    for walk in walks.tolist():
        for a, b in itertools.pairwise(walk):
            assert (a, b) in edges or (a == b == 9)  # node 9 has no edges: it stays


def test_non_backtracking_walks_never_step_back_unless_at_a_dead_end():
    edge_index, n = grid_graph()
    gen = torch.Generator().manual_seed(1)
    walks = random_walks(edge_index, n, torch.arange(9).repeat(30), 6, gen, non_backtracking=True)
    deg = torch.bincount(edge_index[0], minlength=n)
    for walk in walks.tolist():
        for i in range(2, len(walk)):
            if walk[i] == walk[i - 2]:
                assert deg[walk[i - 1]] == 1
    # on a path, a non-backtracking walk from an end covers exactly `length` hops
    path = to_undirected(torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]))
    w = random_walks(path, 5, torch.zeros(10, dtype=torch.long), 4, gen, non_backtracking=True)
    assert torch.equal(w, torch.arange(5).repeat(10, 1))


def test_random_walk_tokens_structure():
    edge_index, n = grid_graph()
    tok = RandomWalkTokenizer(max_hops=3, num_walks=2, repeats=2)
    out = tok(edge_index, n, torch.Generator().manual_seed(0))
    assert out.seq_len == 7 and tok.hops() == [3, 3, 2, 2, 1, 1, 0]
    assert out.hops.tolist() == tok.hops()
    # memberships are unique per token, and the last token of every node is the node alone
    key = out.member_token * n + out.member_node
    assert key.unique().numel() == key.numel()
    sizes = out.token_sizes()
    assert torch.equal(sizes[:, -1], torch.ones(n, dtype=torch.long))
    last = out.member_token % out.seq_len == out.seq_len - 1
    assert torch.equal(out.member_node[last], out.member_token[last] // out.seq_len)
    # every token contains its own node; a hop-h token has at most num_walks * h + 1 members
    owner = out.member_token // out.seq_len
    for t in range(out.num_tokens):
        members = set(out.member_node[out.member_token == t].tolist())
        assert t // out.seq_len in members
        assert len(members) <= 2 * tok.hops()[t % out.seq_len] + 1
    # tokens of one repetition are nested: hop-1 members are within hop-2 members, ...
    for v in range(n):
        for r in range(2):
            nested = [set(out.member_node[out.member_token == v * 7 + pos].tolist())
                      for pos in (r, 2 + r, 4 + r)]
            assert nested[2] <= nested[1] <= nested[0]
    # walked edges join members of one token along graph edges
    ea, eb = out.member_edge_index
    assert torch.equal(out.member_token[ea], out.member_token[eb])
    edges = set(map(tuple, edge_index.t().tolist()))
    assert all(e in edges for e in zip(out.member_node[ea].tolist(),
                                          out.member_node[eb].tolist(), strict=True))
    assert owner.max() == n - 1


def test_tokens_are_reproducible_with_a_generator():
    edge_index = ring()
    tok = RandomWalkTokenizer(2, 3)
    a = tok(edge_index, 8, torch.Generator().manual_seed(5))
    b = tok(edge_index, 8, torch.Generator().manual_seed(5))
    assert torch.equal(a.member_node, b.member_node) and torch.equal(a.member_token,
                                                                     b.member_token)


def test_node_tokenizer_orders_by_degree_within_graphs():
    # graph 0: a star (center 0) with leaves 1..3; graph 1: a path 4-5-6
    edge_index = to_undirected(torch.tensor([[0, 0, 0, 4, 5], [1, 2, 3, 5, 6]]))
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    order = NodeTokenizer("degree")(edge_index, 7, batch)
    assert order.ptr.tolist() == [0, 4, 7]
    assert order.perm[3].item() == 0 and order.perm[6].item() == 5  # highest degree last
    assert set(order.perm[:4].tolist()) == {0, 1, 2, 3}
    noisy = NodeTokenizer("degree-noise")
    seen = {tuple(noisy(edge_index, 7, batch, torch.Generator().manual_seed(s)).perm[:3].tolist())
            for s in range(20)}
    assert len(seen) > 1  # ties among the leaves are broken at random
    for perm in seen:
        assert set(perm) == {1, 2, 3}
    with pytest.raises(InvalidArgumentError, match="node order 'random'"):
        NodeTokenizer("random")


def test_tokenizer_arguments_are_checked():
    with pytest.raises(InvalidArgumentError, match="max_hops"):
        RandomWalkTokenizer(0)
