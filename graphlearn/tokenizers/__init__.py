"""Graph tokenizers: turn graphs or neighbourhoods into token sequences for sequence models."""

from .neighbourhood import (
    NeighbourhoodTokens,
    NodeOrder,
    NodeTokenizer,
    RandomWalkTokenizer,
    random_walks,
)

__all__ = ["NeighbourhoodTokens", "NodeOrder", "NodeTokenizer", "RandomWalkTokenizer",
           "random_walks"]
