"""Tests of stacks/: the matrix, the environment model, overrides, deployment settings and the stack."""
