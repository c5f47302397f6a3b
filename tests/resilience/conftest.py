"""The resilience tests read the platform with a published model too: the standby endpoint exists only then."""

from __future__ import annotations

from tests.sagemaker.conftest import published, published_dir, published_json

__all__ = ["published", "published_dir", "published_json"]
