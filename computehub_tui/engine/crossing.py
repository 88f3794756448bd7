"""Calls into the engine from another thread's loop (the UI's), carried over to the engine's own loop.

The store (aiosqlite) and the HTTP clients belong to the loop they were opened on. An object that
lives on the engine's loop names it as ``home_loop``; its methods marked ``@engine_side`` then run
there whoever calls them, and the caller awaits the result on its own loop.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
SYNC_CALL_TIMEOUT_S = 10.0
"""A quick engine-side change (attach a provider) made from the UI thread waits at most this long."""


class EngineStopped(RuntimeError):
    """The engine's loop has closed: the app is shutting down."""


class LivesOnALoop(Protocol):
    @property
    def home_loop(self) -> asyncio.AbstractEventLoop | None: ...


S = TypeVar("S", bound=LivesOnALoop)


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _away_from(home: asyncio.AbstractEventLoop | None) -> bool:
    """True when a call made here must cross to ``home``."""
    if home is None or running_loop() is home:
        return False
    if home.is_closed():
        raise EngineStopped("the engine has stopped")
    return home.is_running()


async def run_on(home: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on ``home`` and await its result here; cancelling here cancels it there."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, home))


def engine_side(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """An async method that always runs on its object's home loop."""

    @functools.wraps(method)
    async def crossing(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        home = self.home_loop
        if home is None or not _away_from(home):
            return await method(self, *args, **kwargs)
        return await run_on(home, method(self, *args, **kwargs))

    return crossing


def engine_side_sync(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """A quick method that changes engine state: from another thread it runs on the home loop and
    the caller waits (briefly) for it to finish."""

    @functools.wraps(method)
    def crossing(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        home = self.home_loop
        if home is None or not _away_from(home):
            return method(self, *args, **kwargs)

        async def there() -> R:
            return method(self, *args, **kwargs)

        return asyncio.run_coroutine_threadsafe(there(), home).result(SYNC_CALL_TIMEOUT_S)

    return crossing


class _Carried:
    """Forwards attribute reads and writes to ``target``; its coroutine methods run on ``home``."""

    __slots__ = ("_home", "_target")

    def __init__(self, target: object, home: asyncio.AbstractEventLoop) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_home", home)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not inspect.iscoroutinefunction(value):
            return value
        home = self._home

        @functools.wraps(value)
        async def crossing(*args: Any, **kwargs: Any) -> Any:
            if not _away_from(home):
                return await value(*args, **kwargs)
            return await run_on(home, value(*args, **kwargs))

        return crossing

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._target, name, value)


def carried(target: T, home: asyncio.AbstractEventLoop | None) -> T:
    """``target`` itself on its home loop; elsewhere a stand-in whose coroutine methods run on ``home``
    (for engine-side services, such as the keys, that the UI calls directly)."""
    if home is None or not _away_from(home):
        return target
    return cast(T, _Carried(target, home))
