"""Early stopping of the fit loop on synthetic loss curves (no JAX compile: the step is plain numpy)."""
from __future__ import annotations

import numpy as np

from compute.fit.bilevel import convergence_rule
from compute.fit.loop import ConvergenceRule, convergence_reason, run_loop
from compute.params import PARAMETER_SETS

COLUMNS = ("step", "loss")
RULE = ConvergenceRule(earliest_step=400, window_steps=100, tolerance=1e-3)


def _run(curve, rule=RULE, total=2000, history_every=10, check_every=50):
    """run_loop over a loss curve loss(i); returns the LoopResult."""
    def step(i, state):
        return state + 1, {"loss": np.float32(curve(i))}
    return run_loop(step, 0, total, COLUMNS, history_every=history_every, check_every=check_every,
                    convergence=rule)


def test_plateau_stops_at_the_first_check_after_two_flat_windows():
    # exponential decay until step 600, flat afterwards: the windows (k-200, k-100], (k-100, k] are both flat
    # from k = 790 on (rows every 10), so the loop ends at the check after step 799
    result = _run(lambda i: 1.0 + 10.0 * np.exp(-min(i, 600) / 150.0))
    assert result.steps_done < 2000
    assert 800 <= result.steps_done <= 900, result.stop_reason
    assert result.stop_reason.startswith("converged at step")
    assert result.state == result.steps_done and result.history[-1, 0] < result.steps_done


def test_still_decreasing_runs_the_whole_budget():
    result = _run(lambda i: 100.0 / (1.0 + i / 50.0))  # still ~5 % per 100 steps at the end
    assert result.steps_done == 2000 and result.stop_reason == "step budget: 2000 steps"
    assert result.history[-1, 0] == 1999


def test_noisy_plateau_stops():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.05, 2000)  # 5 % noise, far above the 0.1 % tolerance
    result = _run(lambda i: 1.0 + 5.0 * np.exp(-i / 50.0) + noise[i])
    assert result.steps_done < 1000, result.stop_reason
    assert result.stop_reason.startswith("converged")


def test_never_before_the_earliest_step():
    flat = _run(lambda i: 1.0, rule=ConvergenceRule(earliest_step=1500, window_steps=100, tolerance=1e-3))
    assert flat.steps_done >= 1500 and flat.stop_reason.startswith("converged at step 15")


def test_reason_needs_both_windows_and_reports_the_numbers():
    steps = np.arange(0, 150, 10.0)
    assert convergence_reason(steps, np.ones_like(steps), ConvergenceRule(0, 100, 1e-3)) is None  # one window
    steps = np.arange(0, 300, 10.0)
    reason = convergence_reason(steps, np.ones_like(steps), ConvergenceRule(0, 100, 1e-3))
    assert reason == ("converged at step 290: relative improvement 0.00e+00 < 0.001 over 100 steps "
                      "(median loss 1 -> 1)")


def test_without_a_rule_the_loop_runs_its_budget():
    result = _run(lambda i: 1.0, rule=None)
    assert result.steps_done == 2000 and result.stop_reason == "step budget: 2000 steps"


def test_bilevel_rule_waits_for_every_stage_and_is_off_only_in_the_whole_budget_sets():
    for name in ("cpu_full_budget", "paper"):
        assert convergence_rule(PARAMETER_SETS[name], 2000) is None
    for name in ("cpu_default", "cpu_sparse"):
        assert convergence_rule(PARAMETER_SETS[name], 2000).final_steps == 200
    params = PARAMETER_SETS["cpu_default"].replace(convergence_min_fraction=0.0, convergence_window_steps=100,
                                                     offset_start_fraction=0.4, camera_start_fraction=0.2)
    rule = convergence_rule(params, 1000)
    assert rule.earliest_step == 400 + 2 * 100  # offsets start at step 400, the later stage
    never_ba = params.replace(camera_start_fraction=1.0, offset_start_fraction=0.0)
    assert convergence_rule(never_ba, 1000).earliest_step == 200


