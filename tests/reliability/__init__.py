"""Reliability: every delivery promise of DESIGN.md §5 attacked (docs/RELIABILITY.md)."""
