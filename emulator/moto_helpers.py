"""Small helpers shared by the patch modules: state kept on moto's backends, added and wrapped methods, tags.

The patches add or wrap methods on moto's classes in memory (no file under site-packages is touched), and
only add an action when moto does not already define it, so a later moto that implements the action wins.
Extra state lives in dicts on moto's own backend objects, guarded by :data:`store_lock`: werkzeug serves
each request on a thread of its own.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

store_lock = threading.RLock()
"""Guards the stores the patches add; reentrant, as code holding it calls :func:`backend_store`, which takes it too."""


def backend_store(backend: object, name: str) -> dict[str, Any]:
    """Return a dict kept on a moto backend instance, creating it on first use.

    Keeping the emulator's extra state on the backend gives it moto's account/region keying for free,
    and moto's reset rebuilds backends from scratch (``BaseBackend.reset`` clears ``__dict__``), so the
    extra state is reset together with everything else.
    """
    with store_lock:
        return backend.__dict__.setdefault(name, {})  # type: ignore[no-any-return]


def add_action(cls: type, name: str, func: Callable[..., Any]) -> None:
    """Register ``func`` as the handler of action ``name`` unless moto already implements it.

    moto dispatches an action to the response-class method named after it in snake_case, so a new
    method is all a missing action needs. An existing method is kept: if a later moto implements the
    action, its implementation wins.
    """
    if not hasattr(cls, name):
        func.__name__ = name
        func.__qualname__ = f"{cls.__name__}.{name}"
        setattr(cls, name, func)


def wrap(cls: type, name: str, make_wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Replace ``cls.name`` by ``make_wrapper(original)``, keeping the original's metadata."""
    original = getattr(cls, name)
    wrapper = make_wrapper(original)
    functools.update_wrapper(wrapper, original)
    setattr(cls, name, wrapper)


def strip_empty(keys: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
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


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """Turn ``{key: value}`` into AWS's ``[{"Key": key, "Value": value}]``."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    """Turn AWS's ``[{"Key": key, "Value": value}]`` into ``{key: value}``."""
    return {tag["Key"]: tag.get("Value", "") for tag in tags or []}
