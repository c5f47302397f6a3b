"""The estimate of the real synthesized stacks (the session's ``stacks``, ``synth_dir`` and ``published``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from costs.estimate import estimate_stacks, load_stacks
from costs.model import Estimate
from stacks.matrix import MATRIX
from tests.support.synth_json import ENVIRONMENTS, names_of, resources


@pytest.fixture(scope="module")
def estimates(stacks: dict[str, dict[str, Any]]) -> dict[str, Estimate]:
    """The estimate of every environment of the default matrix, by name."""
    return {estimate.stack: estimate for estimate in estimate_stacks(stacks)}


def _lines(estimate: Estimate, component: str) -> list[str]:
    return [address for line in estimate.lines if line.component == component for address in line.addresses]


def test_every_environment_is_priced_completely(estimates: dict[str, Estimate]) -> None:
    assert list(estimates) == list(ENVIRONMENTS)
    for name, estimate in estimates.items():
        assert estimate.region == "us-east-1"
        assert estimate.unpriced == [], name
        assert estimate.unresolved == [], name
        assert estimate.price_date is not None and estimate.price_source == "us-east-1.json"


def test_dev_costs_less_than_staging_and_staging_less_than_prod(estimates: dict[str, Estimate]) -> None:
    dev, staging, prod = (estimates[name] for name in ("dev", "staging", "prod"))
    assert dev.total_min < staging.total_min < prod.total_min
    assert dev.total_max < staging.total_max < prod.total_max
    for estimate in estimates.values():
        assert estimate.total_min <= estimate.total_max


def test_the_components_match_the_resources(stacks: dict[str, dict[str, Any]], estimates: dict[str, Estimate]) -> None:
    nat = {env: _lines(estimates[env], "NAT gateways + public IPv4") for env in ENVIRONMENTS}
    assert len(resources(stacks["dev"], "aws_nat_gateway")) == 1
    assert len(resources(stacks["staging"], "aws_nat_gateway")) == 3
    for env, stack in stacks.items():
        gateways = {f"aws_nat_gateway.{name}" for name in resources(stack, "aws_nat_gateway")}
        addresses = {f"aws_eip.{name}" for name in resources(stack, "aws_eip")}
        assert set(nat[env]) == gateways | addresses, env
        assert _lines(estimates[env], "EKS control plane") == [
            f"aws_eks_cluster.{n}" for n in resources(stack, "aws_eks_cluster")
        ]
        interface = [
            n for n, c in resources(stack, "aws_vpc_endpoint").items() if c["vpc_endpoint_type"] == "Interface"
        ]
        assert _lines(estimates[env], "Interface endpoints") == [f"aws_vpc_endpoint.{n}" for n in interface], env
        keys = estimates[env].components()["KMS keys"][0]
        assert keys == pytest.approx(len(resources(stack, "aws_kms_key")) * 1.0), env
        groups = {f"aws_eks_node_group.{n}" for n in resources(stack, "aws_eks_node_group")}
        priced = set(_lines(estimates[env], "EKS CPU nodes") + _lines(estimates[env], "EKS GPU nodes"))
        assert priced == groups, env
    assert "Interface endpoints" not in estimates["dev"].components()


def test_gpu_capacity_rests_at_zero_and_is_priced_at_maximum(
    stacks: dict[str, dict[str, Any]], estimates: dict[str, Estimate]
) -> None:
    for env in ("staging", "prod"):
        entries = {address: entry for entry in estimates[env].scale_to_zero for address in entry.addresses}
        training = f"aws_autoscaling_group.{names_of(stacks[env], 'aws_autoscaling_group', 'training/asg')[0]}"
        gpu = f"aws_eks_node_group.{names_of(stacks[env], 'aws_eks_node_group', 'gpu-nodes/group/node-group')[0]}"
        assert set(entries) == {training, gpu}, env
        for entry in entries.values():
            assert entry.at_rest == 0.0 and entry.at_max_always_on > 0
        assert estimates[env].components()["GPU training cluster"][0] == 0.0
    staging, prod = estimates["staging"], estimates["prod"]
    # Staging trains on spot, prod on demand: the same node costs less in staging.
    assert "(spot)" in next(line.item for line in staging.lines if line.component == "GPU training cluster")
    assert "(on demand)" in next(line.item for line in prod.lines if line.component == "GPU training cluster")
    assert not estimates["dev"].scale_to_zero


def test_the_nightly_training_stop_is_found(stacks: dict[str, dict[str, Any]], estimates: dict[str, Estimate]) -> None:
    for env, estimate in estimates.items():
        stops = names_of(stacks[env], "aws_autoscaling_schedule", "training/nightly-scale-to-zero")
        found = [effect for effect in estimate.schedules if "training" in effect.target]
        assert len(found) == len(stops), env
        for effect in found:
            assert effect.bound_hours == 24.0 and effect.bound_cost is not None and effect.bound_cost > 0


def test_commitments_cover_the_sustained_part(estimates: dict[str, Estimate]) -> None:
    for env, estimate in estimates.items():
        kinds = {(c.component, c.kind) for c in estimate.commitments}
        assert ("RDS databases", "rds_reserved_instance") in kinds, env
        assert ("EKS CPU nodes", "ec2_compute_savings_plan") in kinds, env
        assert 0 < estimate.commitment_saving < estimate.total_min


def test_a_published_model_adds_its_endpoint_instances(
    published: dict[str, dict[str, Any]], estimates: dict[str, Estimate]
) -> None:
    with_model = {estimate.stack: estimate for estimate in estimate_stacks(published)}
    for env in ("staging", "prod"):
        lines = [line for line in with_model[env].lines if line.component == "SageMaker endpoints"]
        assert lines, env
        # Prod's standby in the secondary region is an endpoint of its own (docs/disaster-recovery.md).
        endpoints = names_of(published[env], "aws_sagemaker_endpoint")
        assert len(endpoints) == (2 if MATRIX[env].failover is not None else 1)
        assert all(any(f"aws_sagemaker_endpoint.{e}" in line.addresses for e in endpoints) for line in lines)
        assert all("ml.g5.xlarge" in line.item for line in lines)
        # Publishing adds the endpoint (and the alarms that watch it); nothing else changes.
        before, after = estimates[env].components(), with_model[env].components()
        assert after["SageMaker endpoints"][0] == pytest.approx(sum(line.at_min for line in lines))
        unchanged = set(before) - {"CloudWatch alarms"}
        assert {name: after[name] for name in unchanged} == {name: before[name] for name in unchanged}, env
        assert any(c.kind == "sagemaker_savings_plan" for c in with_model[env].commitments)
    assert (
        with_model["prod"].components()["SageMaker endpoints"][0]
        > with_model["staging"].components()["SageMaker endpoints"][0]
    )
    # Dev serves from a serverless endpoint: a usage price, no instance line.
    assert "SageMaker endpoints" not in with_model["dev"].components()
    assert any(u.name == "serverless inference compute" for u in with_model["dev"].usage)
    assert all(estimate.complete for estimate in with_model.values())


def test_the_synthesis_directory_gives_the_same_estimates_and_the_bootstrap_stack_apart(
    synth_dir: Path, estimates: dict[str, Estimate]
) -> None:
    started = time.perf_counter()
    from_directory = estimate_stacks(load_stacks(synth_dir))
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"estimating every synthesized stack took {elapsed:.2f} s"
    assert [e.stack for e in from_directory] == [*ENVIRONMENTS, "bootstrap"]
    bootstrap = from_directory[-1]
    assert bootstrap.account_level and bootstrap.complete and bootstrap.total_min > 0
    for estimate in from_directory[:-1]:
        assert not estimate.account_level
        assert estimate.lines == estimates[estimate.stack].lines
