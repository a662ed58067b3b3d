"""Synthetic data and the demo: a synthetic city replayed through the service, synthetic
populations at scale, the shipped schemes, and the demo's log-ins. Nothing here is real data."""
