"""Planted feet and contact events: the foot model, levelling the stance foot, the pelvis translation that
keeps the stance foot on the floor, and footfalls detected from the same foot kinematics.

Feet are planted by construction. Joint angles are prescribed; the stance foot is levelled (hip rotation,
subtalar and ankle angles corrected so it has no roll and no yaw relative to the heading, its designed pitch
kept: ``level_stance_feet``); then the pelvis translation is solved per sample so that the lowest foot
contact marker (relative to its height when standing) rests on the floor and does not move horizontally
while it is the lowest ("rolling pivot", ``plant_feet``). A levelled stance foot is rigid and still from
heel strike to heel rise (heel slide ~0 m/s in straight walking; it pivots in turns). Vertical pelvis
oscillation, step length and step width follow from the leg geometry.

Contact events (``detect_footfalls``): a foot is in contact while its lowest contact marker is within
``CONTACT_HEIGHT_M`` of its standing height; a footfall is the start of such an interval after a swing that
lifted the foot and moved it forward. The contact time is the first supersample at which the foot is
planted, i.e. the instant the heel stops moving, which is what ``compute.gait.detect_foot_events`` measures
from heel/toe markers (it reads contact from the heel's horizontal speed; at 30 fps it lands on average
~0.2-0.6 frame later, the heel arriving at ~1.4 m/s and stopping within a frame).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from compute.kinematics import BodyModel
from compute.synthetic.conventions import JointConventions
from compute.synthetic.forward import forward_markers
from compute.synthetic.waveforms import stance_weight

CONTACT_HEIGHT_M = 0.003        # foot in contact while its lowest contact marker is this close to standing height
SWING_CLEARANCE_M = 0.01        # a swing must lift the foot at least this much ...
SWING_ADVANCE_M = 0.10          # ... and move it this far horizontally, else it is not a new footfall
STANCE_END = 0.62               # stance phase of each leg: [0, STANCE_END) of its stride


@dataclass(frozen=True)
class FootModel:
    """Contact markers of the foot model (geometry body): indices per foot, heel and toe indices."""

    contact: tuple[tuple[int, ...], tuple[int, ...]]   # (left, right)
    heel: tuple[int, int]
    toe: tuple[int, int]
    rigid: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())   # >= 3 markers on each calcaneus (orientation)


_CONTACT_MARKERS = ("{s}hee", "{s}toe", "{s}fifthmetatarsal", "{s}firstmetatarsal", "{s}fourthtoe")
_RIGID_FOOT_MARKERS = ("{s}hee", "{s}fifthmetatarsal", "{s}firstmetatarsal")   # all on the calcaneus body


def foot_model(body: BodyModel) -> FootModel:
    """The contact, heel/toe and calcaneus markers of a MOVI87-style body (``lhee``, ``ltoe``, metatarsals, …).

    Raises ValueError when a heel or toe marker is missing; without three calcaneus markers per foot the
    stance feet are not levelled (``rigid`` empty).
    """
    names = tuple(body.marker_names)
    contact = tuple(tuple(names.index(m.format(s=s)) for m in _CONTACT_MARKERS if m.format(s=s) in names)
                    for s in ("l", "r"))
    for s in ("l", "r"):
        for m in (f"{s}hee", f"{s}toe"):
            if m not in names:
                raise ValueError(f"foot_model: the foot model (marker set {body.marker_set}) needs marker {m!r}")
    rigid = tuple(tuple(names.index(m.format(s=s)) for m in _RIGID_FOOT_MARKERS if m.format(s=s) in names)
                  for s in ("l", "r"))
    if min(len(r) for r in rigid) < 3:
        rigid = ((), ())       # foot orientation cannot be measured: stance feet are not levelled
    return FootModel(contact, (names.index("lhee"), names.index("rhee")), (names.index("ltoe"), names.index("rtoe")),
                     rigid)


def plant_feet(rel: np.ndarray, feet: FootModel, standing_heights: np.ndarray, start_xy: np.ndarray,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pelvis translation (N, 3) that keeps the lowest contact marker on the floor and horizontally fixed.

    rel: (N, J, 3) markers computed with the pelvis origin at (0, 0, 0); standing_heights: (J,) contact
    marker heights above the floor when standing. Returns (translation (N, 3), foot heights (N, 2)), the
    latter = per foot, lowest contact marker height above its standing height once planted.
    allowed: optional (N, 2) bool [L, R]: which feet may bear weight (the stance phase by design).
    """
    idx = np.array(feet.contact[0] + feet.contact[1])
    n_left = len(feet.contact[0])
    rel_h = rel[:, idx, 2] - standing_heights[idx]           # (N, K)
    if allowed is not None:
        mask = np.concatenate([np.repeat(allowed[:, :1], n_left, 1),
                               np.repeat(allowed[:, 1:], len(idx) - n_left, 1)], axis=1)
        lowest = np.argmin(np.where(mask, rel_h, np.inf), axis=1)
    else:
        lowest = np.argmin(rel_h, axis=1)                   # pivot marker per sample
    z = -rel_h[np.arange(len(rel_h)), lowest]
    pivot_xy = rel[:, idx, :2]                              # (N, K, 2)
    N = rel.shape[0]
    xy = np.zeros((N, 2))
    xy[0] = start_xy
    k = lowest[1:]
    step = pivot_xy[np.arange(1, N), k] - pivot_xy[np.arange(N - 1), k]
    xy[1:] = start_xy - np.cumsum(step, axis=0)
    heights = rel_h + z[:, None]
    foot_h = np.stack([heights[:, :n_left].min(axis=1), heights[:, n_left:].min(axis=1)], axis=1)
    return np.concatenate([xy, z[:, None]], axis=1), foot_h


