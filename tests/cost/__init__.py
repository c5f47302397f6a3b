"""Tests of the cost package."""
