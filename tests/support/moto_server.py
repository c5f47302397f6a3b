"""A local AWS emulator that ``terraform apply`` can run this platform's resources against.

It runs moto's ``ThreadedMotoServer`` in this process on 127.0.0.1 and patches, at run time, the few
things moto 5.2.5 lacks or gets wrong for the resource types the platform provisions, so that
``terraform apply`` -> ``terraform plan -detailed-exitcode`` (exit 0) -> ``terraform destroy`` works
with the hashicorp/aws 5.100.0 provider.

Each patch was checked against the installed moto source and a live request before it was written:

* EC2 ``CreatePlacementGroup`` / ``DescribePlacementGroups`` / ``DeletePlacementGroup`` are not
  implemented (moto raises ``NotImplementedError`` -> HTTP 500). They are added as EC2 actions backed
  by an in-memory store on each account/region EC2 backend; tags live in moto's own EC2 tag store,
  so ``CreateTags``/``DeleteTags``/``DescribeTags`` work on ``pg-`` ids too.
* Budgets ``DescribeSubscribersForNotification``, ``ListTagsForResource``, ``TagResource`` and
  ``UntagResource`` are not implemented; ``CreateBudget`` ignores ``ResourceTags``.
* Application Auto Scaling ``ListTagsForResource``, ``TagResource`` and ``UntagResource`` are not
  implemented; ``RegisterScalableTarget`` ignores ``Tags``.
* SageMaker ``DescribeModel`` returns ``VpcConfig: {}`` and ``DescribeEndpointConfig`` /
  ``DescribeEndpoint`` return ``DataCaptureConfig: {}`` when none was set; the provider reads those as
  configured (empty) blocks and plans a replacement forever. They are dropped from the responses.
* SageMaker endpoint-config validation rejects current GPU instance types (ml.g5, ml.g6, ml.g6e,
  ml.p4d, ml.p5); they are accepted in addition to moto's list.
* EKS ``CreateNodegroup`` stores a made-up ``remoteAccess {ec2SshKey: eksKeypair}`` when none was
  requested; ``remote_access`` is not a computed attribute in the provider, so it planned a
  replacement forever. The node group now keeps what was requested (nothing).
* ``MOTO_IAM_LOAD_MANAGED_POLICIES=true`` is set when this module is imported, before any IAM backend
  is built, so ``arn:aws:iam::aws:policy/...`` ARNs exist and can be attached.

Found by deploying the platform's own stacks (``tests/test_emulator_deploy.py``):

* The server sends each response in one write: werkzeug wrote headers and body separately, and the
  provider's Go client sometimes gave up between the two and retried a request the emulator had
  already carried out. It also handles one request at a time (moto's backends have no locks).
* Policy conditions: moto ignores ``Bool`` conditions (reads them as met) and treats a statement
  whose condition fails as a deny, so a TLS-only bucket policy denied every object request. ``Bool``
  is evaluated, requests count as made over TLS, and unmet statements do not apply.
* EKS: access entries and their access policies (``CreateAccessEntry``, ``DescribeAccessEntry``,
  ``DeleteAccessEntry``, ``AssociateAccessPolicy``, ``ListAssociatedAccessPolicies``,
  ``DisassociateAccessPolicy``) and add-ons (``CreateAddon``, ``DescribeAddon``, ``DeleteAddon``) are
  added; ``accessConfig`` and ``upgradePolicy`` of a cluster and ``updateConfig`` and
  ``nodeRepairConfig`` of a node group are kept; each cluster gets its own OIDC issuer and endpoint.
* EC2: a launch template's own tags no longer leak into its data's ``TagSpecifications``; rules that
  reference a security group report their description; revoking an unknown rule ID answers
  ``InvalidSecurityGroupRuleId.NotFound``; ``CreateNatGateway`` is idempotent on its ClientToken.
* Auto Scaling lifecycle hooks report the notification target and role they were given (moto
  hard-codes made-up ARNs).
* Lambda reports ``DeadLetterConfig`` and ``LoggingConfig``.
* SageMaker keeps a model's ``EnableNetworkIsolation`` and an endpoint's deployment configuration.

All patches add or wrap methods on moto's classes in memory (no file under site-packages is touched),
are applied once per process by ``start_emulator``, and only add an action when moto does not already
define it. Being process-wide, they also apply to ``moto.mock_aws`` used later in the same process;
each one only makes moto closer to AWS, so that is harmless.

moto keeps its state in process-global backends: every emulator started in one process shares it,
and ``Emulator.reset()`` clears all of it (including the stores added here, which hang off the
backends that moto rebuilds on reset).

Run it standalone with ``python tests/support/moto_server.py --port 4566`` (``--port 0`` picks a free
port); it prints the endpoint and serves until interrupted.
"""

from __future__ import annotations

import argparse
import copy
import functools
import inspect
import json
import logging
import os
import signal
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

# moto reads this when it builds an IAM backend (lazily, per account, and again after every reset),
# so it must be in the environment before the first IAM request, not merely before `import moto`.
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"

REGION = "us-east-1"
"""The region the provider block and the tests use."""

ACCOUNT_ID = "123456789012"
"""moto's default account: the one every request signed with access key ``test`` lands in."""

# The `endpoints` keys (hashicorp/aws 5.100.0 schema) for every service this platform uses. Each
# service has exactly one key here: the provider also accepts aliases (eventbridge/cloudwatchevents for
# events, applicationautoscaling for appautoscaling, cloudwatchlogs for logs, elasticloadbalancingv2
# for elbv2), but when several equivalent keys are set it silently keeps the first, so aliases only add
# ambiguity. Verified with `terraform providers schema -json` against the offline 5.100.0 provider.
PROVIDER_ENDPOINT_KEYS: tuple[str, ...] = (
    "appautoscaling",
    "autoscaling",
    "budgets",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "ecr",
    "eks",
    "elbv2",
    "events",
    "iam",
    "kms",
    "lambda",
    "logs",
    "route53",
    "s3",
    "sagemaker",
    "sns",
    "sqs",
    "ssm",
    "sts",
)

# GPU families the platform serves on that moto 5.2.5's endpoint-config validation does not list.
_SAGEMAKER_SIZES = ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge")
EXTRA_SAGEMAKER_INSTANCE_TYPES: frozenset[str] = frozenset(
    [f"ml.{family}.{size}" for family in ("g5", "g6", "g6e") for size in _SAGEMAKER_SIZES]
    + ["ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p5.48xlarge", "ml.p5e.48xlarge"]
)

_PLACEMENT_STRATEGIES = ("cluster", "spread", "partition")
_SPREAD_LEVELS = ("host", "rack")