def detect_footfalls(times: np.ndarray, foot_heights: np.ndarray, foot_xy: np.ndarray,
                     allowed: np.ndarray | None = None) -> list[dict]:
    """Contact intervals from foot kinematics.

    times (N,) s; foot_heights (N, 2) [L, R] lowest contact marker above standing height (m);
    foot_xy (N, 2, 2) horizontal position of each heel. A footfall starts where the height falls below
    CONTACT_HEIGHT_M after a swing that rose above SWING_CLEARANCE_M and moved the heel by SWING_ADVANCE_M;
    its contact time is that first planted sample (the foot is stationary from there on). It ends
    (toe-off) where the height rises above CONTACT_HEIGHT_M again, time linearly interpolated between samples.
    Returns dicts (foot, contact_time, toe_off_time (NaN if still in contact), start, end) sorted by contact
    time (start/end are sample indices). allowed: optional (N, 2) stance-phase mask;
    a foot outside it is never in contact.
    """
    events = []
    for f, foot in enumerate("LR"):
        h = foot_heights[:, f]
        contact = h < CONTACT_HEIGHT_M
        if allowed is not None:
            contact &= allowed[:, f]
            h = np.where(allowed[:, f], h, np.maximum(h, 2 * CONTACT_HEIGHT_M))
        edges = np.flatnonzero(np.diff(contact.astype(int)))
        starts = [i + 1 for i in edges if contact[i + 1]]
        ends = [i + 1 for i in edges if not contact[i + 1]]
        prev_end, prev_xy = None, foot_xy[0, f]
        if contact[0]:
            first_end = next((e for e in ends if e > 0), None)
            prev_end = first_end
        for s in starts:
            swing = slice(prev_end if prev_end is not None else 0, s)
            lifted = prev_end is not None and np.max(h[swing]) > SWING_CLEARANCE_M
            moved = np.linalg.norm(foot_xy[s, f] - prev_xy) > SWING_ADVANCE_M
            e = next((e for e in ends if e > s), None)
            if lifted and moved:
                t_on = float(times[s])       # first planted sample: the heel stops here
                t_off = _crossing_time(times, h, e) if e is not None else float("nan")
                events.append(dict(foot=foot, contact_time=t_on, toe_off_time=t_off, start=s,
                                   end=e if e is not None else len(h)))
                prev_xy = foot_xy[s, f]
            if e is None:
                break
            prev_end = e
    return sorted(events, key=lambda ev: ev["contact_time"])


def _crossing_time(times: np.ndarray, h: np.ndarray, i: int) -> float:
    """Time where h crosses CONTACT_HEIGHT_M between samples i-1 and i (linear)."""
    h0, h1 = h[i - 1], h[i]
    frac = (CONTACT_HEIGHT_M - h0) / (h1 - h0) if h1 != h0 else 0.0
    return float(times[i - 1] + np.clip(frac, 0.0, 1.0) * (times[i] - times[i - 1]))


