"""Resilience across regions: the environment's footprint in its secondary region."""