_patch_lock = threading.Lock()
_patched = False
# Guards the stores this module adds: werkzeug serves each request on its own thread.
_store_lock = threading.RLock()
# Held while the server handles one request (see _patch_one_request_at_a_time).
_request_lock = threading.Lock()


# --------------------------------------------------------------------------------------------------
# Small helpers shared by the patches
# --------------------------------------------------------------------------------------------------


def _store(backend: object, name: str) -> dict[str, Any]:
    """Return a dict kept on a moto backend instance, creating it on first use.

    Keeping the emulator's extra state on the backend gives it moto's account/region keying for free,
    and moto's reset rebuilds backends from scratch (``BaseBackend.reset`` clears ``__dict__``), so the
    extra state is reset together with everything else.
    """
    with _store_lock:
        return backend.__dict__.setdefault(name, {})  # type: ignore[no-any-return]


def _add_action(cls: type, name: str, func: Callable[..., Any]) -> None:
    """Register ``func`` as the handler of action ``name`` unless moto already implements it.

    moto dispatches an action to the response-class method named after it in snake_case, so a new
    method is all a missing action needs. An existing method is kept: if a later moto implements the
    action, its implementation wins.
    """
    if not hasattr(cls, name):
        func.__name__ = name
        func.__qualname__ = f"{cls.__name__}.{name}"
        setattr(cls, name, func)


