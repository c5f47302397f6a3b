"""EKS: clusters, node groups, access entries and add-ons.

What moto 5.2.5 lacks or gets wrong for the hashicorp/aws 5.100.0 provider:

* ``CreateNodegroup`` stores a made-up ``remoteAccess {ec2SshKey: eksKeypair}`` when none was requested;
  ``remote_access`` is not a computed attribute in the provider, so it planned a replacement forever. The
  node group now keeps what was requested (nothing).

Found by deploying the platform's own stacks (``tests/test_emulator_deploy.py``):

* ``accessConfig`` and ``upgradePolicy`` of a cluster and ``updateConfig`` and ``nodeRepairConfig`` of a
  node group are dropped; they are now kept.
* Every cluster shares one OIDC issuer and API endpoint; each now gets its own.
* No cluster security group: ``resourcesVpcConfig`` lacks ``clusterSecurityGroupId`` and ``vpcId``. EKS's group
  is now created in moto's EC2, reported, and deleted with its cluster.
* Access entries and their access policies (``CreateAccessEntry``, ``DescribeAccessEntry``,
  ``DeleteAccessEntry``, ``AssociateAccessPolicy``, ``ListAssociatedAccessPolicies``,
  ``DisassociateAccessPolicy``) and add-ons (``CreateAddon``, ``DescribeAddon``, ``DeleteAddon``) do not
  exist; they are added, with their routes, and removed with their cluster.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from emulator.moto_helpers import add_action, backend_store, store_lock, wrap


def _patch_nodegroup_remote_access() -> None:
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

    wrap(Nodegroup, "__init__", keep_requested_remote_access)


# The routes moto's EKS app lacks. Each only has to reach EKSResponse.dispatch: the action is then
# chosen from botocore's model of the raw (still percent-encoded) path, so ARNs containing "/" in a
# path segment are routed correctly even though these patterns overlap.
_EXTRA_URL_PATHS = (
    "{0}/clusters/(?P<name>[^/]+)/access-entries$",
    "{0}/clusters/(?P<name>[^/]+)/access-entries/(?P<principalArn>.+)$",
    "{0}/clusters/(?P<name>[^/]+)/addons$",
    "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)$",
)


def _not_found(message: str, cluster_name: str | None = None, addon_name: str | None = None) -> Exception:
    """The ResourceNotFoundException moto's EKS raises, with AWS's message."""
    from moto.eks.exceptions import ResourceNotFoundException

    return ResourceNotFoundException(
        clusterName=cluster_name, nodegroupName=None, fargateProfileName=None, addonName=addon_name, message=message
    )


def _find_cluster(response: Any, name: str) -> Any:
    """The moto cluster called ``name``, or the ResourceNotFoundException EKS answers with."""
    cluster = response.eks_backend.clusters.get(name)
    if cluster is None:
        raise _not_found(f"No cluster found for name: {name}.", cluster_name=name)
    return cluster


def _patch_cluster_and_nodegroup_settings() -> None:
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

    wrap(EKSResponse, "create_cluster", keep_cluster_settings)
    wrap(EKSResponse, "create_nodegroup", keep_nodegroup_settings)


def _patch_unique_cluster_identity() -> None:
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

    wrap(EKSResponse, "create_cluster", unique_identity)


CLUSTER_SECURITY_GROUP_DESCRIPTION = (
    "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any "
    "managed workloads."
)
"""The description EKS gives the security group it creates for every cluster."""
# What EKS itself fills into resourcesVpcConfig; an update of the cluster's VPC settings does not remove it.
_EKS_OWNED_VPC_CONFIG = ("clusterSecurityGroupId", "vpcId")


def _patch_cluster_security_group() -> None:
    """Create the cluster security group EKS creates for every cluster, report it, and delete it with the cluster.

    EKS creates ``eks-cluster-sg-<cluster>-<10 digits>`` in the VPC of the cluster's subnets (all traffic from
    itself in, everything out; tagged with the cluster's name), attaches it to the control plane's network
    interfaces and to managed nodes, reports it as ``resourcesVpcConfig.clusterSecurityGroupId`` beside
    ``vpcId``, and deletes it when the cluster is deleted. moto reports neither, so a rule admitting the cluster
    group (the MLflow database's) had an empty source. A cluster whose subnets moto's EC2 does not know (made-up
    IDs, which EKS would refuse) gets no group: there is no VPC to put it in.
    """
    from moto.ec2.exceptions import InvalidSubnetIdError
    from moto.ec2.models import ec2_backends
    from moto.eks.responses import EKSResponse
    from moto.moto_api._internal import mock_random

    def ec2(response: Any) -> Any:
        return ec2_backends[response.current_account][response.region]

    def vpc_of(response: Any, subnet_ids: list[str]) -> str | None:
        try:
            vpc_ids = {ec2(response).get_subnet(subnet_id).vpc_id for subnet_id in subnet_ids}
        except InvalidSubnetIdError:
            return None
        return vpc_ids.pop() if len(vpc_ids) == 1 else None

    def add_group(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_cluster(self: Any) -> Any:
            result = original(self)
            cluster = self.eks_backend.clusters[self._get_param("name")]
            config = dict(cluster.resources_vpc_config or {})
            vpc_id = vpc_of(self, list(config.get("subnetIds") or []))
            if vpc_id is None:
                return result
            name = f"eks-cluster-sg-{cluster.name}-{mock_random.randint(10**9, 10**10 - 1)}"
            tags = {
                "Name": name,
                "aws:eks:cluster-name": cluster.name,
                f"kubernetes.io/cluster/{cluster.name}": "owned",
            }
            backend = ec2(self)
            group = backend.create_security_group(name, CLUSTER_SECURITY_GROUP_DESCRIPTION, vpc_id=vpc_id, tags=tags)
            backend.authorize_security_group_ingress(
                group.id, "-1", None, None, [], source_groups=[{"GroupId": group.id}], vpc_id=vpc_id
            )
            # The response holds the cluster object and is serialized later, so it shows the group too.
            cluster.resources_vpc_config = {**config, "clusterSecurityGroupId": group.id, "vpcId": vpc_id}
            return result

        return create_cluster

    def keep_group(original: Callable[..., Any]) -> Callable[..., Any]:
        def update_cluster_config(self: Any) -> Any:
            cluster = self.eks_backend.clusters.get(self._get_param("name"))
            before = dict(cluster.resources_vpc_config or {}) if cluster is not None else {}
            result = original(self)
            if cluster is not None:
                owned = {key: before[key] for key in _EKS_OWNED_VPC_CONFIG if key in before}
                cluster.resources_vpc_config = {**(cluster.resources_vpc_config or {}), **owned}
            return result

        return update_cluster_config

    def delete_group(original: Callable[..., Any]) -> Callable[..., Any]:
        def delete_cluster(self: Any) -> Any:
            cluster = self.eks_backend.clusters.get(self._get_param("name"))
            group_id = (cluster.resources_vpc_config or {}).get("clusterSecurityGroupId") if cluster else None
            result = original(self)
            if group_id and ec2(self).get_security_group_from_id(group_id) is not None:
                ec2(self).delete_security_group(group_id=group_id)
            return result

        return delete_cluster

    wrap(EKSResponse, "create_cluster", add_group)
    wrap(EKSResponse, "update_cluster_config", keep_group)
    wrap(EKSResponse, "delete_cluster", delete_group)


def _patch_access_entries() -> None:
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
        return backend_store(response.eks_backend, "_emulator_access_entries").setdefault(cluster_name, {})

    def entry_for(response: Any) -> dict[str, Any]:
        cluster_name = _find_cluster(response, response._get_param("name")).name
        principal_arn = response._get_param("principalArn")
        entry = entries(response, cluster_name).get(principal_arn)
        if entry is None:
            raise _not_found(f"The specified principalArn could not be found: {principal_arn}.", cluster_name)
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
        cluster = _find_cluster(self, self._get_param("name"))
        principal_arn = self._get_param("principalArn")
        if not principal_arn or principal_arn.count(":") < 5:
            raise InvalidParameterException(message=f"The principalArn parameter format is not valid: {principal_arn}")
        with store_lock:
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
        with store_lock:
            entries(self, entry["clusterName"]).pop(entry["principalArn"], None)
        return EmptyResult()

    def associate_access_policy(self: Any) -> ActionResult:
        entry = entry_for(self)
        policy_arn = self._get_param("policyArn")
        now = utcnow()
        with store_lock:
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
        with store_lock:
            if entry["_policies"].pop(policy_arn, None) is None:
                raise _not_found(f"The specified policyArn could not be found: {policy_arn}.", entry["clusterName"])
        return EmptyResult()

    for action in (
        create_access_entry,
        describe_access_entry,
        delete_access_entry,
        associate_access_policy,
        list_associated_access_policies,
        disassociate_access_policy,
    ):
        add_action(EKSResponse, action.__name__, action)


def _patch_addons() -> None:
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
        return backend_store(response.eks_backend, "_emulator_addons").setdefault(cluster_name, {})

    def addon_for(response: Any) -> dict[str, Any]:
        cluster_name = _find_cluster(response, response._get_param("name")).name
        addon_name = response._get_param("addonName")
        addon = addons(response, cluster_name).get(addon_name)
        if addon is None:
            raise _not_found(f"No addon: {addon_name} found in cluster: {cluster_name}", cluster_name, addon_name)
        return addon

    def create_addon(self: Any) -> ActionResult:
        cluster = _find_cluster(self, self._get_param("name"))
        addon_name = self._get_param("addonName")
        with store_lock:
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
        with store_lock:
            addons(self, addon["clusterName"]).pop(addon["addonName"], None)
        return ActionResult({"addon": {**addon, "status": "DELETING"}})

    for action in (create_addon, describe_addon, delete_addon):
        add_action(EKSResponse, action.__name__, action)


def _patch_routes_and_cleanup() -> None:
    """Route the added EKS actions to moto's EKS app, and forget a deleted cluster's entries and add-ons."""
    from moto.eks import urls
    from moto.eks.responses import EKSResponse

    handler = urls.url_paths["{0}/clusters$"]
    for path in _EXTRA_URL_PATHS:
        # moto builds its werkzeug routes from this dict each time a server creates its EKS app.
        urls.url_paths.setdefault(path, handler)

    def forget_cluster_children(original: Callable[..., Any]) -> Callable[..., Any]:
        def delete_cluster(self: Any) -> Any:
            result = original(self)
            name = self._get_param("name")
            with store_lock:
                for store in ("_emulator_access_entries", "_emulator_addons"):
                    backend_store(self.eks_backend, store).pop(name, None)
            return result

        return delete_cluster

    wrap(EKSResponse, "delete_cluster", forget_cluster_children)


def apply() -> None:
    """Apply the EKS patches (once per process: see ``emulator.server.apply_patches``)."""
    _patch_nodegroup_remote_access()
    _patch_cluster_and_nodegroup_settings()
    _patch_unique_cluster_identity()
    _patch_cluster_security_group()
    _patch_access_entries()
    _patch_addons()
    _patch_routes_and_cleanup()
