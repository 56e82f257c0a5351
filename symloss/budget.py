"""Time budgets for symbolic work that could hang.

``run_with_budget(fn, seconds)`` runs ``fn`` and raises :class:`BudgetExceeded`
when it does not finish in time.  In the main thread of a Unix process the
budget is enforced with ``SIGALRM`` (SymPy is pure Python, so the alarm
interrupts it between bytecodes).  Elsewhere (other threads, Windows) ``fn``
runs in a daemon thread that is abandoned when the budget runs out: the
caller still gets its answer in time.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from .errors import BudgetExceeded

T = TypeVar("T")

DEFAULT_BUDGET = 5.0

__all__ = ["DEFAULT_BUDGET", "run_with_budget", "try_with_budget", "Deadline"]


class _Alarm(BaseException):
    """Raised by the signal handler; a BaseException so `except Exception` inside SymPy cannot swallow it."""


def _can_use_signals() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def handler(signum, frame):  # noqa: ARG001
        raise _Alarm()

    previous_handler = signal.signal(signal.SIGALRM, handler)
    previous_timer = signal.setitimer(signal.ITIMER_REAL, 0)
    started = time.monotonic()
    # a repeating timer: an alarm raised inside a finaliser is swallowed by Python, so fire again shortly after
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3), 0.25)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_timer[0] > 0:
            # an enclosing budget is running: give it back what is left of it
            left = previous_timer[0] - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))


def run_with_budget(fn: Callable[[], T], seconds: float | None, what: str = "symbolic step") -> T:
    """Run ``fn()``; raise :class:`BudgetExceeded` if it takes longer than ``seconds``.

    ``seconds=None`` means no limit.
    """
    if seconds is None:
        return fn()
    if seconds <= 0:
        raise BudgetExceeded(f"{what}: no time left in the budget")
    if _can_use_signals():
        # an enclosing alarm that fires sooner than ours must keep its deadline
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        if remaining > 0 and remaining < seconds:
            seconds = remaining
        try:
            with _alarm(seconds):
                return fn()
        except _Alarm:
            raise BudgetExceeded(
                f"{what} did not finish within {seconds:g} s (raise the budget to try longer)"
            ) from None
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise BudgetExceeded(f"{what} did not finish within {seconds:g} s (raise the budget to try longer)")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def try_with_budget(fn: Callable[[], T], seconds: float | None, default: T, what: str = "symbolic step") -> T:
    """Like :func:`run_with_budget` but return ``default`` when the budget runs out."""
    try:
        return run_with_budget(fn, seconds, what)
    except BudgetExceeded:
        return default


class Deadline:
    """A total budget shared by several steps: ``deadline.left()`` seconds remain."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.start = time.monotonic()

    def left(self) -> float | None:
        if self.seconds is None:
            return None
        return max(self.seconds - (time.monotonic() - self.start), 0.0)

    def expired(self) -> bool:
        left = self.left()
        return left is not None and left <= 0