def _wrap(cls: type, name: str, make_wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Replace ``cls.name`` by ``make_wrapper(original)``, keeping the original's metadata."""
    original = getattr(cls, name)
    wrapper = make_wrapper(original)
    functools.update_wrapper(wrapper, original)
    setattr(cls, name, wrapper)


def _strip_empty(keys: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Build a wrapper that drops ``keys`` from an ``ActionResult`` dict when their value is ``{}``.

    AWS omits an unset structure; moto returns it as an empty object, which the provider reads as a
    configured-but-empty block and diffs against the configuration on every plan.
    """
    from moto.core.responses import ActionResult

    def make_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Any) -> Any:
            result = original(self)
            body = result.result if isinstance(result, ActionResult) else None
            if isinstance(body, dict) and any(body.get(key) == {} for key in keys):
                return ActionResult({k: v for k, v in body.items() if not (k in keys and v == {})})
            return result

        return wrapper

    return make_wrapper


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """Turn ``{key: value}`` into AWS's ``[{"Key": key, "Value": value}]``."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    """Turn AWS's ``[{"Key": key, "Value": value}]`` into ``{key: value}``."""
    return {tag["Key"]: tag.get("Value", "") for tag in tags or []}


# --------------------------------------------------------------------------------------------------
# EC2 placement groups
# --------------------------------------------------------------------------------------------------


def _patch_ec2_placement_groups() -> None:
    """Add CreatePlacementGroup, DescribePlacementGroups and DeletePlacementGroup to moto's EC2."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.ec2 import utils as ec2_utils
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses import EC2Response
    from moto.utilities.utils import get_partition

    # moto's CreateTags/DeleteTags reject ids whose prefix it does not know (InvalidID), and its
    # DescribeTags resource-type filter looks the prefix up; registering "pg" makes both work for
    # placement groups. Both tables are module-level dicts imported by reference elsewhere in moto.
    ec2_utils.EC2_RESOURCE_TO_PREFIX.setdefault("placement-group", "pg")
    ec2_utils.EC2_PREFIX_TO_RESOURCE.setdefault("pg", "placement-group")

    def groups(response: Any) -> dict[str, dict[str, Any]]:
        return _store(response.ec2_backend, "_emulator_placement_groups")

    def render(response: Any, group: dict[str, Any]) -> dict[str, Any]:
        tags = response.ec2_backend.tags.get(group["GroupId"], {})
        return {**group, "Tags": _tag_list(tags)}

    def unknown(name: str) -> EC2ClientError:
        return EC2ClientError("InvalidPlacementGroup.Unknown", f"The Placement Group '{name}' is unknown.")

    def duplicate(name: str) -> EC2ClientError:
        message = f"The Placement Group '{name}' already exists."
        return EC2ClientError("InvalidPlacementGroup.Duplicate", message)

    def create_placement_group(self: Any) -> ActionResult:
        name = self._get_param("GroupName")
        strategy = self._get_param("Strategy")
        partition_count = self._get_param("PartitionCount")
        spread_level = self._get_param("SpreadLevel")
        if not name:
            raise EC2ClientError("MissingParameter", "The request must contain the parameter groupName")
        if strategy not in _PLACEMENT_STRATEGIES:
            raise EC2ClientError("InvalidParameterValue", f"Invalid value '{strategy}' for strategy.")
        if partition_count is not None and strategy != "partition":
            raise EC2ClientError(
                "InvalidParameterCombination", "PartitionCount is only valid for the partition strategy."
            )
        if partition_count is not None and not 1 <= int(partition_count) <= 7:
            raise EC2ClientError("InvalidParameterValue", "PartitionCount must be between 1 and 7.")
        if spread_level is not None and (strategy != "spread" or spread_level not in _SPREAD_LEVELS):
            raise EC2ClientError("InvalidParameterValue", f"Invalid value '{spread_level}' for spreadLevel.")
        tags = self._parse_tag_specification("placement-group").get("placement-group", {})
        self.error_on_dryrun()
        with _store_lock:
            store = groups(self)
            if name in store:
                raise duplicate(name)
            group_id = ec2_utils.random_id(prefix="pg")
            arn_prefix = f"arn:{get_partition(self.region)}:ec2:{self.region}:{self.current_account}"
            group: dict[str, Any] = {
                "GroupName": name,
                "GroupId": group_id,
                "Strategy": strategy,
                # Reported as available at once: the provider polls until it sees this state.
                "State": "available",
                "GroupArn": f"{arn_prefix}:placement-group/{name}",
            }
            if partition_count is not None:
                group["PartitionCount"] = int(partition_count)
            if spread_level is not None:
                group["SpreadLevel"] = spread_level
            store[name] = group
        if tags:
            self.ec2_backend.create_tags([group_id], tags)
        return ActionResult({"PlacementGroup": render(self, group)})

    def describe_placement_groups(self: Any) -> ActionResult:
        names = self._get_param("GroupNames", []) or []
        ids = self._get_param("GroupIds", []) or []
        filters = self._filters_from_querystring()
        with _store_lock:
            found = list(groups(self).values())
        for name in names:
            if not any(group["GroupName"] == name for group in found):
                raise unknown(name)
        for group_id in ids:
            if not any(group["GroupId"] == group_id for group in found):
                raise EC2ClientError(
                    "InvalidPlacementGroupId.NotFound", f"The Placement Group ID '{group_id}' does not exist."
                )
        if names:
            found = [group for group in found if group["GroupName"] in names]
        if ids:
            found = [group for group in found if group["GroupId"] in ids]
        rendered = [render(self, group) for group in found]
        return ActionResult({"PlacementGroups": [g for g in rendered if _matches_filters(g, filters)]})

    def delete_placement_group(self: Any) -> ActionResult:
        name = self._get_param("GroupName")
        self.error_on_dryrun()
        with _store_lock:
            group = groups(self).pop(name, None)
        if group is None:
            raise unknown(name)
        self.ec2_backend.tags.pop(group["GroupId"], None)
        return EmptyResult()

    _add_action(EC2Response, "create_placement_group", create_placement_group)
    _add_action(EC2Response, "describe_placement_groups", describe_placement_groups)
    _add_action(EC2Response, "delete_placement_group", delete_placement_group)


_PLACEMENT_FILTER_FIELDS = {
    "group-name": "GroupName",
    "group-id": "GroupId",
    "group-arn": "GroupArn",
    "strategy": "Strategy",
    "state": "State",
    "spread-level": "SpreadLevel",
}


def _matches_filters(group: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Apply DescribePlacementGroups filters (exact values; ``tag:KEY`` and ``tag-key`` included)."""
    tags = _tag_dict(group.get("Tags"))
    for name, values in filters.items():
        if name in _PLACEMENT_FILTER_FIELDS:
            if str(group.get(_PLACEMENT_FILTER_FIELDS[name], "")) not in values:
                return False
        elif name.startswith("tag:"):
            if tags.get(name[4:]) not in values:
                return False
        elif name == "tag-key":
            if not set(values) & set(tags):
                return False
        else:
            from moto.ec2.exceptions import EC2ClientError

            raise EC2ClientError("InvalidParameterValue", f"The filter '{name}' is invalid")
    return True


# --------------------------------------------------------------------------------------------------
# Budgets
# --------------------------------------------------------------------------------------------------


def _notification_key(notification: dict[str, Any]) -> tuple[str, str, float, str]:
    """Identify a budget notification the way AWS does, tolerant of ``80`` vs ``80.0``.

    moto stores the notification exactly as the client sent it; clients differ in whether they send
    ``ThresholdType`` (default PERCENTAGE) and in how they encode the threshold number.
    """
    return (
        str(notification.get("NotificationType")),
        str(notification.get("ComparisonOperator")),
        float(notification.get("Threshold", 0)),
        str(notification.get("ThresholdType") or "PERCENTAGE"),
    )


def _budget_arn(partition: str, account_id: str, budget_name: str) -> str:
    """Return a budget's ARN (budgets is a global service: the ARN has no region)."""
    return f"arn:{partition}:budgets::{account_id}:budget/{budget_name}"


def _patch_budgets() -> None:
    """Add the Budgets subscriber and tagging actions moto lacks, and keep tags given at creation."""
    from moto.budgets.exceptions import NotFoundException
    from moto.budgets.responses import BudgetsResponse

    def tags_of(response: Any) -> dict[str, dict[str, str]]:
        return _store(response.backend, "_emulator_budget_tags")

    def budget_for_arn(response: Any, arn: str) -> str:
        # arn:aws:budgets::123456789012:budget/NAME
        try:
            account_id = arn.split(":")[4]
            name = arn.split(":", 5)[5].split("/", 1)[1]
        except IndexError as error:
            raise NotFoundException(f"Invalid ARN: {arn}") from error
        if name not in response.backend.budgets.get(account_id, {}):
            raise NotFoundException(f"Unable to find budget for resource {arn}")
        return arn

    def describe_subscribers_for_notification(self: Any) -> str:
        account_id = self._get_param("AccountId")
        budget_name = self._get_param("BudgetName")
        wanted = _notification_key(self._get_param("Notification") or {})
        budget = self.backend.budgets.get(account_id, {}).get(budget_name)
        if budget is None:
            raise NotFoundException(f"Unable to get subscribers - the budget {budget_name} doesn't exist.")
        for notification in budget.notifications:
            if _notification_key(notification.details) == wanted:
                return json.dumps({"Subscribers": list(notification.subscribers)})
        raise NotFoundException("Unable to get subscribers - the notification doesn't exist.")

    def list_tags_for_resource(self: Any) -> str:
        arn = budget_for_arn(self, self._get_param("ResourceARN"))
        return json.dumps({"ResourceTags": _tag_list(tags_of(self).get(arn, {}))})

    def tag_resource(self: Any) -> str:
        arn = budget_for_arn(self, self._get_param("ResourceARN"))
        with _store_lock:
            tags_of(self).setdefault(arn, {}).update(_tag_dict(self._get_param("ResourceTags")))
        return json.dumps({})

    def untag_resource(self: Any) -> str:
        arn = budget_for_arn(self, self._get_param("ResourceARN"))
        with _store_lock:
            for key in self._get_param("ResourceTagKeys") or []:
                tags_of(self).get(arn, {}).pop(key, None)
        return json.dumps({})

    def keep_resource_tags(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_budget(self: Any) -> Any:
            result = original(self)
            tags = _tag_dict(self._get_param("ResourceTags"))
            if tags:
                name = (self._get_param("Budget") or {})["BudgetName"]
                arn = _budget_arn(self.partition, self._get_param("AccountId"), name)
                with _store_lock:
                    tags_of(self)[arn] = tags
            return result

        return create_budget

    def drop_resource_tags(original: Callable[..., Any]) -> Callable[..., Any]:
        def delete_budget(self: Any) -> Any:
            result = original(self)
            arn = _budget_arn(self.partition, self._get_param("AccountId"), self._get_param("BudgetName"))
            with _store_lock:
                tags_of(self).pop(arn, None)
            return result

        return delete_budget

    actions = (describe_subscribers_for_notification, list_tags_for_resource, tag_resource, untag_resource)
    for action in actions:
        _add_action(BudgetsResponse, action.__name__, action)
    _wrap(BudgetsResponse, "create_budget", keep_resource_tags)
    _wrap(BudgetsResponse, "delete_budget", drop_resource_tags)


# --------------------------------------------------------------------------------------------------
# Application Auto Scaling
# --------------------------------------------------------------------------------------------------


def _patch_application_autoscaling() -> None:
    """Add Application Auto Scaling tagging, and keep tags given to RegisterScalableTarget."""
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
    from moto.core.exceptions import JsonRESTError

    def tags_of(response: Any) -> dict[str, dict[str, str]]:
        return _store(response.applicationautoscaling_backend, "_emulator_target_tags")

    def target_arn(response: Any, arn: str) -> str:
        backend = response.applicationautoscaling_backend
        if not any(t.arn == arn for targets in backend.targets.values() for t in targets.values()):
            raise JsonRESTError("ResourceNotFoundException", f"No scalable target found for {arn}")
        return arn

    def list_tags_for_resource(self: Any) -> str:
        arn = target_arn(self, self._get_param("ResourceARN"))
        return json.dumps({"Tags": dict(tags_of(self).get(arn, {}))})

    def tag_resource(self: Any) -> str:
        arn = target_arn(self, self._get_param("ResourceARN"))
        with _store_lock:
            tags_of(self).setdefault(arn, {}).update(self._get_param("Tags") or {})
        return json.dumps({})

    def untag_resource(self: Any) -> str:
        arn = target_arn(self, self._get_param("ResourceARN"))
        with _store_lock:
            for key in self._get_param("TagKeys") or []:
                tags_of(self).get(arn, {}).pop(key, None)
        return json.dumps({})

    def keep_tags(original: Callable[..., Any]) -> Callable[..., Any]:
        def register_scalable_target(self: Any) -> Any:
            result = original(self)
            tags = self._get_param("Tags") or {}
            if tags:
                arn = json.loads(result)["ScalableTargetARN"]
                with _store_lock:
                    tags_of(self).setdefault(arn, {}).update(tags)
            return result

        return register_scalable_target

    def drop_tags(original: Callable[..., Any]) -> Callable[..., Any]:
        def deregister_scalable_target(self: Any) -> Any:
            backend = self.applicationautoscaling_backend
            dimension = self._get_param("ScalableDimension")
            target = backend.targets.get(dimension, {}).get(self._get_param("ResourceId"))
            result = original(self)
            if target is not None:
                with _store_lock:
                    tags_of(self).pop(target.arn, None)
            return result

        return deregister_scalable_target

    _add_action(ApplicationAutoScalingResponse, "list_tags_for_resource", list_tags_for_resource)
    _add_action(ApplicationAutoScalingResponse, "tag_resource", tag_resource)
    _add_action(ApplicationAutoScalingResponse, "untag_resource", untag_resource)
    _wrap(ApplicationAutoScalingResponse, "register_scalable_target", keep_tags)
    _wrap(ApplicationAutoScalingResponse, "deregister_scalable_target", drop_tags)


# --------------------------------------------------------------------------------------------------
# SageMaker
# --------------------------------------------------------------------------------------------------


def _patch_sagemaker() -> None:
    """Drop empty VpcConfig/DataCaptureConfig from describes; accept current GPU instance types."""
    from moto.sagemaker.models import FakeEndpointConfig
    from moto.sagemaker.responses import SageMakerResponse

    _wrap(SageMakerResponse, "describe_model", _strip_empty(("VpcConfig",)))
    _wrap(SageMakerResponse, "describe_endpoint_config", _strip_empty(("DataCaptureConfig",)))
    _wrap(SageMakerResponse, "describe_endpoint", _strip_empty(("DataCaptureConfig",)))

    def accept_gpu_types(original: Callable[..., Any]) -> Callable[..., Any]:
        def validate_instance_type(self: Any, instance_type: str) -> None:
            if instance_type in EXTRA_SAGEMAKER_INSTANCE_TYPES:
                return
            original(self, instance_type)

        return validate_instance_type

    _wrap(FakeEndpointConfig, "validate_instance_type", accept_gpu_types)


# --------------------------------------------------------------------------------------------------
# EKS
# --------------------------------------------------------------------------------------------------


def _patch_eks() -> None:
    """Make EKS node groups report ``remoteAccess`` only when it was requested."""
    from moto.eks.models import Nodegroup

    def keep_requested_remote_access(original: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(original)

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            requested = signature.bind(self, *args, **kwargs).arguments.get("remote_access")
            if not requested:
                # moto substitutes {"ec2SshKey": "eksKeypair"}; its serializer omits None attributes.
                self.remote_access = None

        return __init__

    _wrap(Nodegroup, "__init__", keep_requested_remote_access)


# --------------------------------------------------------------------------------------------------
# IAM policy evaluation (bucket policies)
# --------------------------------------------------------------------------------------------------


def _patch_policy_statement_conditions() -> None:
    """Evaluate policy conditions on ``aws:SecureTransport`` as AWS does for an HTTPS request.

    moto skips condition operators it does not implement (everything but StringEquals), so it reads
    ``Bool`` conditions as met, and it evaluates a statement whose condition is not met as an explicit
    deny, whatever its effect. Together these made the platform's TLS-only bucket policy (Deny ``s3:*``
    when ``aws:SecureTransport`` is ``false``) deny every object request, so a bucket could not even
    be emptied. Here ``Bool`` is evaluated, requests count as made over TLS (the emulator stands in
    for AWS's HTTPS endpoints; its own transport is plain HTTP on loopback), and a statement whose
    condition does not hold does not apply (neither allow nor deny).
    """
    from moto.iam import policy_conditions
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    def bool_equals(expected: list[str] | str, actual: str) -> bool:
        values = expected if isinstance(expected, list) else [expected]
        return str(actual).lower() in {str(value).lower() for value in values}

    policy_conditions.CONDITION_OPERATIONS.setdefault("Bool", bool_equals)

    def skip_unmet_conditions(original: Callable[..., Any]) -> Callable[..., Any]:
        def is_action_permitted(
            self: Any,
            action: str,
            resource: str = "*",
            principal: str | None = None,
            incoming_condition_values: dict[str, str] | None = None,
        ) -> Any:
            incoming = {"aws:SecureTransport": "true", **(incoming_condition_values or {})}
            result = original(self, action, resource, principal, incoming)
            if result is not PermissionResult.DENIED or not self._statement.get("Condition"):
                return result
            wrong_principal = (
                principal is not None
                and not self.is_unknown_principal(self._statement.get("Principal"))
                and not self._check_principal(principal)
            )
            if not wrong_principal and not self._check_conditions(incoming):
                return PermissionResult.NEUTRAL
            return result

        return is_action_permitted

    _wrap(IAMPolicyStatement, "is_action_permitted", skip_unmet_conditions)


# --------------------------------------------------------------------------------------------------
# EC2 launch templates and security group rules
# --------------------------------------------------------------------------------------------------


def _patch_ec2_launch_template_data_tags() -> None:
    """Keep CreateLaunchTemplate's own tags out of the template's data.

    The request's top-level ``TagSpecifications`` (resource type ``launch-template``) tag the template
    itself; moto also appends them to ``LaunchTemplateData.TagSpecifications``, so every version then
    reports a ``launch-template`` tag specification that was never configured, and the provider plans
    a new version forever.
    """
    from moto.ec2.responses.launch_templates import LaunchTemplates

    def keep_requested_data_tags(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_launch_template(self: Any) -> Any:
            requested = copy.deepcopy((self._get_param("LaunchTemplateData") or {}).get("TagSpecifications"))
            result = original(self)
            template = self.ec2_backend.get_launch_template_by_name(self._get_param("LaunchTemplateName"))
            data = template.versions[0].data
            if requested:
                data["TagSpecifications"] = requested
            else:
                data.pop("TagSpecifications", None)
            return result

        return create_launch_template

    _wrap(LaunchTemplates, "create_launch_template", keep_requested_data_tags)


def _patch_ec2_security_group_rule_descriptions() -> None:
    """Report the description of rules that reference a security group.

    moto reads a rule's description from its CIDR range only; for a rule whose source is another
    (or the same) security group the description lives on the group pair, so it came back empty.
    """
    from moto.ec2.models.security_groups import SecurityGroupRule

    original = SecurityGroupRule.description

    def description(self: Any) -> str | None:
        return original.fget(self) or (self.source_group or {}).get("Description")

    SecurityGroupRule.description = property(description, doc=original.__doc__)


def _patch_ec2_security_group_rule_id_not_found() -> None:
    """Answer a revoke naming an unknown security group rule ID with InvalidSecurityGroupRuleId.NotFound.

    moto answers InvalidPermission.NotFound (AWS's code for an unknown rule given by its permissions).
    The provider treats AWS's code as "already deleted"; with moto's, a repeated delete (the SDK
    retries a request whose response it did not get) failed the destroy.
    """
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.security_groups import SecurityGroupBackend

    def check_rule_ids(direction: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def make_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
            signature = inspect.signature(original)

            def revoke(self: Any, *args: Any, **kwargs: Any) -> None:
                arguments = signature.bind(self, *args, **kwargs).arguments
                rule_ids = arguments.get("security_rule_ids") or []
                group = self.get_security_group_by_name_or_id(arguments["group_name_or_id"], arguments.get("vpc_id"))
                if group is not None:
                    known = {rule.id for rule in getattr(group, f"{direction}_rules")}
                    for rule_id in rule_ids:
                        if rule_id not in known:
                            message = f"The security group rule ID '{rule_id}' does not exist"
                            raise EC2ClientError("InvalidSecurityGroupRuleId.NotFound", message)
                original(self, *args, **kwargs)

            return revoke

        return make_wrapper

    _wrap(SecurityGroupBackend, "revoke_security_group_ingress", check_rule_ids("ingress"))
    _wrap(SecurityGroupBackend, "revoke_security_group_egress", check_rule_ids("egress"))


def _patch_ec2_nat_gateway_client_token() -> None:
    """Make CreateNatGateway idempotent on its ClientToken, as EC2 is.

    A repeated request with the same token (the SDK retries a request whose response it did not get)
    returns the NAT gateway the first one created; moto created a second one, which failed because
    the Elastic IP was already associated with the first.
    """
    from moto.core.responses import ActionResult
    from moto.ec2.responses.nat_gateways import NatGateways

    def honor_client_token(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_nat_gateway(self: Any) -> Any:
            token = self._get_param("ClientToken")
            if not token:
                return original(self)
            with _store_lock:
                tokens = _store(self.ec2_backend, "_emulator_nat_gateway_tokens")
                existing = self.ec2_backend.nat_gateways.get(tokens.get(token, ""))
                if existing is not None:
                    return ActionResult({"ClientToken": token, "NatGateway": existing})
                result = original(self)
                tokens[token] = result.result["NatGateway"].id
            return ActionResult({"ClientToken": token, **result.result})

        return create_nat_gateway

    _wrap(NatGateways, "create_nat_gateway", honor_client_token)


# --------------------------------------------------------------------------------------------------
# EC2 Auto Scaling
# --------------------------------------------------------------------------------------------------


def _patch_autoscaling_lifecycle_hooks() -> None:
    """Store a lifecycle hook's notification target and role as requested.

    moto hard-codes ``arn:aws:sqs:...:my-queue`` and ``arn:aws:iam::1234567890:role/my-auto-scaling-role``
    on every hook, so a hook configured without them (its events go to EventBridge) is planned for
    an update forever.
    """
    from moto.autoscaling.responses import AutoScalingResponse

    def keep_requested_targets(original: Callable[..., Any]) -> Callable[..., Any]:
        def put_lifecycle_hook(self: Any) -> Any:
            result = original(self)
            key = f"{self._get_param('AutoScalingGroupName')}_{self._get_param('LifecycleHookName')}"
            hook = self.autoscaling_backend.lifecycle_hooks[key]
            hook.notification_target_arn = self._get_param("NotificationTargetARN")
            hook.role_arn = self._get_param("RoleARN")
            hook.notification_metadata = self._get_param("NotificationMetadata")
            return result

        return put_lifecycle_hook

    _wrap(AutoScalingResponse, "put_lifecycle_hook", keep_requested_targets)


# --------------------------------------------------------------------------------------------------
# Lambda
# --------------------------------------------------------------------------------------------------


def _patch_lambda_function_configs() -> None:
    """Report a function's DeadLetterConfig and LoggingConfig, as AWS does.

    moto drops both from the function's configuration; the provider then plans to add the dead-letter
    target and the logging block on every run. AWS always reports a LoggingConfig: text format to
    ``/aws/lambda/<name>`` unless configured otherwise.
    """
    from moto.awslambda.models import LambdaFunction

    def logging_config(function: Any, requested: dict[str, Any] | None) -> dict[str, Any]:
        config = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function.function_name}", **(requested or {})}
        if config["LogFormat"] == "JSON":
            config = {"ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO", **config}
        return config

    def keep_configs(original: Callable[..., Any]) -> Callable[..., Any]:
        def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
            original(self, account_id, spec, *args, **kwargs)
            self.emulator_dead_letter_config = spec.get("DeadLetterConfig") or None
            self.emulator_logging_config = logging_config(self, spec.get("LoggingConfig"))

        return __init__

    def update_configs(original: Callable[..., Any]) -> Callable[..., Any]:
        def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
            if "DeadLetterConfig" in config_updates:
                # An empty TargetArn removes the dead-letter queue.
                target = (config_updates["DeadLetterConfig"] or {}).get("TargetArn")
                self.emulator_dead_letter_config = {"TargetArn": target} if target else None
            if "LoggingConfig" in config_updates:
                self.emulator_logging_config = logging_config(self, config_updates["LoggingConfig"])
            return original(self, config_updates)  # type: ignore[no-any-return]

        return update_configuration

    def add_configs(original: Callable[..., Any]) -> Callable[..., Any]:
        def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
            config = dict(original(self, *args, **kwargs))
            if getattr(self, "emulator_dead_letter_config", None):
                config["DeadLetterConfig"] = self.emulator_dead_letter_config
            config["LoggingConfig"] = getattr(self, "emulator_logging_config", None) or logging_config(self, None)
            return config

        return get_configuration

    _wrap(LambdaFunction, "__init__", keep_configs)
    _wrap(LambdaFunction, "update_configuration", update_configs)
    _wrap(LambdaFunction, "get_configuration", add_configs)


# --------------------------------------------------------------------------------------------------
# SageMaker models and endpoints
# --------------------------------------------------------------------------------------------------


def _patch_sagemaker_requested_settings() -> None:
    """Keep a model's EnableNetworkIsolation and an endpoint's DeploymentConfig as requested.

    moto always reports ``EnableNetworkIsolation: false`` and drops the endpoint's ``DeploymentConfig``
    (DescribeEndpoint reports it as ``LastDeploymentConfig``); both are create-only in the provider,
    so the model and the endpoint were planned for replacement on every run.
    """
    from moto.sagemaker.responses import SageMakerResponse

    def keep_network_isolation(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_model(self: Any) -> Any:
            result = original(self)
            model = self.sagemaker_backend._models[self._get_param("ModelName")]
            model.enable_network_isolation = bool(self._get_param("EnableNetworkIsolation", False))
            return result

        return create_model

    def keep_deployment_config(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_endpoint(self: Any) -> Any:
            result = original(self)
            deployment_config = self._get_param("DeploymentConfig")
            if deployment_config:
                endpoint = self.sagemaker_backend.endpoints[self._get_param("EndpointName")]
                endpoint.deployment_config = deployment_config
            return result

        return create_endpoint

    _wrap(SageMakerResponse, "create_model", keep_network_isolation)
    _wrap(SageMakerResponse, "create_endpoint", keep_deployment_config)


# --------------------------------------------------------------------------------------------------
# EKS clusters, node groups, access entries and add-ons
# --------------------------------------------------------------------------------------------------

# The routes moto's EKS app lacks. Each only has to reach EKSResponse.dispatch: the action is then
# chosen from botocore's model of the raw (still percent-encoded) path, so ARNs containing "/" in a
# path segment are routed correctly even though these patterns overlap.
_EKS_EXTRA_URL_PATHS = (
    "{0}/clusters/(?P<name>[^/]+)/access-entries$",
    "{0}/clusters/(?P<name>[^/]+)/access-entries/(?P<principalArn>.+)$",
    "{0}/clusters/(?P<name>[^/]+)/addons$",
    "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)$",
)


def _eks_not_found(message: str, cluster_name: str | None = None, addon_name: str | None = None) -> Exception:
    """The ResourceNotFoundException moto's EKS raises, with AWS's message."""
    from moto.eks.exceptions import ResourceNotFoundException

    return ResourceNotFoundException(
        clusterName=cluster_name, nodegroupName=None, fargateProfileName=None, addonName=addon_name, message=message
    )


def _eks_cluster(response: Any, name: str) -> Any:
    """The moto cluster called ``name``, or the ResourceNotFoundException EKS answers with."""
    cluster = response.eks_backend.clusters.get(name)
    if cluster is None:
        raise _eks_not_found(f"No cluster found for name: {name}.", cluster_name=name)
    return cluster


def _patch_eks_cluster_and_nodegroup_settings() -> None:
    """Keep the cluster and node group settings moto's EKS drops.

    CreateCluster ignores ``accessConfig`` and ``upgradePolicy`` (the provider replaces the cluster when
    ``access_config`` differs), and CreateNodegroup does not pass ``updateConfig`` and
    ``nodeRepairConfig`` on to the node group moto builds (which has fields for both). Unset, AWS
    reports the defaults: CONFIG_MAP authentication with creator admin permissions, EXTENDED support.
    """
    from moto.eks.responses import EKSResponse

    def keep_cluster_settings(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_cluster(self: Any) -> Any:
            result = original(self)
            cluster = self.eks_backend.clusters[self._get_param("name")]
            access = self._get_param("accessConfig") or {}
            cluster.access_config = {
                "authenticationMode": access.get("authenticationMode", "CONFIG_MAP"),
                "bootstrapClusterCreatorAdminPermissions": access.get("bootstrapClusterCreatorAdminPermissions", True),
            }
            cluster.upgrade_policy = self._get_param("upgradePolicy") or {"supportType": "EXTENDED"}
            return result

        return create_cluster

    def keep_nodegroup_settings(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_nodegroup(self: Any) -> Any:
            result = original(self)
            cluster = self.eks_backend.clusters[self._get_param("name")]
            nodegroup = cluster.nodegroups[self._get_param("nodegroupName")]
            nodegroup.update_config = self._get_param("updateConfig") or {"maxUnavailable": 1}
            nodegroup.node_repair_config = self._get_param("nodeRepairConfig") or {"enabled": False}
            return result

        return create_nodegroup

    _wrap(EKSResponse, "create_cluster", keep_cluster_settings)
    _wrap(EKSResponse, "create_nodegroup", keep_nodegroup_settings)


def _patch_eks_unique_cluster_identity() -> None:
    """Give every EKS cluster its own OIDC issuer and API endpoint.

    moto draws both once, when ``moto.eks.models`` is imported, so every cluster of a region shares
    one issuer: a second cluster's IRSA OIDC provider then fails with EntityAlreadyExists (IAM keys
    OIDC providers by URL). EKS issues ``https://oidc.eks.<region>.amazonaws.com/id/<32 hex>`` per cluster.
    """
    from moto.eks.responses import EKSResponse
    from moto.moto_api._internal import mock_random

    def unique_identity(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_cluster(self: Any) -> Any:
            result = original(self)
            cluster = self.eks_backend.clusters[self._get_param("name")]
            cluster_id = mock_random.uuid4().hex.upper()
            cluster.identity = {"oidc": {"issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{cluster_id}"}}
            cluster.endpoint = f"https://{cluster_id}.gr7.{self.region}.eks.amazonaws.com"
            # The response holds the cluster object and is serialized later, so it shows these too.
            return result

        return create_cluster

    _wrap(EKSResponse, "create_cluster", unique_identity)


def _patch_eks_access_entries() -> None:
    """Add CreateAccessEntry, DescribeAccessEntry, DeleteAccessEntry and the access-policy actions.

    moto's EKS has no access entries at all (no route: HTTP 404). Entries and their associated access
    policies are kept per cluster and removed with it, as EKS does.
    """
    from moto.core.responses import ActionResult, EmptyResult
    from moto.core.utils import utcnow
    from moto.eks.exceptions import InvalidParameterException, ResourceInUseException
    from moto.eks.responses import EKSResponse
    from moto.moto_api._internal import mock_random

    def entries(response: Any, cluster_name: str) -> dict[str, dict[str, Any]]:
        return _store(response.eks_backend, "_emulator_access_entries").setdefault(cluster_name, {})

    def entry_for(response: Any) -> dict[str, Any]:
        cluster_name = _eks_cluster(response, response._get_param("name")).name
        principal_arn = response._get_param("principalArn")
        entry = entries(response, cluster_name).get(principal_arn)
        if entry is None:
            raise _eks_not_found(f"The specified principalArn could not be found: {principal_arn}.", cluster_name)
        return entry

    def default_username(principal_arn: str) -> str:
        # EKS maps a role to its assumed-role session ARN and anything else (a user) to its own ARN.
        _, partition, _, _, account, resource = principal_arn.split(":", 5)
        if resource.startswith("role/"):
            role_name = resource.rsplit("/", 1)[-1]
            return f"arn:{partition}:sts::{account}:assumed-role/{role_name}/{{{{SessionName}}}}"
        return principal_arn

    def public(entry: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in entry.items() if not key.startswith("_")}

    def create_access_entry(self: Any) -> ActionResult:
        cluster = _eks_cluster(self, self._get_param("name"))
        principal_arn = self._get_param("principalArn")
        if not principal_arn or principal_arn.count(":") < 5:
            raise InvalidParameterException(message=f"The principalArn parameter format is not valid: {principal_arn}")
        with _store_lock:
            store = entries(self, cluster.name)
            if principal_arn in store:
                message = f"The specified access entry resource is already in use on this cluster: {principal_arn}."
                raise ResourceInUseException(clusterName=cluster.name, message=message)
            now = utcnow()
            entry_type = self._get_param("type") or "STANDARD"
            resource = principal_arn.split(":", 5)[5]
            store[principal_arn] = {
                "clusterName": cluster.name,
                "principalArn": principal_arn,
                "kubernetesGroups": list(self._get_param("kubernetesGroups") or []),
                "accessEntryArn": (
                    f"{cluster.arn.replace(':cluster/', ':access-entry/')}/{resource.split('/', 1)[0]}/"
                    f"{principal_arn.split(':')[4]}/{resource.rsplit('/', 1)[-1]}/{mock_random.uuid4()}"
                ),
                "createdAt": now,
                "modifiedAt": now,
                "tags": dict(self._get_param("tags") or {}),
                "username": self._get_param("username") or default_username(principal_arn),
                "type": entry_type,
                "_policies": {},
            }
            return ActionResult({"accessEntry": public(store[principal_arn])})

    def describe_access_entry(self: Any) -> ActionResult:
        return ActionResult({"accessEntry": public(entry_for(self))})

    def delete_access_entry(self: Any) -> EmptyResult:
        entry = entry_for(self)
        with _store_lock:
            entries(self, entry["clusterName"]).pop(entry["principalArn"], None)
        return EmptyResult()

    def associate_access_policy(self: Any) -> ActionResult:
        entry = entry_for(self)
        policy_arn = self._get_param("policyArn")
        now = utcnow()
        with _store_lock:
            previous = entry["_policies"].get(policy_arn)
            policy = {
                "policyArn": policy_arn,
                "accessScope": self._get_param("accessScope") or {"type": "cluster"},
                "associatedAt": previous["associatedAt"] if previous else now,
                "modifiedAt": now,
            }
            entry["_policies"][policy_arn] = policy
        result = {"clusterName": entry["clusterName"], "principalArn": entry["principalArn"]}
        return ActionResult({**result, "associatedAccessPolicy": policy})

    def list_associated_access_policies(self: Any) -> ActionResult:
        entry = entry_for(self)
        policies = list(entry["_policies"].values())
        result = {"clusterName": entry["clusterName"], "principalArn": entry["principalArn"]}
        return ActionResult({**result, "associatedAccessPolicies": policies})

    def disassociate_access_policy(self: Any) -> EmptyResult:
        entry = entry_for(self)
        policy_arn = self._get_param("policyArn")
        with _store_lock:
            if entry["_policies"].pop(policy_arn, None) is None:
                raise _eks_not_found(f"The specified policyArn could not be found: {policy_arn}.", entry["clusterName"])
        return EmptyResult()

    for action in (
        create_access_entry,
        describe_access_entry,
        delete_access_entry,
        associate_access_policy,
        list_associated_access_policies,
        disassociate_access_policy,
    ):
        _add_action(EKSResponse, action.__name__, action)


def _patch_eks_addons() -> None:
    """Add CreateAddon, DescribeAddon and DeleteAddon to moto's EKS.

    moto's EKS has no add-ons (no route: HTTP 404). An add-on is ACTIVE as soon as it is created and
    gone as soon as it is deleted; add-ons are removed with their cluster, as EKS does.
    """
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.eks.exceptions import ResourceInUseException
    from moto.eks.responses import EKSResponse
    from moto.moto_api._internal import mock_random

    def addons(response: Any, cluster_name: str) -> dict[str, dict[str, Any]]:
        return _store(response.eks_backend, "_emulator_addons").setdefault(cluster_name, {})

    def addon_for(response: Any) -> dict[str, Any]:
        cluster_name = _eks_cluster(response, response._get_param("name")).name
        addon_name = response._get_param("addonName")
        addon = addons(response, cluster_name).get(addon_name)
        if addon is None:
            raise _eks_not_found(f"No addon: {addon_name} found in cluster: {cluster_name}", cluster_name, addon_name)
        return addon

    def create_addon(self: Any) -> ActionResult:
        cluster = _eks_cluster(self, self._get_param("name"))
        addon_name = self._get_param("addonName")
        with _store_lock:
            store = addons(self, cluster.name)
            if addon_name in store:
                message = f"Addon already exists with name: {addon_name}"
                raise ResourceInUseException(clusterName=cluster.name, addonName=addon_name, message=message)
            now = utcnow()
            addon: dict[str, Any] = {
                "addonName": addon_name,
                "clusterName": cluster.name,
                "status": "ACTIVE",
                "addonVersion": self._get_param("addonVersion") or "v1.0.0-eksbuild.1",
                "health": {"issues": []},
                "addonArn": f"{cluster.arn.replace(':cluster/', ':addon/')}/{addon_name}/{mock_random.uuid4()}",
                "createdAt": now,
                "modifiedAt": now,
                "tags": dict(self._get_param("tags") or {}),
            }
            for key in ("serviceAccountRoleArn", "configurationValues"):
                if self._get_param(key):
                    addon[key] = self._get_param(key)
            store[addon_name] = addon
        return ActionResult({"addon": addon})

    def describe_addon(self: Any) -> ActionResult:
        return ActionResult({"addon": addon_for(self)})

    def delete_addon(self: Any) -> ActionResult:
        addon = addon_for(self)
        with _store_lock:
            addons(self, addon["clusterName"]).pop(addon["addonName"], None)
        return ActionResult({"addon": {**addon, "status": "DELETING"}})

    for action in (create_addon, describe_addon, delete_addon):
        _add_action(EKSResponse, action.__name__, action)


def _patch_eks_routes_and_cleanup() -> None:
    """Route the added EKS actions to moto's EKS app, and forget a deleted cluster's entries and add-ons."""
    from moto.eks import urls
    from moto.eks.responses import EKSResponse

    handler = urls.url_paths["{0}/clusters$"]
    for path in _EKS_EXTRA_URL_PATHS:
        # moto builds its werkzeug routes from this dict each time a server creates its EKS app.
        urls.url_paths.setdefault(path, handler)

    def forget_cluster_children(original: Callable[..., Any]) -> Callable[..., Any]:
        def delete_cluster(self: Any) -> Any:
            result = original(self)
            name = self._get_param("name")
            with _store_lock:
                for store in ("_emulator_access_entries", "_emulator_addons"):
                    _store(self.eks_backend, store).pop(name, None)
            return result

        return delete_cluster

    _wrap(EKSResponse, "delete_cluster", forget_cluster_children)


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------


def _patch_one_request_at_a_time() -> None:
    """Handle the server's requests one at a time.

    moto's backends are plain dicts and lists without locks, and moto does not support concurrent
    access to them (its documentation says so), while its threaded server runs every request on a
    thread of its own, and the deploy test points two terraform processes (ten parallel operations
    each) and boto3 at one emulator. Requests take milliseconds and Python runs one thread at a time
    anyway, so serializing them costs almost nothing and rules interleaved updates out.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    def serialize(original: Callable[..., Any]) -> Callable[..., Any]:
        def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
            with _request_lock:
                # moto's responses are built in full here, before the lock is released.
                return original(self, environ, start_response)

        return __call__

    _wrap(DomainDispatcherApplication, "__call__", serialize)


def _patch_whole_responses() -> None:
    """Send each response (status line, headers and body) in one write.

    werkzeug writes the headers and the body of a response separately. Traced with strace, the
    provider's Go HTTP client now and then read the headers, found the body not there yet, dropped
    the connection and retried the request, which the emulator had already carried out: a repeated
    create or delete then failed (a NAT gateway's Elastic IP "already associated", a security group
    rule "not found"). A buffered writer, flushed once per response by werkzeug, sends it whole.
    """
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    # socketserver makes wfile a buffered writer of this size (0: unbuffered, one send per write).
    MotoRequestHandler.wbufsize = 1 << 20


def apply_patches() -> None:
    """Apply every patch once per process (safe to call repeatedly and from several threads)."""
    global _patched
    with _patch_lock:
        if _patched:
            return
        _patch_one_request_at_a_time()
        _patch_whole_responses()
        _patch_policy_statement_conditions()
        _patch_ec2_placement_groups()
        _patch_budgets()
        _patch_application_autoscaling()
        _patch_sagemaker()
        _patch_sagemaker_requested_settings()
        _patch_eks()
        _patch_eks_cluster_and_nodegroup_settings()
        _patch_eks_unique_cluster_identity()
        _patch_eks_access_entries()
        _patch_eks_addons()
        _patch_eks_routes_and_cleanup()
        _patch_ec2_launch_template_data_tags()
        _patch_ec2_security_group_rule_descriptions()
        _patch_ec2_security_group_rule_id_not_found()
        _patch_ec2_nat_gateway_client_token()
        _patch_autoscaling_lifecycle_hooks()
        _patch_lambda_function_configs()
        _patched = True


# --------------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------------


class Emulator:
    """A running moto server; stop it with ``stop()`` or by leaving a ``with`` block."""

    def __init__(self, server: Any, host: str, port: int) -> None:
        """Wrap an already started ``ThreadedMotoServer`` listening on ``host:port``."""
        self._server = server
        self.host = host
        self.port = port
        self._stopped = False

    @property
    def endpoint(self) -> str:
        """The URL every AWS client (boto3, the Terraform provider) should use."""
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget every resource in every account and region (moto's ``/moto-api/reset``)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def stop(self) -> None:
        """Shut the server down and join its thread; calling it again does nothing."""
        if not self._stopped:
            self._stopped = True
            self._server.stop()

    def __enter__(self) -> Emulator:
        """Return the running emulator."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the emulator, whatever happened in the block."""
        self.stop()

    def __repr__(self) -> str:
        """Show where the emulator listens."""
        return f"Emulator(endpoint={self.endpoint!r}, stopped={self._stopped})"


def start_emulator(port: int = 0) -> Emulator:
    """Patch moto and start it on 127.0.0.1:``port`` (``0``: a free port chosen by the OS).

    Returns once the socket is bound, so ``.endpoint`` is immediately usable. Use the result as a
    context manager, or call ``.stop()`` yourself.
    """
    from moto.server import ThreadedMotoServer

    apply_patches()
    # werkzeug logs one INFO line per request; keep warnings and tracebacks of failed requests, but
    # leave the level alone if the caller configured it.
    werkzeug_logger = logging.getLogger("werkzeug")
    if werkzeug_logger.level == logging.NOTSET:
        werkzeug_logger.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound_port = server.get_host_and_port()
    return Emulator(server, host, bound_port)


def terraform_provider_block(endpoint: str) -> dict[str, Any]:
    """Return the ``provider.aws`` settings (Terraform JSON) that point the provider at ``endpoint``.

    Static fake credentials and the ``skip_*`` switches keep the provider from calling STS, IMDS or
    the account-id lookup at start-up. ``max_retries = 3`` matters: moto answers an unimplemented action
    with HTTP 500, which the provider would otherwise retry for 10+ minutes before failing.
    """
    return {
        "region": REGION,
        "access_key": "test",
        "secret_key": "test",
        "skip_credentials_validation": True,
        # Typed string (not bool) in the 5.100.0 provider schema.
        "skip_metadata_api_check": "true",
        "skip_requesting_account_id": True,
        "skip_region_validation": True,
        "s3_use_path_style": True,
        "max_retries": 3,
        # `endpoints` is a set-nested block: Terraform JSON takes a list with one object.
        "endpoints": [{key: endpoint for key in PROVIDER_ENDPOINT_KEYS}],
    }


def _serve_forever(port: int) -> None:
    """Run the emulator until SIGINT or SIGTERM (the script entry point)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with start_emulator(port) as emulator:
        print(f"moto emulator listening on {emulator.endpoint}", flush=True)
        stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: ``python tests/support/moto_server.py --port N``."""
    parser = argparse.ArgumentParser(description="Local AWS emulator (patched moto) for Terraform tests.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    _serve_forever(parser.parse_args(argv).port)


if __name__ == "__main__":
    main()
