"""The test suite; its folders mirror the feature packages of ``constructs/`` and ``stacks/``."""
