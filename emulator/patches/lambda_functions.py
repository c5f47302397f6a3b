"""Lambda: a function's dead-letter and logging configurations.

moto 5.2.5 drops ``DeadLetterConfig`` and ``LoggingConfig`` from a function's configuration, so the provider
planned to add them on every run (found by deploying the platform's own stacks,
``tests/test_emulator_deploy.py``). Both are reported now. (Not named ``lambda``: that is a keyword.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.moto_helpers import wrap


def apply() -> None:
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

    wrap(LambdaFunction, "__init__", keep_configs)
    wrap(LambdaFunction, "update_configuration", update_configs)
    wrap(LambdaFunction, "get_configuration", add_configs)
