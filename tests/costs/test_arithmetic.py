"""The estimator's arithmetic on small hand-built stacks with known prices (tests/costs/builders.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.costs.builders import HOURS, estimate, node_group, template, training_group

NAT = {
    "aws_nat_gateway": {"nat": {"allocation_id": "${aws_eip.ip.id}", "subnet_id": "${aws_subnet.public.id}"}},
    "aws_eip": {"ip": {"domain": "vpc"}},
}


def test_one_nat_gateway_and_its_address(prices_dir: Path) -> None:
    result = estimate(prices_dir, NAT)
    assert result.complete
    assert result.total_min == pytest.approx((0.045 + 0.005) * HOURS)
    assert result.total_max == result.total_min
    assert result.components() == {"NAT gateways + public IPv4": (pytest.approx(36.5), pytest.approx(36.5))}
    assert {(item.name, item.price) for item in result.usage if item.component.startswith("NAT")} == {
        ("data processed", 0.01)
    }


def test_an_elastic_ip_of_no_nat_gateway_is_its_own_component(prices_dir: Path) -> None:
    result = estimate(prices_dir, {"aws_eip": {"ip": {"domain": "vpc"}}})
    assert result.components() == {
        "Public IPv4 addresses": (pytest.approx(0.005 * HOURS), pytest.approx(0.005 * HOURS))
    }


def test_eks_control_plane_standard_and_extended_support(prices_dir: Path) -> None:
    standard = estimate(
        prices_dir, {"aws_eks_cluster": {"c": {"name": "a", "upgrade_policy": {"support_type": "STANDARD"}}}}
    )
    extended = estimate(
        prices_dir, {"aws_eks_cluster": {"c": {"name": "b", "upgrade_policy": {"support_type": "EXTENDED"}}}}
    )
    assert standard.total_min == extended.total_min == pytest.approx(0.1 * HOURS)
    assert "$438.00/month" in extended.lines[0].detail
    assert "EXTENDED" not in standard.lines[0].detail


def test_interface_endpoints_are_priced_per_subnet_and_gateway_endpoints_are_free(prices_dir: Path) -> None:
    subnets = ["${aws_subnet.a.id}", "${aws_subnet.b.id}", "${aws_subnet.c.id}"]
    result = estimate(
        prices_dir,
        {
            "aws_vpc_endpoint": {
                "ecr": {"vpc_endpoint_type": "Interface", "subnet_ids": subnets},
                "logs": {"vpc_endpoint_type": "Interface", "subnet_ids": subnets[:2]},
                "s3": {"vpc_endpoint_type": "Gateway", "route_table_ids": ["${aws_route_table.a.id}"]},
            }
        },
    )
    assert result.total_min == pytest.approx(5 * 0.01 * HOURS)
    assert result.lines[0].addresses == ("aws_vpc_endpoint.ecr", "aws_vpc_endpoint.logs")


def test_a_node_group_at_rest_and_at_maximum(prices_dir: Path) -> None:
    resources = {
        "aws_launch_template": {"lt": template(50)},
        "aws_eks_node_group": {"cpu": node_group(["m6i.xlarge"], 2, 6, desired=3)},
    }
    result = estimate(prices_dir, resources)
    node_month = 0.2 * HOURS + 50 * 0.08
    assert result.complete
    assert result.components()["EKS CPU nodes"] == (pytest.approx(3 * node_month), pytest.approx(6 * node_month))
    assert not result.scale_to_zero
    # Without a desired size the group rests at its minimum; without a launch template its disk_size is gp2.
    resources["aws_eks_node_group"]["cpu"] = node_group(["m6i.xlarge"], 2, 6, disk_size=30)
    del resources["aws_eks_node_group"]["cpu"]["launch_template"]
    result = estimate(prices_dir, resources)
    assert result.total_min == pytest.approx(2 * (0.2 * HOURS + 30 * 0.1))


def test_a_spot_gpu_node_group_rests_at_zero(prices_dir: Path) -> None:
    resources = {
        "aws_launch_template": {"lt": template(100)},
        "aws_eks_node_group": {"gpu": node_group(["g5.xlarge"], 0, 4, desired=0, capacity_type="SPOT")},
    }
    result = estimate(prices_dir, resources)
    node_month = 1.0 * (1 - 0.6) * HOURS + 100 * 0.08
    assert result.components()["EKS GPU nodes"] == (0.0, pytest.approx(4 * node_month))
    [entry] = result.scale_to_zero
    assert (entry.at_rest, entry.saving) == (0.0, pytest.approx(4 * node_month))
    assert "$1.00/h on demand" in entry.per_node_hour and "$0.40/h at typical spot" in entry.per_node_hour
    assert not result.commitments, "spot capacity is not covered by a commitment"


@pytest.mark.parametrize(
    ("on_demand_percentage", "base", "on_demand_nodes"),
    [(100, 0, 4), (0, 0, 0), (50, 1, 3)],  # 50 % above a base of 1: 1 + ceil(3 x 0.5) on demand
)
def test_training_group_on_demand_and_spot_shares(
    prices_dir: Path, on_demand_percentage: int, base: int, on_demand_nodes: int
) -> None:
    resources = {
        "aws_launch_template": {"lt": template(100)},
        "aws_autoscaling_group": {"asg": training_group(4, on_demand_percentage, base)},
    }
    result = estimate(prices_dir, resources)
    spot_nodes = 4 - on_demand_nodes
    expected = (on_demand_nodes * 5.0 + spot_nodes * 5.0 * 0.4) * HOURS + 4 * 100 * 0.08
    assert result.complete
    assert result.components()["GPU training cluster"] == (0.0, pytest.approx(expected))
    assert result.scale_to_zero[0].at_max_always_on == pytest.approx(expected)
    assert "g6.12xlarge" in result.lines[0].detail


def test_an_instance_type_missing_from_the_table_is_reported_never_zero(prices_dir: Path) -> None:
    resources = {
        "aws_launch_template": {"lt": template(50)},
        "aws_eks_node_group": {"cpu": node_group(["m6i.xlarge", "x9z.large"], 1, 2)},
    }
    result = estimate(prices_dir, resources)
    assert not result.complete
    assert [(u.address, u.what) for u in result.unpriced] == [("aws_eks_node_group.cpu", "EC2 instance type x9z.large")]
    assert not result.lines, "a group that may launch an unpriced type is left out, not priced at zero"


def test_a_region_without_a_price_table_is_reported(prices_dir: Path) -> None:
    result = estimate(prices_dir, NAT, region="ap-south-2")
    assert not result.lines and not result.complete
    assert "ap-south-2" in result.unpriced[0].what and "us-east-1" in result.unpriced[0].what


def test_a_count_given_as_a_reference_is_unresolved(prices_dir: Path) -> None:
    resources = {
        "aws_launch_template": {"lt": template(50)},
        "aws_eks_node_group": {"cpu": node_group(["m6i.xlarge"], "${var.min}", 3)},
        "aws_kms_key": {"k": {"count": "${length(var.keys)}"}},
    }
    result = estimate(prices_dir, resources)
    assert {(u.address, u.field, u.value) for u in result.unresolved} == {
        ("aws_eks_node_group.cpu", "scaling_config.min_size", "${var.min}"),
        ("aws_kms_key.k", "count", "${length(var.keys)}"),
    }
    assert not result.lines


def test_multi_az_doubles_the_instance_and_the_storage(prices_dir: Path) -> None:
    database = {"engine": "postgres", "instance_class": "db.m7g.large", "allocated_storage": 50, "storage_type": "gp3"}
    single = estimate(prices_dir, {"aws_db_instance": {"db": {**database, "multi_az": False}}})
    multi = estimate(
        prices_dir, {"aws_db_instance": {"db": {**database, "multi_az": True, "max_allocated_storage": 500}}}
    )
    assert single.total_min == pytest.approx(0.2 * HOURS + 50 * 0.1)
    assert multi.total_min == pytest.approx(2 * single.total_min)
    growth = [u for u in multi.usage if u.name == "storage growth"]
    assert [(u.price, "500 GB" in u.basis) for u in growth] == [(pytest.approx(0.2), True)]
    managed = estimate(prices_dir, {"aws_db_instance": {"db": {**database, "manage_master_user_password": True}}})
    assert managed.total_min == pytest.approx(single.total_min + 0.4)


def test_commitments_cover_what_runs_at_rest_on_demand(prices_dir: Path) -> None:
    resources = {
        "aws_launch_template": {"lt": template(50)},
        "aws_eks_node_group": {"cpu": node_group(["m6i.xlarge"], 3, 6)},
        "aws_db_instance": {
            "db": {"instance_class": "db.m7g.large", "allocated_storage": 20, "storage_type": "gp3", "multi_az": True}
        },
        "aws_sagemaker_endpoint": {
            "e": {"name": "e", "endpoint_config_name": "${aws_sagemaker_endpoint_configuration.c.name}"}
        },
        "aws_sagemaker_endpoint_configuration": {
            "c": {
                "production_variants": [
                    {"variant_name": "v", "instance_type": "ml.g5.xlarge", "initial_instance_count": 2}
                ]
            }
        },
    }
    result = estimate(prices_dir, resources)
    savings = {c.component: (c.covered, c.saving) for c in result.commitments}
    assert savings == {
        "EKS CPU nodes": (pytest.approx(3 * 0.2 * HOURS), pytest.approx(3 * 0.2 * HOURS * 0.25)),
        "RDS databases": (pytest.approx(2 * 0.2 * HOURS), pytest.approx(2 * 0.2 * HOURS * 0.3)),
        "SageMaker endpoints": (pytest.approx(2 * 1.5 * HOURS), pytest.approx(2 * 1.5 * HOURS * 0.2)),
    }
    assert result.commitment_saving == pytest.approx(sum(saving for _, saving in savings.values()))


def test_sagemaker_variants_follow_their_scaling_target_and_serverless_is_usage(prices_dir: Path) -> None:
    resources = {
        "aws_sagemaker_endpoint": {
            "e": {"name": "e", "endpoint_config_name": "${aws_sagemaker_endpoint_configuration.c.name}"},
            "s": {"name": "s", "endpoint_config_name": "${aws_sagemaker_endpoint_configuration.serverless.name}"},
        },
        "aws_sagemaker_endpoint_configuration": {
            "c": {
                "production_variants": [
                    {"variant_name": "primary", "instance_type": "ml.g5.xlarge", "initial_instance_count": 2}
                ]
            },
            "serverless": {
                "production_variants": [
                    {"variant_name": "primary", "serverless_config": {"memory_size_in_mb": 2048, "max_concurrency": 5}}
                ]
            },
            "unused": {"production_variants": [{"variant_name": "primary", "instance_type": "ml.g5.xlarge"}]},
        },
        "aws_appautoscaling_target": {
            "t": {
                "resource_id": "endpoint/${aws_sagemaker_endpoint.e.name}/variant/primary",
                "min_capacity": 2,
                "max_capacity": 6,
            }
        },
    }
    result = estimate(prices_dir, resources)
    assert result.components() == {
        "SageMaker endpoints": (pytest.approx(2 * 1.5 * HOURS), pytest.approx(6 * 1.5 * HOURS))
    }
    assert [line.addresses for line in result.lines] == [("aws_sagemaker_endpoint.e", "aws_appautoscaling_target.t")]
    assert {u.name for u in result.usage} == {"serverless inference compute", "serverless inference data"}


def test_served_models_hold_gpu_nodes(prices_dir: Path) -> None:
    deployment = {
        "metadata": {"name": "chat", "namespace": "model-chat"},
        "spec": {
            "replicas": "1",
            "template": {
                "spec": {"container": [{"name": "server", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}
            },
        },
    }
    autoscaler = {
        "metadata": {"name": "chat", "namespace": "model-chat"},
        "spec": {"min_replicas": 2, "max_replicas": 4, "scale_target_ref": {"kind": "Deployment", "name": "chat"}},
    }
    resources = {
        "aws_launch_template": {"lt": template(100)},
        "aws_eks_node_group": {"gpu": node_group(["g5.xlarge"], 0, 10)},
        "kubernetes_deployment_v1": {"chat": deployment},
        "kubernetes_horizontal_pod_autoscaler_v2": {"chat": autoscaler},
    }
    result = estimate(prices_dir, resources)
    node_month = 1.0 * HOURS + 100 * 0.08
    assert result.total_min == pytest.approx(2 * node_month)
    assert result.scale_to_zero[0].at_rest == pytest.approx(2 * node_month)
    del resources["aws_eks_node_group"]
    assert "GPU node group" in estimate(prices_dir, resources).unpriced[0].what


def test_keys_secrets_alarms_load_balancers_and_web_acls(prices_dir: Path) -> None:
    alb = {"metadata": {"name": "a", "namespace": "n"}, "spec": {"ingress_class_name": "alb"}}
    grouped = {
        "metadata": {"name": "b", "annotations": {"alb.ingress.kubernetes.io/group.name": "shared"}},
        "spec": {"ingress_class_name": "alb"},
    }
    resources = {
        "aws_kms_key": {"a": {"enable_key_rotation": True}, "b": {"count": 2}},
        "aws_secretsmanager_secret": {"s": {"name": "s", "replica": [{"region": "us-west-2"}]}},
        "aws_cloudwatch_metric_alarm": {
            "standard": {"period": 60},
            "fast": {"period": 10},
            "math": {
                "metric_query": [
                    {"id": "a", "metric": {"period": 60}},
                    {"id": "b", "metric": {"period": 300}},
                    {"id": "e", "expression": "a+b"},
                ]
            },
        },
        "aws_cloudwatch_composite_alarm": {"c": {"alarm_name": "c"}},
        "kubernetes_ingress_v1": {
            "a": alb,
            "b": grouped,
            "c": {**grouped, "metadata": {"name": "c", "annotations": grouped["metadata"]["annotations"]}},
            "nginx": {"spec": {"ingress_class_name": "nginx"}},
        },
        "aws_lb": {"n": {"load_balancer_type": "network"}},
        "aws_wafv2_web_acl": {"w": {"name": "w", "rule": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}},
    }
    components = estimate(prices_dir, resources).components()
    assert components["KMS keys"][0] == pytest.approx(3.0)
    assert components["Secrets Manager"][0] == pytest.approx(0.8)
    assert components["CloudWatch alarms"][0] == pytest.approx(0.1 + 0.3 + 2 * 0.1 + 0.5)
    assert components["Load balancers"][0] == pytest.approx((0.03 + 2 * 0.02) * HOURS)
    assert components["WAF"][0] == pytest.approx(5 + 3 * 1)


def test_usage_based_items_are_listed_not_summed(prices_dir: Path) -> None:
    result = estimate(
        prices_dir, {"aws_s3_bucket": {"a": {}, "b": {}}, "aws_cloudwatch_log_group": {"l": {"retention_in_days": 30}}}
    )
    assert result.total_min == 0.0 and not result.lines
    assert {(u.component, u.basis) for u in result.usage} == {
        ("S3", "2 buckets"),
        ("CloudWatch Logs", "1 log group kept 30 days"),
    }
