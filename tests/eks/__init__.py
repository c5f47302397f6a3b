"""Tests of the eks package."""
