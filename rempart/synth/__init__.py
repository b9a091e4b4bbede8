"""Synthetic data: a deterministic, seeded generator of a realistic French clinic group."""