def test_a_long_trial_is_not_stopped_before_its_frames_were_sampled_enough():
    """cpu_default: 256 samples per frame on average, 64 time points per step."""
    params = PARAMETER_SETS["cpu_default"]
    assert params.optimiser.time_points_per_trial == 64
    assert convergence_rule(params, 2000, longest_trial_frames=120).earliest_step == 1000  # half the budget rules
    assert convergence_rule(params, 2000, longest_trial_frames=300).earliest_step == 1200  # 256 * 300 / 64
    assert convergence_rule(params, 2000, longest_trial_frames=499).earliest_step == 1996
    assert convergence_rule(params, 2000, longest_trial_frames=600) is None                # 2400: whole budget
    assert convergence_rule(params.replace(convergence_min_samples_per_frame=0.0), 2000,
                            longest_trial_frames=600).earliest_step == 1000


def _run_chunked(curve, steps_per_call, total, rule=RULE, check_every=50):
    """run_loop with ``steps_per_call`` steps per call; the state counts the active steps run."""
    def step(first, state):
        indices = np.arange(first, first + steps_per_call)
        return state + int(np.sum(indices < total)), {"loss": np.array([curve(i) for i in indices], np.float32)}
    return run_loop(step, 0, total, COLUMNS, history_every=10, check_every=check_every, convergence=rule,
                    steps_per_call=steps_per_call)


def test_several_steps_per_call_record_the_same_history_as_one():
    curve = lambda i: 100.0 / (1.0 + i / 50.0)  # noqa: E731 - still decreasing: no early stop
    single = _run(curve, total=1013)
    chunked = _run_chunked(curve, 25, total=1013)  # 1013 = 40 calls of 25 + 13 steps of a last call
    np.testing.assert_array_equal(chunked.history, single.history)
    assert chunked.history[-1, 0] == 1012 and chunked.steps_done == 1013 and chunked.state == 1013


def test_several_steps_per_call_stop_at_the_end_of_the_call_holding_the_check():
    curve = lambda i: 1.0 + 10.0 * np.exp(-min(i, 600) / 150.0)  # noqa: E731 - flat after step 600
    single = _run(curve)
    chunked = _run_chunked(curve, 25, total=2000)
    assert chunked.steps_done == single.steps_done and chunked.stop_reason == single.stop_reason
    np.testing.assert_array_equal(chunked.history, single.history)
    # a call size that does not divide the check interval: the check runs at the end of the call that crosses it
    odd = _run_chunked(curve, 30, total=2000)
    assert odd.steps_done % 30 == 0 and 0 <= odd.steps_done - single.steps_done < 30
    assert odd.state == odd.steps_done


def _run_skipping(curve, final_steps, total=2000, steps_per_call=25):
    """run_loop whose state is (schedule steps passed through, steps run, skip targets); one call runs K steps."""
    rule = ConvergenceRule(earliest_step=400, window_steps=100, tolerance=1e-3, final_steps=final_steps)
    reported = []

    def step(first, state):
        at, run, skips = state
        if at != first:
            raise AssertionError(f"called at step {first}, state at {at}")
        indices = np.arange(first, first + steps_per_call)
        n = int(np.sum(indices < total))
        return (first + n, run + n, skips), {"loss": np.array([curve(i) for i in indices], np.float32)}

    def skip_to(state, j):
        at, run, skips = state
        return j, run, skips + (j,)

    result = run_loop(step, (0, 0, ()), total, COLUMNS, history_every=10, check_every=100, convergence=rule,
                      steps_per_call=steps_per_call, skip_to=skip_to,
                      progress=lambda s, n, loss: reported.append((s, n)))
    return result, reported


