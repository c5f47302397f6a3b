"""EC2: placement groups, launch template data, security group rules and NAT gateways.

What moto 5.2.5 lacks or gets wrong for the hashicorp/aws 5.100.0 provider:

* ``CreatePlacementGroup`` / ``DescribePlacementGroups`` / ``DeletePlacementGroup`` are not implemented
  (moto raises ``NotImplementedError`` -> HTTP 500). They are added as EC2 actions backed by an in-memory
  store on each account/region EC2 backend; tags live in moto's own EC2 tag store, so
  ``CreateTags``/``DeleteTags``/``DescribeTags`` work on ``pg-`` ids too.
* A launch template's own tags leak into its data's ``TagSpecifications``, so the provider planned a new
  template version forever; they no longer do.
* Rules that reference a security group report no description; they now report the one they were given.
* Revoking an unknown security group rule ID answers ``InvalidPermission.NotFound`` instead of
  ``InvalidSecurityGroupRuleId.NotFound``, which the provider takes for "already deleted".
* ``CreateNatGateway`` ignores its ClientToken, so a retried request created a second gateway.
* The first subnet created by zone ID, in any VPC, is reported as its zone's default subnet with
  ``MapPublicIpOnLaunch`` on, which cost the provider a ModifySubnetAttribute and a 10-second wait.

All but the first were found by deploying the platform's own stacks (``tests/test_emulator_deploy.py``).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

from emulator.moto_helpers import add_action, backend_store, store_lock, tag_dict, tag_list, wrap

_PLACEMENT_STRATEGIES = ("cluster", "spread", "partition")
_SPREAD_LEVELS = ("host", "rack")


def _patch_placement_groups() -> None:
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
        return backend_store(response.ec2_backend, "_emulator_placement_groups")

    def render(response: Any, group: dict[str, Any]) -> dict[str, Any]:
        tags = response.ec2_backend.tags.get(group["GroupId"], {})
        return {**group, "Tags": tag_list(tags)}

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
        with store_lock:
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
        with store_lock:
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
        with store_lock:
            group = groups(self).pop(name, None)
        if group is None:
            raise unknown(name)
        self.ec2_backend.tags.pop(group["GroupId"], None)
        return EmptyResult()

    add_action(EC2Response, "create_placement_group", create_placement_group)
    add_action(EC2Response, "describe_placement_groups", describe_placement_groups)
    add_action(EC2Response, "delete_placement_group", delete_placement_group)


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
    tags = tag_dict(group.get("Tags"))
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


def _patch_launch_template_data_tags() -> None:
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

    wrap(LaunchTemplates, "create_launch_template", keep_requested_data_tags)


def _patch_security_group_rule_descriptions() -> None:
    """Report the description of rules that reference a security group.

    moto reads a rule's description from its CIDR range only; for a rule whose source is another
    (or the same) security group the description lives on the group pair, so it came back empty.
    """
    from moto.ec2.models.security_groups import SecurityGroupRule

    original = SecurityGroupRule.description

    def description(self: Any) -> str | None:
        return original.fget(self) or (self.source_group or {}).get("Description")

    SecurityGroupRule.description = property(description, doc=original.__doc__)


def _patch_security_group_rule_id_not_found() -> None:
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

    wrap(SecurityGroupBackend, "revoke_security_group_ingress", check_rule_ids("ingress"))
    wrap(SecurityGroupBackend, "revoke_security_group_egress", check_rule_ids("egress"))


def _patch_nat_gateway_client_token() -> None:
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
            with store_lock:
                tokens = backend_store(self.ec2_backend, "_emulator_nat_gateway_tokens")
                existing = self.ec2_backend.nat_gateways.get(tokens.get(token, ""))
                if existing is not None:
                    return ActionResult({"ClientToken": token, "NatGateway": existing})
                result = original(self)
                tokens[token] = result.result["NatGateway"].id
            return ActionResult({"ClientToken": token, **result.result})

        return create_nat_gateway

    wrap(NatGateways, "create_nat_gateway", honor_client_token)


def _patch_subnets_of_other_vpcs_are_not_default() -> None:
    """Report a subnet of a VPC other than the default VPC as no default subnet, as EC2 does.

    moto makes the first subnet it stores under an availability zone its "default for AZ" subnet, with
    ``MapPublicIpOnLaunch`` on. A subnet created by zone ID is stored under no zone (``None``), so the
    first one of the region, in whatever VPC, reported ``DefaultForAz`` and ``MapPublicIpOnLaunch``
    true. EC2 keeps both false on every subnet but the default VPC's own; the provider, seeing
    ``true`` where the configuration says ``false``, called ModifySubnetAttribute and then waited
    the 10 seconds its waiter always waits before checking it.
    """
    from moto.ec2.models.subnets import SubnetBackend

    def only_in_the_default_vpc(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_subnet(self: Any, vpc_id: str, *args: Any, **kwargs: Any) -> Any:
            subnet = original(self, vpc_id, *args, **kwargs)
            if not self.get_vpc(vpc_id).is_default:
                subnet.default_for_az = False
                subnet.map_public_ip_on_launch = False
            return subnet

        return create_subnet

    wrap(SubnetBackend, "create_subnet", only_in_the_default_vpc)


def apply() -> None:
    """Apply the EC2 patches (once per process: see ``emulator.server.apply_patches``)."""
    _patch_placement_groups()
    _patch_launch_template_data_tags()
    _patch_security_group_rule_descriptions()
    _patch_security_group_rule_id_not_found()
    _patch_nat_gateway_client_token()
    _patch_subnets_of_other_vpcs_are_not_default()
