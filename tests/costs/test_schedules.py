"""Scheduled scaling: cron read over a week, night and weekend stops, starts, endpoint parking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from costs.schedules import CronError, weekly_minutes
from tests.costs.builders import HOURS, estimate, node_group, template, training_group

DAY = 24 * 60
MONDAY, FRIDAY, SATURDAY = 1 * DAY, 5 * DAY, 6 * DAY


def test_unix_and_aws_cron_name_the_same_minutes() -> None:
    every_evening = weekly_minutes("0 20 * * *")
    assert every_evening == [day * DAY + 20 * 60 for day in range(7)]
    weekdays = weekly_minutes("30 7 * * 1-5")
    assert weekdays == [day * DAY + 7 * 60 + 30 for day in range(1, 6)]
    assert weekly_minutes("cron(30 7 ? * MON-FRI *)") == weekdays
    assert weekly_minutes("cron(30 7 ? * 2-6 *)") == weekdays, "AWS numbers Sunday 1"
    assert weekly_minutes("0 0 * * 0") == weekly_minutes("0 0 * * 7") == [0]
    assert weekly_minutes("*/30 9 * * SAT") == [SATURDAY + 9 * 60, SATURDAY + 9 * 60 + 30]


@pytest.mark.parametrize("expression", ["0 20 1 * *", "0 20 * 6 *", "cron(0 20 L * ? *)", "0 25 * * *", "0 20 * *"])
def test_schedules_that_are_not_weekly_are_refused(expression: str) -> None:
    with pytest.raises(CronError):
        weekly_minutes(expression)


def _schedule(group: str, recurrence: str, **sizes: int) -> dict[str, Any]:
    return {"autoscaling_group_name": f"${{{group}.name}}", "recurrence": recurrence, "time_zone": "Etc/UTC", **sizes}


def _asg(minimum: int, maximum: int) -> dict[str, Any]:
    return {
        "aws_launch_template": {"lt": template(100)},
        "aws_autoscaling_group": {"asg": training_group(maximum, 100, minimum=minimum)},
    }


def test_a_nightly_stop_and_morning_start_save_the_night(prices_dir: Path) -> None:
    resources = _asg(2, 4) | {
        "aws_autoscaling_schedule": {
            "stop": _schedule("aws_autoscaling_group.asg", "0 20 * * *", desired_capacity=0, min_size=0),
            "start": _schedule("aws_autoscaling_group.asg", "0 8 * * *", desired_capacity=2, min_size=2),
        }
    }
    result = estimate(prices_dir, resources)
    node_month = 5.0 * HOURS + 100 * 0.08
    [effect] = result.schedules
    assert effect.monthly_saving == pytest.approx(2 * node_month * 12 / 24)
    assert effect.bound_hours == 24.0
    assert result.schedule_saving == pytest.approx(effect.monthly_saving)
    assert "below 2 for 84 h a week" in effect.description


def test_a_stop_on_a_group_resting_at_zero_bounds_a_forgotten_run(prices_dir: Path) -> None:
    resources = _asg(0, 4) | {
        "aws_autoscaling_schedule": {"stop": _schedule("aws_autoscaling_group.asg", "0 20 * * *", desired_capacity=0)}
    }
    [effect] = estimate(prices_dir, resources).schedules
    node_hour = 5.0 + 100 * 0.08 / HOURS
    assert effect.monthly_saving == 0.0
    assert (effect.bound_hours, effect.bound_cost) == (24.0, pytest.approx(4 * node_hour * 24))


def test_weekday_hours_on_an_eks_node_group(prices_dir: Path) -> None:
    # The group behind a managed node group is reached through the node group's resources attribute.
    target = "aws_eks_node_group.gpu.resources[0].autoscaling_groups[0]"
    resources = {
        "aws_launch_template": {"lt": template(100)},
        "aws_eks_node_group": {"gpu": node_group(["g5.xlarge"], 0, 4, desired=0)},
        "aws_autoscaling_schedule": {
            "start": _schedule(target, "0 7 * * 1-5", min_size=0, max_size=4),
            "stop": _schedule(target, "0 20 * * 1-5", desired_capacity=0, min_size=0, max_size=0),
        },
    }
    [effect] = estimate(prices_dir, resources).schedules
    assert effect.target == "EKS node group group-"
    assert effect.monthly_saving == 0.0
    assert effect.bound_hours == 13.0, "from a morning start to the evening stop; nights and weekends stay at 0"


def test_endpoint_parking_lowers_the_minimum_at_night(prices_dir: Path) -> None:
    target = "${aws_appautoscaling_target.t.resource_id}"
    resources = {
        "aws_sagemaker_endpoint": {
            "e": {"name": "e", "endpoint_config_name": "${aws_sagemaker_endpoint_configuration.c.name}"}
        },
        "aws_sagemaker_endpoint_configuration": {
            "c": {"production_variants": [{"variant_name": "primary", "instance_type": "ml.g5.xlarge"}]}
        },
        "aws_appautoscaling_target": {
            "t": {
                "resource_id": "endpoint/${aws_sagemaker_endpoint.e.name}/variant/primary",
                "min_capacity": 2,
                "max_capacity": 6,
            }
        },
        "aws_appautoscaling_scheduled_action": {
            "night": {
                "service_namespace": "sagemaker",
                "resource_id": target,
                "schedule": "cron(0 22 * * ? *)",
                "scalable_target_action": {"min_capacity": 1},
            },
            "day": {
                "service_namespace": "sagemaker",
                "resource_id": target,
                "schedule": "cron(0 6 * * ? *)",
                "scalable_target_action": {"min_capacity": 2},
            },
        },
    }
    [effect] = estimate(prices_dir, resources).schedules
    assert effect.monthly_saving == pytest.approx(1.5 * HOURS * 8 / 24)
    assert effect.bound_hours is None, "parking at one instance is not a stop"


def test_a_scheduled_start_above_the_resting_size_adds_to_the_minimum(prices_dir: Path) -> None:
    resources = _asg(0, 4) | {
        "aws_autoscaling_schedule": {
            "start": _schedule("aws_autoscaling_group.asg", "0 8 * * 1-5", desired_capacity=1),
            "stop": _schedule("aws_autoscaling_group.asg", "0 18 * * 1-5", desired_capacity=0),
        }
    }
    result = estimate(prices_dir, resources)
    node_month = 5.0 * HOURS + 100 * 0.08
    assert result.total_min == pytest.approx(node_month * 50 / 168)
    assert result.schedules[0].monthly_saving == pytest.approx(node_month * 118 / 168)


def test_schedules_that_cannot_be_evaluated_are_listed_not_priced(prices_dir: Path) -> None:
    resources = _asg(0, 4) | {
        "aws_autoscaling_schedule": {
            "monthly": _schedule("aws_autoscaling_group.asg", "0 20 1 * *", desired_capacity=0),
            "elsewhere": _schedule("aws_autoscaling_group.other", "0 20 * * *", desired_capacity=0),
        }
    }
    result = estimate(prices_dir, resources)
    assert result.complete
    described = {effect.address: effect.description for effect in result.schedules}
    assert "not evaluated" in described["aws_autoscaling_schedule.monthly"]
    assert "not in this stack" in described["aws_autoscaling_schedule.elsewhere"]
    assert result.schedule_saving == 0.0


def _idle_endpoint(action: str) -> dict[str, Any]:
    function = {"environment": {"variables": {"ENDPOINT_NAME": "e", "IDLE_ACTION": action, "IDLE_MINUTES": "60"}}}
    return {
        "aws_sagemaker_endpoint": {
            "e": {"name": "e", "endpoint_config_name": "${aws_sagemaker_endpoint_configuration.c.name}"}
        },
        "aws_sagemaker_endpoint_configuration": {
            "c": {"production_variants": [{"variant_name": "primary", "instance_type": "ml.g5.xlarge"}]}
        },
        "aws_appautoscaling_target": {
            "t": {
                "resource_id": "endpoint/${aws_sagemaker_endpoint.e.name}/variant/primary",
                "min_capacity": 1,
                "max_capacity": 3,
            }
        },
        "aws_lambda_function": {"idle": function, "other": {"environment": {"variables": {"ASG_NAME": "x"}}}},
        "aws_scheduler_schedule": {
            "park": {
                "schedule_expression": "cron(0 20 ? * MON-FRI *)",
                "schedule_expression_timezone": "Europe/Berlin",
                "target": {"arn": "${aws_lambda_function.idle.arn}", "input": '{"action": "park"}'},
            }
        },
    }


def test_an_endpoint_idle_policy_and_its_parking_schedule_are_described(prices_dir: Path) -> None:
    deleted = estimate(prices_dir, _idle_endpoint("delete_endpoint"))
    [effect] = deleted.schedules
    assert effect.target == "SageMaker endpoint e"
    assert effect.address == "aws_lambda_function.idle, aws_scheduler_schedule.park"
    assert "after 60 idle minutes: delete_endpoint" in effect.description
    assert (
        "saves $1.50 an hour" in effect.description and "cron(0 20 ? * MON-FRI *) (Europe/Berlin)" in effect.description
    )
    assert effect.monthly_saving == 0.0 and effect.bound_hours is None
    assert deleted.total_min == pytest.approx(1.5 * HOURS), "parking is described, not subtracted"
    [minimum] = estimate(prices_dir, _idle_endpoint("scale_to_minimum")).schedules
    assert "saves" not in minimum.description
    # Friday's parking to Monday's: 72 hours with the two instances above the minimum.
    assert (minimum.bound_hours, minimum.bound_cost) == (72.0, pytest.approx(2 * 1.5 * 72))
