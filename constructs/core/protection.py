"""Destroy protection for the stateful resources of a protected environment.

Rule PROT-1 (``constructs/policy/rules.py``, ``ProtectedData``) decides which resource types hold data or history
and checks the final JSON; constructs pass these helpers' values to those resources, so the protection follows
the environment's ``protected`` flag (:attr:`~constructs.core.context.PlatformContext.protected`) and nothing
else. Unprotected environments get nothing: their resources stay destroyable and their JSON stays as it was.
"""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle


def prevent_destroy(protected: bool) -> TerraformResourceLifecycle | None:
    """``lifecycle { prevent_destroy = true }`` in a protected environment, else None (no lifecycle block).

    A plan that would destroy or replace the resource (``terraform destroy``, a renamed endpoint, a changed VPC
    block) then fails instead of deleting it.
    """
    return TerraformResourceLifecycle(prevent_destroy=True) if protected else None


def retain_on_destroy(protected: bool) -> bool | None:
    """The ``skip_destroy`` argument of resources that have one: True in a protected environment, else None.

    ``prevent_destroy`` leaves with the resource block, so removing a section from the configuration still
    destroys its resources; ``skip_destroy`` is kept in the state, and Terraform then forgets the resource
    instead of deleting it (a log group keeps its events until they expire with its retention). None leaves
    the argument out, as the provider's default (false) would.
    """
    return True if protected else None
