"""Tests of the MLflow feature: the tracking server's PostgreSQL database."""
