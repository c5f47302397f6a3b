"""Tests of the network package."""
