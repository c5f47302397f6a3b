#!/usr/bin/env python3
"""The floor of a cold synth: load ``cdktf`` and the given provider assemblies, and nothing else.

No CDKTF app in Python can synthesize faster than it loads the assemblies it uses: importing ``cdktf``
starts the jsii kernel (Node.js) and loads the ``constructs`` and ``cdktf`` assemblies, and each provider
package's ``_jsii`` module loads that provider's assembly. The provider packages are registered without
running their ``__init__`` (which would import every submodule, 2,135 for AWS: that is the app's choice,
not the floor). ``bench/synth.py`` runs this with the same interpreter and flags as the app::

    .venv/bin/python bench/floor.py cdktf_cdktf_provider_aws cdktf_cdktf_provider_helm
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import cdktf  # noqa: F401  (starts the kernel, loads the constructs and cdktf assemblies)

for package in sys.argv[1:]:
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise SystemExit(f"{package} is not installed")
    sys.modules[package] = importlib.util.module_from_spec(spec)
    importlib.import_module(f"{package}._jsii")
