"""What moto 5.2.5 lacks or gets wrong for the resource types the platform provisions, one module per AWS service.

Each module's docstring says what moto lacks there and why the patch exists (every patch was checked
against the installed moto source and a live request before it was written), and its ``apply()`` patches
moto's classes in memory. ``emulator.server.apply_patches`` applies the modules of
:data:`PATCH_MODULES`, in that order, once per process: an ``apply()`` called twice would wrap moto's
methods twice. The order is that of the single-file launcher these modules came from; no two modules
patch the same class attribute, so it does not change the result.
"""

from __future__ import annotations

from types import ModuleType

from emulator.patches import (
    acm,
    application_autoscaling,
    autoscaling,
    budgets,
    cost_explorer,
    ec2,
    eks,
    iam,
    lambda_functions,
    rds,
    s3,
    sagemaker,
)

PATCH_MODULES: tuple[ModuleType, ...] = (
    iam,
    ec2,
    budgets,
    application_autoscaling,
    sagemaker,
    eks,
    autoscaling,
    lambda_functions,
    rds,
    acm,
    cost_explorer,
    s3,
)
"""The patch modules, in the order their ``apply()`` runs."""
