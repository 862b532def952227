"""Benchmark: markers for 300 poses (MOVI87, 87 markers), value and value+gradient, ms per call.

Compares the jitted MJX path (``compute.kinematics.markers_over_time``) with a plain-numpy reference
loop over the same model data (and C MuJoCo's ``mj_kinematics`` loop), same run, same poses.
Run: ``.venv/bin/python bench/bench_kinematics.py [--poses 300] [--repeats 30]``.
"""
from __future__ import annotations

import argparse
import time

from pipeline.jax_setup import configure_xla_flags

configure_xla_flags()  # the XLA options of the mmc commands, before JAX starts
import jax  # noqa: E402
import jax.numpy as jnp
import mujoco
import numpy as np

from compute import kinematics as K


def numpy_markers(m: mujoco.MjModel, site_ids: np.ndarray, qpos: np.ndarray) -> np.ndarray:
    """Reference forward kinematics in plain numpy: (T, Q) -> (T, J, 3). Hinge/slide joints at body
    origins, joints applied in order inside each body (MuJoCo semantics)."""
    out = np.empty((len(qpos), len(site_ids), 3))
    parent, jnt_body = m.body_parentid, m.jnt_bodyid
    for t, q in enumerate(qpos):
        xpos = np.zeros((m.nbody, 3))
        xmat = np.zeros((m.nbody, 3, 3))
        xmat[0] = np.eye(3)
        for b in range(1, m.nbody):
            p = parent[b]
            pos = xpos[p] + xmat[p] @ m.body_pos[b]
            w, x, y, z = m.body_quat[b]
            rot = xmat[p] @ np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                                      [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                                      [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
            for j in np.nonzero(jnt_body == b)[0]:
                axis = m.jnt_axis[j]
                angle = q[m.jnt_qposadr[j]] - m.qpos0[m.jnt_qposadr[j]]
                if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_SLIDE:
                    pos = pos + rot @ axis * angle
                else:
                    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
                    rot = rot @ (np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k)
            xpos[b], xmat[b] = pos, rot
        sb = m.site_bodyid[site_ids]
        out[t] = xpos[sb] + np.einsum("jab,jb->ja", xmat[sb], m.site_pos[site_ids])
    return out


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poses", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    body = K.load_body_model("MOVI87")
    m = K.build_mj_model("MOVI87")
    G, J, T = len(body.scale_group_names), body.n_markers, args.poses
    rng = np.random.default_rng(0)
    lo, hi = np.asarray(body.joint_lower), np.asarray(body.joint_upper)
    qpos = rng.uniform(lo, hi, size=(T, len(lo)))
    qpos[:, :3] = rng.uniform([-2, -2, 0.8], [2, 2, 1.0], size=(T, 3))
    q, s, o = jnp.asarray(qpos, jnp.float32), jnp.zeros(G), jnp.zeros((J, 3))

    value = jax.jit(lambda q, s, o: K.markers_over_time(body, q, s, o))
    value_and_grad = jax.jit(jax.value_and_grad(
        lambda q, s, o: jnp.sum(K.markers_over_time(body, q, s, o) ** 2), argnums=(0, 1, 2)))

    t0 = time.perf_counter()
    jax.block_until_ready(value(q, s, o))
    compile_value = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(value_and_grad(q, s, o))
    compile_grad = time.perf_counter() - t0

    ids = np.asarray(body.marker_site_ids)
    ref = numpy_markers(m, ids, qpos)
    err = np.abs(np.asarray(value(q, s, o)) - ref).max()

    d = mujoco.MjData(m)

    def c_loop():
        for row in qpos:
            d.qpos[:] = row
            mujoco.mj_kinematics(m, d)

    ms_value = median_ms(lambda: jax.block_until_ready(value(q, s, o)), args.repeats)
    ms_grad = median_ms(lambda: jax.block_until_ready(value_and_grad(q, s, o)), args.repeats)
    ms_numpy = median_ms(lambda: numpy_markers(m, ids, qpos), max(3, args.repeats // 10))
    ms_c = median_ms(c_loop, max(3, args.repeats // 3))

    print(f"markers for {T} poses x {J} markers ({len(lo)} DoF), CPU, median of {args.repeats}")
    print(f"  compile: value {compile_value:.1f} s, value+grad {compile_grad:.1f} s")
    print(f"  max |MJX - numpy| = {err:.2e} m")
    print(f"  MJX value (jit, vmap)        {ms_value:8.2f} ms")
    print(f"  MJX value+grad (q, s, δ)     {ms_grad:8.2f} ms")
    print(f"  numpy reference loop         {ms_numpy:8.2f} ms   (value/numpy ratio {ms_value / ms_numpy:.4f}, "
          f"numpy/value speed-up {ms_numpy / ms_value:.0f}x, numpy/value+grad {ms_numpy / ms_grad:.0f}x)")
    print(f"  C mj_kinematics loop         {ms_c:8.2f} ms   (C/value speed-up {ms_c / ms_value:.1f}x)")


if __name__ == "__main__":
    main()
