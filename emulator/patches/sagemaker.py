"""SageMaker: models, endpoint configurations and endpoints.

What moto 5.2.5 gets wrong for the hashicorp/aws 5.100.0 provider:

* ``DescribeModel`` returns ``VpcConfig: {}`` and ``DescribeEndpointConfig`` / ``DescribeEndpoint`` return
  ``DataCaptureConfig: {}`` when none was set; the provider reads those as configured (empty) blocks and
  plans a replacement forever. They are dropped from the responses.
* Endpoint-config validation rejects current GPU instance types (ml.g5, ml.g6, ml.g6e, ml.p4d, ml.p5);
  they are accepted in addition to moto's list.
* A model's ``EnableNetworkIsolation`` and an endpoint's deployment configuration are not kept (found by
  deploying the platform's own stacks, ``tests/test_emulator_deploy.py``).
* ``DeleteEndpoint`` leaves the Application Auto Scaling targets and policies of the endpoint's variants; SageMaker
  deregisters them (found by the idle policy's ``delete_endpoint``, ``tests/sagemaker/test_idle_emulator.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.moto_helpers import store_lock, strip_empty, wrap

# GPU families the platform serves on that moto 5.2.5's endpoint-config validation does not list.
_SAGEMAKER_SIZES = ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge")
EXTRA_SAGEMAKER_INSTANCE_TYPES: frozenset[str] = frozenset(
    [f"ml.{family}.{size}" for family in ("g5", "g6", "g6e") for size in _SAGEMAKER_SIZES]
    + ["ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p5.48xlarge", "ml.p5e.48xlarge"]
)


def _patch_empty_configs_and_gpu_types() -> None:
    """Drop empty VpcConfig/DataCaptureConfig from describes; accept current GPU instance types."""
    from moto.sagemaker.models import FakeEndpointConfig
    from moto.sagemaker.responses import SageMakerResponse

    wrap(SageMakerResponse, "describe_model", strip_empty(("VpcConfig",)))
    wrap(SageMakerResponse, "describe_endpoint_config", strip_empty(("DataCaptureConfig",)))
    wrap(SageMakerResponse, "describe_endpoint", strip_empty(("DataCaptureConfig",)))

    def accept_gpu_types(original: Callable[..., Any]) -> Callable[..., Any]:
        def validate_instance_type(self: Any, instance_type: str) -> None:
            if instance_type in EXTRA_SAGEMAKER_INSTANCE_TYPES:
                return
            original(self, instance_type)

        return validate_instance_type

    wrap(FakeEndpointConfig, "validate_instance_type", accept_gpu_types)


def _patch_requested_settings() -> None:
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

    wrap(SageMakerResponse, "create_model", keep_network_isolation)
    wrap(SageMakerResponse, "create_endpoint", keep_deployment_config)


def _patch_delete_endpoint_deregisters_scaling() -> None:
    """Deleting an endpoint deregisters its variants' scalable targets and deletes their scaling policies.

    SageMaker's guide ("Delete endpoints configured for auto scaling") says Application Auto Scaling deregisters
    the variants of a deleted endpoint; moto 5.2.5 keeps them, so a refresh after an endpoint was deleted outside
    Terraform still found its scaling.
    """
    from moto.applicationautoscaling.models import applicationautoscaling_backends
    from moto.sagemaker.models import SageMakerModelBackend

    def deregister_scaling(original: Callable[..., Any]) -> Callable[..., Any]:
        def delete_endpoint(self: Any, endpoint_name: str) -> None:
            original(self, endpoint_name)
            scaling = applicationautoscaling_backends[self.account_id][self.region_name]
            prefix = f"endpoint/{endpoint_name}/variant/"

            def of_endpoint(item: Any) -> bool:
                return bool(item.service_namespace == "sagemaker" and item.resource_id.startswith(prefix))

            with store_lock:
                for targets in scaling.targets.values():
                    for resource_id in [r for r, target in targets.items() if of_endpoint(target)]:
                        del targets[resource_id]
                for key in [k for k, policy in scaling.policies.items() if of_endpoint(policy)]:
                    del scaling.policies[key]

        return delete_endpoint

    wrap(SageMakerModelBackend, "delete_endpoint", deregister_scaling)


def apply() -> None:
    """Apply the SageMaker patches (once per process: see ``emulator.server.apply_patches``)."""
    _patch_empty_configs_and_gpu_types()
    _patch_requested_settings()
    _patch_delete_endpoint_deregisters_scaling()