def _kabsch(reference: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Rotations (N, 3, 3) taking the centred reference (K, 3) onto the centred points (N, K, 3)."""
    x = reference - reference.mean(axis=0)
    y = points - points.mean(axis=1, keepdims=True)
    h = np.einsum("ki,nkj->nij", x, y)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nji,nkj->nik", vt, u)))
    fix = np.ones((points.shape[0], 3))
    fix[:, 2] = d
    return np.einsum("nji,nj,nkj->nik", vt, fix, u)


FOOT_LEVEL_ITERATIONS = 3
_FOOT_LEVEL_JOINTS = ("hip_rotation_{s}", "subtalar_angle_{s}", "ankle_angle_{s}")
_FOOT_LEVEL_PROBE_RAD = 1e-2


def level_stance_feet(geometry: BodyModel, conv: JointConventions, feet: FootModel, log_scale: np.ndarray,
                      offsets: np.ndarray, q: np.ndarray, phase_r: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Correct hip rotation, subtalar and ankle angles so each stance foot is level (no roll) and faces the
    heading (no yaw relative to it), keeping its pitch (heel rocker, foot flat, heel rise) unchanged.

    Without this, pelvis obliquity/rotation and hip adduction roll and yaw the stance foot about whichever
    contact marker is the pivot, and the heel slides (~0.08 m/s). The foot orientation is measured from its
    calcaneus markers relative to standing (Kabsch); the correction is a damped Gauss-Newton step on the
    (roll, pitch, yaw) rotation vector using finite-difference joint axes, blended in with the stance weight
    so the swing is untouched. q (N, Q) with pelvis translation 0 -> corrected copy (N, Q).
    """
    if not feet.rigid[0] or any(j.format(s=s) not in conv.index for j in _FOOT_LEVEL_JOINTS for s in "lr"):
        return q
    q = q.copy()
    standing = conv.neutral.copy()
    standing[[conv.index[n] for n in ("pelvis_tx", "pelvis_ty", "pelvis_tz")]] = 0.0
    reference = forward_markers(geometry, standing[None], log_scale, offsets)[0]
    weight = np.stack([stance_weight(phase_r + 0.5), stance_weight(phase_r)], axis=1)       # (N, 2) [L, R]
    columns = [[conv.index[j.format(s=s)] for j in _FOOT_LEVEL_JOINTS] for s in "lr"]
    cos_h, sin_h = np.cos(heading), np.sin(heading)
    to_heading = np.zeros((len(heading), 3, 3))            # world -> heading frame (Rz(-heading))
    to_heading[:, 0, 0], to_heading[:, 0, 1], to_heading[:, 1, 0], to_heading[:, 1, 1] = cos_h, sin_h, -sin_h, cos_h
    to_heading[:, 2, 2] = 1.0
    margin = np.deg2rad(1.0)
    for _ in range(FOOT_LEVEL_ITERATIONS):
        base = forward_markers(geometry, q, log_scale, offsets)
        probes = []
        for k in range(len(_FOOT_LEVEL_JOINTS)):
            qp = q.copy()
            qp[:, [columns[0][k], columns[1][k]]] += _FOOT_LEVEL_PROBE_RAD
            probes.append(forward_markers(geometry, qp, log_scale, offsets))
        for f in range(2):
            idx = list(feet.rigid[f])
            rot = _kabsch(reference[idx], base[:, idx])                       # (N, 3, 3) world, from standing
            local = Rotation.from_matrix(to_heading @ rot)                   # in the heading frame
            _, pitch, _ = local.as_euler("ZYX").T
            target = to_heading.transpose(0, 2, 1) @ Rotation.from_euler("y", pitch[:, None]).as_matrix()
            error = Rotation.from_matrix(target @ rot.transpose(0, 2, 1)).as_rotvec()   # (N, 3) world
            axes = np.stack([Rotation.from_matrix(_kabsch(reference[idx], p[:, idx]) @ rot.transpose(0, 2, 1)
                                                  ).as_rotvec() / _FOOT_LEVEL_PROBE_RAD for p in probes], axis=2)
            gram = np.einsum("nki,nkj->nij", axes, axes) + 1e-3 * np.eye(3)
            delta = np.linalg.solve(gram, np.einsum("nki,nk->ni", axes, error)[..., None])[..., 0]
            q[:, columns[f]] += weight[:, f:f + 1] * delta
        q[:, columns[0] + columns[1]] = np.clip(q[:, columns[0] + columns[1]],
                                                conv.lower[columns[0] + columns[1]] + margin,
                                                conv.upper[columns[0] + columns[1]] - margin)
    return q


def stance_allowed(phase_r: np.ndarray, envelope: np.ndarray) -> np.ndarray:
    """(N, 2) [L, R]: feet that may bear weight: stance phase [0, STANCE_END) by design, both when the
    gait envelope is small (standing, starting, stopping)."""
    phases = np.stack([np.mod(phase_r + 0.5, 1.0), np.mod(phase_r, 1.0)], axis=1)
    return (phases < STANCE_END) | (envelope[:, None] < 0.3)
