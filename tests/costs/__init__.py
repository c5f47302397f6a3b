"""Tests of the cost estimator (costs/): arithmetic on hand-built stacks, the real stacks, the CLI, the README."""