def test_converged_fit_skips_to_the_schedules_last_steps_and_runs_them():
    flat_after_600 = lambda i: 1.0 + 10.0 * np.exp(-min(i, 600) / 150.0)  # noqa: E731
    stopped = _run(flat_after_600, check_every=100)
    k = stopped.steps_done                                 # where the plain rule stops
    result, reported = _run_skipping(flat_after_600, final_steps=200)
    (at, run, skips) = result.state
    assert skips == (1800,) and at == 2000                 # moved once, to the last 200 steps, and ran them
    assert run == result.steps_done == k + 200
    assert result.stop_reason == stopped.stop_reason + "; then steps 1800-1999"
    # the history keeps the schedule's steps: up to k, then 1800..1999 (and the last step)
    steps = result.history[:, 0]
    assert steps[steps < 1800].max() < k and steps[steps >= 1800].min() == 1800 and steps[-1] == 1999
    # progress counts the steps run, so a rate over it stays true: the last report is steps run - 1 of k + 200
    assert reported[-1] == (k + 199, k + 200)
    assert all(b[0] > a[0] for a, b in zip(reported, reported[1:]))


def test_no_skip_when_the_end_is_no_further_than_the_final_steps():
    flat = lambda i: 1.0  # noqa: E731 - converges at the check after step 500 (last row 490 >= earliest 400)
    result, _ = _run_skipping(flat, final_steps=1600, total=2000)    # the skip would go to 400 <= 500
    assert result.state[2] == () and result.steps_done == 500
    assert result.stop_reason.startswith("converged at step") and "then" not in result.stop_reason


def test_a_rule_with_final_steps_needs_skip_to():
    rule = ConvergenceRule(earliest_step=400, window_steps=100, tolerance=1e-3, final_steps=200)
    try:
        run_loop(lambda i, s: (s, {"loss": 1.0}), 0, 10, COLUMNS, history_every=1, check_every=5, convergence=rule)
    except ValueError as error:
        assert "skip_to" in str(error)
    else:
        raise AssertionError("no error")


def test_a_fit_whose_parameters_still_move_runs_on_past_the_loss_plateau():
    flat = lambda i: 1.0  # noqa: E731 - the loss rule alone stops at the check after step 500
    rule = ConvergenceRule(earliest_step=400, window_steps=100, tolerance=1e-3)
    held = run_loop(lambda i, s: (s + 1, {"loss": np.float32(flat(i))}), 0, 2000, COLUMNS, history_every=10,
                    check_every=100, convergence=rule,
                    unsettled=lambda state, step: "still moving" if step < 1200 else None)
    assert held.steps_done == 1200 and held.stop_reason.startswith("converged at step 1190")


def _camera_state(centre_m: float, rotation_rad: float = 0.0):
    """A bilevel loop state (train, opt_state) whose 8 cameras' raw deltas are all (x, x, x)."""
    from types import SimpleNamespace
    cameras = SimpleNamespace(centre=np.full((8, 3), centre_m), rotation=np.full((8, 3), rotation_rad))
    return SimpleNamespace(cameras=cameras), None


def test_camera_check_holds_until_no_centre_moved_a_millimetre_over_a_window():
    from compute.fit.bilevel import cameras_unsettled

    assert cameras_unsettled(PARAMETER_SETS["cpu_full_budget"], 2000) is None       # no threshold set
    assert cameras_unsettled(PARAMETER_SETS["cpu_default"].replace(camera_start_fraction=1.0), 2000) is None
    check = cameras_unsettled(PARAMETER_SETS["cpu_default"], 2000)                   # 1 mm over 200 steps
    assert check(_camera_state(0.0), 1000).startswith("camera deltas: no check a window back")
    assert check(_camera_state(0.0), 1100) is not None                              # still no check at <= 900
    moving = check(_camera_state(0.002), 1200)                                       # 2 mm per axis since 1000
    assert moving == "cameras still moving: 3.46 mm, 0.000 deg over 200 steps"
    assert check(_camera_state(0.0021), 1300) is not None                           # 3.6 mm since step 1100
    assert check(_camera_state(0.0022), 1400) is None                               # 0.35 mm since step 1200
    with_rotation = cameras_unsettled(PARAMETER_SETS["cpu_default"].replace(convergence_camera_rotation_deg=0.02),
                                      2000)
    with_rotation(_camera_state(0.0, 0.0), 1000)
    assert with_rotation(_camera_state(0.0, np.radians(0.02)), 1200).startswith("cameras still moving: 0.00 mm")
