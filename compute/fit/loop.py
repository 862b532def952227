"""The one fit loop shared by the bilevel fit, the trilevel fit and the two-stage baseline.

A fit is a compiled ``step(first_step_index, state) -> (state, terms)`` that runs ``steps_per_call`` optimiser
steps per call, applied until ``total_steps`` steps have run.  The loop records a loss-history row every
``history_every`` steps (and at the last step), keeping the terms on the device until a divergence check: every
``check_every`` steps (and at the end) the pending rows are read back, a non-finite value raises
``FitDivergedError`` (a fit never returns a NaN result), and each row is reported to the optional
``progress(step, total_steps, loss)`` callback.  Reading the terms back only at checks keeps the host from
synchronising with the device on every step.  Several steps per call (a ``lax.scan`` inside the compiled step)
spare the per-call dispatch of the state's pytree, which on a small trial is about half of each step's time.

With a :class:`ConvergenceRule` the loop may also end early, once the loss has plateaued
(:func:`convergence_reason`): with ``rule.final_steps`` = 0 it stops at that check; otherwise it moves the state
to the last ``final_steps`` steps of the schedule (``skip_to``: e.g. the learning rates' decay to their final
values) and ends after running them.  ``LoopResult.stop_reason`` says why the loop ended.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, TypeVar

import jax
import numpy as np

from compute.fit.types import FitDivergedError

__all__ = ["ProgressCallback", "ConvergenceRule", "LoopResult", "convergence_reason", "run_loop"]

State = TypeVar("State")
ProgressCallback = Callable[[int, int, float], None]
"""``progress(step, total_steps, loss)``: called with every loss-history row once it has been checked."""


@dataclass(frozen=True)
class ConvergenceRule:
    """Stop once the windowed-median loss improves by less than ``tolerance`` (relative) over ``window_steps``.

    earliest_step: the rule is not evaluated before this step (a fraction of the schedule, and late enough that
    both windows lie after every stage start of the fit).  See :func:`convergence_reason`.
    final_steps: once converged, run the schedule's last ``final_steps`` steps before stopping (0 = stop at once).
    Why: a plateau at step k means the loss no longer falls at the learning rate of step k; what the rest of
    the schedule would still give is the lower noise of its decayed learning rates, which its last steps give.
    """

    earliest_step: int
    window_steps: int
    tolerance: float
    final_steps: int = 0


def convergence_reason(steps: np.ndarray, losses: np.ndarray, rule: ConvergenceRule) -> str | None:
    """Why the fit has converged at the last history row, or None to run on.

    steps (H,) step indices of the loss-history rows (increasing), losses (H,) their total loss.  With k the
    last step and w = rule.window_steps: L_now = median of the losses at steps in (k - w, k], L_before = median
    at steps in (k - 2w, k - w]; converged when k >= rule.earliest_step, the history covers both windows and
    ``(L_before - L_now) / |L_before| < rule.tolerance``.  A rising loss counts as converged too (negative
    improvement): more steps at a decayed rate would not bring it back below the earlier window.
    """
    if len(steps) == 0:
        return None
    k, w = int(steps[-1]), rule.window_steps
    if k < rule.earliest_step or k - 2 * w < steps[0]:  # not yet, or the earlier window is not fully recorded
        return None
    now = losses[(steps > k - w) & (steps <= k)]
    before = losses[(steps > k - 2 * w) & (steps <= k - w)]
    if len(now) == 0 or len(before) == 0:
        return None
    l_now, l_before = float(np.median(now)), float(np.median(before))
    improvement = (l_before - l_now) / max(abs(l_before), 1e-30)
    if improvement >= rule.tolerance:
        return None
    return (f"converged at step {k}: relative improvement {improvement:.2e} < {rule.tolerance:g} "
            f"over {w} steps (median loss {l_before:.4g} -> {l_now:.4g})")


@dataclass
class LoopResult:
    """Final state, loss history (H, len(columns)) float64 (first column: the step of the schedule), when a
    snapshot function was given one snapshot of the state per history row (on the device), the number of steps
    run and why the loop stopped ("step budget: N steps", or the converged message of
    :func:`convergence_reason`, followed after a skip to the schedule's end by "; then steps a-b")."""

    state: Any
    history: np.ndarray
    snapshots: list
    steps_done: int
    stop_reason: str


def run_loop(step: Callable[[int, State], tuple[State, Mapping[str, jax.Array]]], state: State, total_steps: int,
             columns: Sequence[str], *, history_every: int, check_every: int,
             progress: ProgressCallback | None = None, snapshot: Callable[[State], Any] | None = None,
             convergence: ConvergenceRule | None = None, steps_per_call: int = 1,
             skip_to: Callable[[State, int], State] | None = None,
             unsettled: Callable[[State, int], str | None] | None = None) -> LoopResult:
    """Run the fit's steps 0..total_steps-1 with ``state, terms = step(i, state)``; see the module docstring.

    steps_per_call K: each call runs steps i..i+K-1 and returns terms of shape (K,) per column (K = 1: scalars);
    steps at or beyond ``total_steps`` must leave the state unchanged (the last call may run past the budget).
    columns: history columns, the first is "step" and the others are keys of the step's terms; snapshot(state)
    is recorded with every history row (e.g. the current marker sites; only with K = 1); convergence: evaluated
    after every divergence check, ends the loop early when it says so (None = run the full budget; with K > 1 the
    loop stops at the end of the call holding the check).  skip_to(state, j): the state moved to step j of the
    schedule (required when ``convergence.final_steps`` > 0); the loop then runs steps j..total_steps-1, and
    progress counts the steps run (``progress(steps run - 1, steps planned, loss)``) so rates and ETAs stay
    true.  unsettled(state, step): called at every check with the steps done; a reason (e.g. parameters the loss
    barely feels still moving) keeps the fit going although the loss has plateaued, None lets it stop.  Raises
    FitDivergedError at the first check that finds a non-finite term.
    """
    if steps_per_call < 1 or (snapshot is not None and steps_per_call != 1):
        raise ValueError(f"run_loop: steps_per_call must be >= 1 (and 1 with a snapshot), got {steps_per_call}")
    if convergence is not None and convergence.final_steps > 0 and skip_to is None:
        raise ValueError("run_loop: a convergence rule with final_steps > 0 needs skip_to")
    history: list[list[float]] = []
    pending: list[tuple[int, Mapping[str, jax.Array]]] = []   # (first step of the call, its terms)
    snapshots: list = []
    loss_column = columns.index("loss")
    skipped = 0                                                # schedule steps skipped (not run)

    def recorded(i: int) -> bool:
        return i % history_every == 0 or i == total_steps - 1

    def flush() -> None:
        for first, terms in pending:
            values = {c: np.atleast_1d(np.asarray(terms[c], np.float64)) for c in columns[1:]}  # one read per call
            for j in range(steps_per_call):
                s = first + j
                if s >= total_steps or not recorded(s):
                    continue
                row = [float(s)] + [float(values[c][j]) for c in columns[1:]]
                if not np.all(np.isfinite(row)):
                    raise FitDivergedError(f"compute.fit: loss became non-finite at step {s}: "
                                           f"{dict(zip(columns, row))}")
                history.append(row)
                if progress is not None:
                    progress(s - skipped, total_steps - skipped, row[loss_column])
        pending.clear()

    def converged() -> str | None:
        if convergence is None or not history:
            return None
        rows = np.asarray(history, np.float64)
        return convergence_reason(rows[:, 0], rows[:, loss_column], convergence)

    stop_reason = f"step budget: {total_steps} steps"
    next_check = check_every
    first = 0
    while first < total_steps:
        state, terms = step(first, state)
        end = min(first + steps_per_call, total_steps)          # schedule steps done after this call
        if any(recorded(s) for s in range(first, end)):
            pending.append((first, terms))
            if snapshot is not None:
                snapshots.append(snapshot(state))
        first = end
        if end >= next_check:
            next_check = (end // check_every + 1) * check_every
            flush()
            still_moving = unsettled(state, end) if unsettled is not None and not skipped else None
            reason = converged() if end < total_steps and not skipped else None
            if reason is None or still_moving is not None:
                continue
            target = total_steps - convergence.final_steps
            if convergence.final_steps == 0 or target <= end:     # stop now (or the end is as near as the skip)
                stop_reason = reason
                break
            state, skipped, first = skip_to(state, target), target - end, target
            next_check = (target // check_every + 1) * check_every
            stop_reason = f"{reason}; then steps {target}-{total_steps - 1}"
    flush()
    return LoopResult(state=state, history=np.asarray(history, np.float64).reshape(-1, len(columns)),
                      snapshots=snapshots, steps_done=first - skipped, stop_reason=stop_reason)
