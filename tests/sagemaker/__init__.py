"""Tests of the sagemaker package."""
