"""Placeholder: filled in by the reasoner work (issue 4)."""
