"""The optimiser of the bilevel fit: optax parameter groups, delayed starts and learning-rate schedules.

Groups (``optax.multi_transform``, one label per parameter group):
  * ``network``: trajectory networks - global-norm clipping + AdamW with a linear warm-up and exponential decay;
  * ``body``: log-scales - Adam with the same schedule shape at the body rate;
  * ``offset``: marker offsets - the same Adam, held at zero until ``offset_start_fraction`` of the steps, so
    they cannot absorb pose errors (e.g. forearm pronation) before the joints have settled;
  * ``camera``: camera deltas - Adam with its own small rate, decayed 10x over the run.  Bundle adjustment's late
    start is not part of the optimiser: the train step multiplies the camera gradients by a dynamic 0/1 gate, so
    fits with and without bundle adjustment share one compiled step, and the camera Adam moments start clean at
    the start step (zero gradients give zero moments and zero updates);
  * ``time_offset`` (only when camera time offsets are fitted): Adam at its own rate (s per step), decayed 10x
    over the run, from the first step (not behind the bundle-adjustment gate); held once bundle adjustment starts
    by the train step's dynamic ``time_offset_gate`` (``hold_time_offsets_from_camera_start``).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from compute.fit.types import BodyParams, CameraDelta, FitVariables
from compute.params import OptimiserConfig

__all__ = ["warmup_exponential", "DelayedStartState", "zero_updates_before", "resume_schedules", "parameter_labels",
           "make_optimizer", "OptimizerSpec", "project_to_ball"]


def warmup_exponential(peak: float, final: float, warmup: int, total: int, start: int = 0) -> optax.Schedule:
    """Learning rate 0 before ``start``, then a linear warm-up over ``warmup`` steps to ``peak`` and an exponential
    decay reaching ``final`` at step ``total``."""
    decay_steps = max(total - start - warmup, 1)
    inner = optax.warmup_exponential_decay_schedule(
        init_value=0.0, peak_value=peak, warmup_steps=max(warmup, 1), transition_steps=1,
        decay_rate=(final / peak) ** (1.0 / decay_steps), end_value=final)
    if start == 0:
        return inner
    return lambda count: jnp.where(count < start, 0.0, inner(jnp.maximum(count - start, 0)))


class DelayedStartState(NamedTuple):
    """State of :func:`zero_updates_before`: steps taken so far (int32 scalar)."""

    count: jax.Array


def zero_updates_before(start_step: int) -> optax.GradientTransformation:
    """Zero every update before ``start_step`` (so the Adam that follows in a chain starts with clean moments)."""

    def init(params):
        del params
        return DelayedStartState(jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        del params
        keep = (state.count >= start_step).astype(jnp.float32)
        return jax.tree.map(lambda u: u * keep, updates), DelayedStartState(state.count + 1)

    return optax.GradientTransformation(init, update)


def resume_schedules(opt_state: optax.OptState, step: int) -> optax.OptState:
    """``opt_state`` with every learning-rate schedule and delayed start advanced to ``step``, and the Adam moments
    left as they are (fresh, for a warm start): the optimiser then continues the schedule of a fit from ``step``."""
    def advance(state):
        if isinstance(state, (optax.ScaleByScheduleState, DelayedStartState)):
            return type(state)(count=jnp.full_like(state.count, step))
        return state

    is_counter = lambda x: isinstance(x, (optax.ScaleByScheduleState, DelayedStartState))  # noqa: E731
    return jax.tree.map(advance, opt_state, is_leaf=is_counter)


def parameter_labels(variables: FitVariables) -> FitVariables:
    """The optimiser group of every leaf of ``variables``: "network", "body", "offset" or "camera"."""
    cameras = variables.cameras
    return FitVariables(networks=jax.tree.map(lambda _: "network", variables.networks),
                        body=BodyParams(log_scale="body", offsets="offset"),
                        cameras=CameraDelta(rotation="camera", centre="camera",
                                            time_offset=None if cameras.time_offset is None else "time_offset",
                                            max_time_offset_s=cameras.max_time_offset_s))


@functools.lru_cache(maxsize=32)
def make_optimizer(optimiser: OptimiserConfig, camera_learning_rate: float,
                   time_offset_learning_rate: float | None = None) -> optax.GradientTransformation:
    """The four-group optimiser of ``FitVariables`` (see module docstring); with ``time_offset_learning_rate``
    (s per step) a fifth group ``time_offset`` for the camera time offsets: Adam decayed 10x over the run.

    Cached per (config, camera rate): the transformation is a static argument of the compiled step, so equal
    configurations must give the identical object to share one compilation.
    """
    steps = optimiser.steps
    ratio = optimiser.learning_rate_final / optimiser.learning_rate
    network = optax.chain(
        optax.clip_by_global_norm(optimiser.grad_clip_norm),
        optax.adamw(warmup_exponential(optimiser.learning_rate, optimiser.learning_rate_final,
                                       optimiser.warmup_steps, steps),
                    b1=optimiser.adam_b1, b2=optimiser.adam_b2, weight_decay=optimiser.weight_decay))
    body_schedule = warmup_exponential(optimiser.body_learning_rate, optimiser.body_learning_rate * ratio,
                                       optimiser.warmup_steps, steps)
    body = optax.adam(body_schedule)
    offset_start = min(int(round(optimiser.offset_start_fraction * steps)), steps)
    offset = optax.chain(zero_updates_before(offset_start), optax.adam(body_schedule))
    camera = optax.adam(optax.exponential_decay(camera_learning_rate, max(steps, 1), 0.1))
    groups = {"network": network, "body": body, "offset": offset, "camera": camera}
    if time_offset_learning_rate is not None:
        groups["time_offset"] = optax.adam(optax.exponential_decay(time_offset_learning_rate, max(steps, 1), 0.1))
    return optax.multi_transform(groups, parameter_labels)


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """The arguments of :func:`make_optimizer`, as plain hashable data: the static argument by which the compiled
    step receives its optimiser.  Why not the optax transformation itself: it is a tree of closures, whose content
    a fingerprint cannot write down, so a step given one could not be stored with ``compute.program_cache``."""
    optimiser: OptimiserConfig
    camera_learning_rate: float
    time_offset_learning_rate: float | None = None

    def build(self) -> optax.GradientTransformation:
        """The transformation (the same object for equal specs: :func:`make_optimizer` is cached)."""
        return make_optimizer(self.optimiser, self.camera_learning_rate, self.time_offset_learning_rate)


def project_to_ball(vectors: jax.Array, radius: float) -> jax.Array:
    """Scale each row of ``vectors`` (..., 3) down to norm ``radius`` where it is longer (projected gradient)."""
    norm = jnp.sqrt(jnp.sum(vectors**2, axis=-1, keepdims=True) + 1e-12)
    return vectors * jnp.minimum(1.0, radius / norm)
