"""Fast, lazy access to the prebuilt CDKTF provider bindings.

The prebuilt packages (``cdktf_cdktf_provider_aws`` and friends) import every one of their
submodules from their top-level ``__init__.py``: 2,135 modules for AWS alone, which costs about
20 s per process on a 2-core machine before a single resource is built. This platform uses a few
dozen of them.

This module registers each provider package in ``sys.modules`` *without* running its
``__init__.py``, loads the package's ``_jsii`` module (which registers the jsii assembly with the
kernel, the only part of the ``__init__`` that matters at run time), and then imports a submodule
only when it is first used::

    from constructs.core.bindings import aws

    aws.vpc.Vpc(self, "vpc", cidr_block="10.0.0.0/16")

The result is byte-identical to importing the bindings the usual way: ``bench/synth.py`` (``make bench``)
synthesizes both ways, measures the difference and fails when the outputs differ. Set
``ML_PLATFORM_IMPORT_MODE=naive`` to load the packages the usual way.

Attribute references of resources and data sources (``bucket.arn``, ``role.name``) are read from the kernel
once per object and kept: each read is a round trip to the jsii kernel that returns a new token for the same
reference (``${aws_s3_bucket.x.arn}``), and the platform reads the same ones again and again (a bucket's ARN
in every grant). Values that can change are always read: ``*_input`` (the argument as set) and everything
of providers, whose properties return the configured value rather than a reference.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

IMPORT_MODE_ENV = "ML_PLATFORM_IMPORT_MODE"


def _naive_mode() -> bool:
    mode = os.environ.get(IMPORT_MODE_ENV, "fast")
    if mode not in ("fast", "naive"):
        raise ValueError(f"{IMPORT_MODE_ENV}={mode!r} is not supported: use 'fast' (default) or 'naive'")
    return mode == "naive"


def _load_package(package: str) -> ModuleType:
    """Return the provider package, registered in ``sys.modules`` with its assembly loaded."""
    BackgroundLoad.wait_for_others()
    if package in sys.modules:
        return sys.modules[package]
    if _naive_mode():
        return importlib.import_module(package)
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError(f"provider bindings {package!r} are not installed: pip install -r requirements.txt")
    module = importlib.util.module_from_spec(spec)
    # Registered before anything else so that `import package.submodule` finds a parent package
    # and never executes the real __init__.py.
    sys.modules[package] = module
    try:
        importlib.import_module(f"{package}._jsii")
    except BaseException:
        del sys.modules[package]
        raise
    return module


class BackgroundLoad:
    """Provider assemblies loading in a thread while the caller does work that never calls the jsii kernel.

    Loading the AWS assembly keeps the kernel busy for about two seconds, during which Python would only wait;
    ``main.py`` validates the configuration and imports the stack modules meanwhile. The kernel's Python client
    serves one request at a time from one thread, so until :meth:`wait` returns the caller must not use
    ``cdktf`` or the bindings (importing a provider submodule waits for the load). A failed load is not raised
    here: the package stays unloaded, and its first use loads it again and raises the error where it is used.
    """

    _running: BackgroundLoad | None = None

    def __init__(self, *bindings: ProviderBindings) -> None:
        self._packages = [binding._package for binding in bindings]
        self._thread = threading.Thread(target=self._load, name="provider-assemblies", daemon=True)
        BackgroundLoad._running = self
        # A caller that fails before waiting (a configuration error) reports at once; the load is waited for when
        # the process exits (before the jsii runtime stops the kernel), so no thread is cut off mid-request.
        atexit.register(self.wait)
        self._thread.start()

    def _load(self) -> None:
        for package in self._packages:
            try:
                _load_package(package)
            except Exception:  # raised again on first use, by the thread that uses the package
                return

    def wait(self) -> None:
        """Return once the load has finished (or failed)."""
        self._thread.join()
        atexit.unregister(self.wait)
        if BackgroundLoad._running is self:
            BackgroundLoad._running = None

    @classmethod
    def wait_for_others(cls) -> None:
        """Wait for a load running in another thread, if any."""
        running = cls._running
        if running is not None and running._thread is not threading.current_thread():
            running.wait()


_READ_ONCE = "__ml_platform_read_once__"


def _read_once(name: str, getter: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``getter`` whose value is kept on the object (in its ``__dict__``) after the first read."""
    slot = f"__ref_{name}"

    def read(obj: Any) -> Any:
        try:
            return obj.__dict__[slot]
        except KeyError:
            value = obj.__dict__[slot] = getter(obj)
            return value

    read.__doc__ = getter.__doc__
    return read


def _keep_attribute_references(module: ModuleType) -> None:
    """Make the attribute references of ``module``'s resource and data source classes read once per object."""
    from cdktf import TerraformDataSource, TerraformResource

    for cls in vars(module).values():
        if not isinstance(cls, type) or not issubclass(cls, TerraformResource | TerraformDataSource):
            continue
        if cls.__module__ != module.__name__ or cls.__dict__.get(_READ_ONCE):
            continue
        for name, member in list(vars(cls).items()):
            if isinstance(member, property) and member.fget is not None and not name.endswith("_input"):
                setattr(cls, name, property(_read_once(name, member.fget), member.fset, member.fdel, member.__doc__))
        setattr(cls, _READ_ONCE, True)


class ProviderBindings:
    """A provider package whose submodules are imported on first attribute access.

    ``aws.s3_bucket`` is ``cdktf_cdktf_provider_aws.s3_bucket``; the attribute name is the
    Terraform resource or data source type without its provider prefix.
    """

    def __init__(self, package: str) -> None:
        self._package = package

    def __getattr__(self, submodule: str) -> ModuleType:
        if submodule.startswith("_"):
            raise AttributeError(submodule)
        _load_package(self._package)
        module = importlib.import_module(f"{self._package}.{submodule}")
        _keep_attribute_references(module)
        # Cache on the instance so later lookups skip __getattr__ entirely.
        setattr(self, submodule, module)
        return module

    def __repr__(self) -> str:
        return f"ProviderBindings({self._package!r})"


aws = ProviderBindings("cdktf_cdktf_provider_aws")
helm = ProviderBindings("cdktf_cdktf_provider_helm")
kubernetes = ProviderBindings("cdktf_cdktf_provider_kubernetes")
