"""Publication-style figures of the report (matplotlib, Agg backend), each written as PNG and as vector PDF.

Plain functions over numpy arrays / DataFrames:

* ``plot_gc_curves`` — geometric consistency ``GC_d`` against the threshold ``d`` (px), one median
  curve with an inter-quartile band per condition;
* ``plot_gait_cycle_angles`` — pelvis tilt, hip flexion, hip adduction, knee and ankle flexion against % gait
  cycle, mean ± SD per side and per population, over an optional normal-gait reference band;
* ``plot_spatiotemporal_by_population`` — box and strip plots of speed, cadence, stance % and step length per
  population, each subject with its own marker;
* ``plot_trial_qc`` — a per-trial quality page: reprojection error per camera, ``GC_d``, missing-keypoint maps,
  joint angles against time;
* ``plot_joint_waveforms`` — hip / knee / ankle flexion over time for each leg, with walkway footfalls
  (contact lines, shaded stance) like the paper's Fig. 3–4 (Cotton 2024);
* ``plot_step_error_histograms`` — step width / stride length / step length errors (mm) by population;
* ``plot_reprojection_overlay`` — projected model markers vs detected keypoints for chosen frames and
  cameras, on a blank canvas of the image size or on a given video frame.

``report_figures`` feeds them from the report frames, ``trial_figures`` from one fitted trial in the database
(through ``schemas.reads``).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from compute.cameras import project_points_numpy, unstack_cameras  # noqa: E402
from compute.metrics import GC_THRESHOLDS_PX  # noqa: E402
from pipeline.report.stats import (STEP_ERROR_COLUMNS, best_condition, condition_labels,  # noqa: E402
                                   primary_condition, sigma_iqr)
from schemas.reads import observations, results  # noqa: E402

# Okabe–Ito colour-blind-safe palette
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
LEG_COLOURS = {"L": "#0072B2", "R": "#D55E00"}
LEG_NAMES = {"L": "Left", "R": "Right"}
STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 9,
}
WAVEFORM_JOINTS = (("hip_flexion", "Hip flexion"), ("knee_angle", "Knee flexion"), ("ankle_angle", "Ankle dorsiflexion"))


def _save(fig: plt.Figure, path: str | Path) -> Path:
    """Write ``fig`` as ``path`` (PNG, raster for viewing) and as the same name with ``.pdf`` (vector, for
    papers: every figure here draws lines, patches and meshes, never embedded images, unless video frames are
    passed in), close it, return the PNG path."""
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------------
# GC_d curves
# --------------------------------------------------------------------------------------------------


def plot_gc_curves(
    curves: Mapping[str, np.ndarray],
    path: str | Path,
    thresholds_px: np.ndarray | None = None,
    title: str = "Geometric consistency of the fitted model",
    highlight_px: float = 5.0,
) -> Path:
    """``GC_d`` against ``d`` for each condition.

    curves: ``{condition: (N, D) or (D,)}`` fractions in [0, 1], one row per fitted trial;
    thresholds_px: (D,) pixel thresholds (default ``compute.metrics.GC_THRESHOLDS_PX`` = 1..20).
    Draws the median over trials with an inter-quartile band, and marks ``d = highlight_px`` with the
    median ``GC_5`` of each condition in the legend.
    """
    d = np.asarray(GC_THRESHOLDS_PX if thresholds_px is None else thresholds_px, dtype=float)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.0, 4.2))
        for i, (label, values) in enumerate(curves.items()):
            values = np.atleast_2d(np.asarray(values, dtype=float))
            if values.shape[1] != d.size:
                raise ValueError(f"curves[{label!r}]: expected (N, {d.size}) GC values, got {values.shape}")
            colour = PALETTE[i % len(PALETTE)]
            median = np.nanmedian(values, axis=0)
            at = np.interp(highlight_px, d, median)
            ax.plot(d, median, color=colour, lw=2, marker="o", ms=3,
                    label=f"{label} (n={values.shape[0]}, GC$_{{{highlight_px:g}}}$={at:.2f})")
            if values.shape[0] > 1:
                q25, q75 = np.nanpercentile(values, [25, 75], axis=0)
                ax.fill_between(d, q25, q75, color=colour, alpha=0.18, lw=0)
        ax.axvline(highlight_px, color="0.4", ls="--", lw=1)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlim(d.min() - 0.5 if d.min() > 0 else 0, d.max())
        ax.set_ylim(0, 1.0)
        ax.set_xlabel("Reprojection threshold $d$ (px)")
        ax.set_ylabel("GC$_d$ (fraction of confident keypoints within $d$)")
        ax.set_title(title)
        ax.legend(loc="lower right")
        return _save(fig, path)


# --------------------------------------------------------------------------------------------------
# joint-angle waveforms
# --------------------------------------------------------------------------------------------------


def _joint_column(joint_names: Sequence[str], stem: str, side: str) -> int | None:
    name = f"{stem}_{side.lower()}"
    return list(joint_names).index(name) if name in joint_names else None


def plot_joint_waveforms(
    times: np.ndarray,
    qpos: np.ndarray,
    joint_names: Sequence[str],
    path: str | Path,
    footfalls: pd.DataFrame | None = None,
    detected_contacts: pd.DataFrame | None = None,
    title: str | None = None,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Hip / knee / ankle flexion (degrees) for the left and right legs over time.

    times: (T,) s; qpos: (T, Q) radians (OpenSim coordinate values; plotted as stored, sign convention of
    the model); joint_names: (Q,). footfalls: walkway steps with columns ``foot`` ('L'/'R'),
    ``contact_time`` (s, already in the video clock) and optional ``toe_off_time``: each contact is a
    vertical line and each stance phase is shaded. detected_contacts: optional model-detected contacts
    (``foot``, ``contact_time``), drawn as triangles. reference: optional ``(times, qpos)`` ground truth
    drawn as a thin dashed line.
    """
    times = np.asarray(times, dtype=float)
    qpos = np.asarray(qpos, dtype=float)
    if qpos.shape != (times.size, len(joint_names)):
        raise ValueError(f"qpos: expected shape ({times.size}, {len(joint_names)}), got {qpos.shape}")
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(WAVEFORM_JOINTS), 2, figsize=(10, 7.2), sharex=True, sharey="row")
        for row, (stem, label) in enumerate(WAVEFORM_JOINTS):
            for col, side in enumerate(("L", "R")):
                ax = axes[row, col]
                colour = LEG_COLOURS[side]
                j = _joint_column(joint_names, stem, side)
                if j is None:
                    ax.text(0.5, 0.5, f"no {stem}_{side.lower()}", ha="center", va="center", transform=ax.transAxes)
                    continue
                if footfalls is not None and len(footfalls):
                    _draw_footfalls(ax, footfalls[footfalls["foot"].astype(str).str.upper().str[0] == side], colour)
                if reference is not None:
                    ax.plot(reference[0], np.degrees(np.asarray(reference[1])[:, j]), color="0.2", lw=1, ls="--")
                ax.plot(times, np.degrees(qpos[:, j]), color=colour, lw=1.8)
                if detected_contacts is not None and len(detected_contacts):
                    sel = detected_contacts[detected_contacts["foot"].astype(str).str.upper().str[0] == side]
                    ys = np.interp(sel["contact_time"].to_numpy(float), times, np.degrees(qpos[:, j]))
                    ax.plot(sel["contact_time"], ys, "v", color="k", ms=5)
                if col == 0:
                    ax.set_ylabel(f"{label} (deg)")
                if row == 0:
                    ax.set_title(f"{LEG_NAMES[side]} leg")
        for ax in axes[-1]:
            ax.set_xlabel("Time (s)")
        handles = [Line2D([], [], color=LEG_COLOURS["L"], lw=1.8, label="Left (model)"),
                   Line2D([], [], color=LEG_COLOURS["R"], lw=1.8, label="Right (model)")]
        if footfalls is not None and len(footfalls):
            handles += [Line2D([], [], color="0.3", lw=1, ls=":", label="Walkway foot contact"),
                        Patch(color="0.5", alpha=0.15, label="Walkway stance")]
        if detected_contacts is not None and len(detected_contacts):
            handles.append(Line2D([], [], color="k", marker="v", ls="", label="Detected contact (model)"))
        if reference is not None:
            handles.append(Line2D([], [], color="0.2", lw=1, ls="--", label="Ground truth"))
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), bbox_to_anchor=(0.5, -0.01))
        if title:
            fig.suptitle(title)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        return _save(fig, path)


def _draw_footfalls(ax: plt.Axes, steps: pd.DataFrame, colour: str) -> None:
    for _, step in steps.iterrows():
        t0 = float(step["contact_time"])
        ax.axvline(t0, color="0.3", ls=":", lw=1)
        t1 = step.get("toe_off_time", np.nan)
        if t1 is not None and np.isfinite(float(t1)):
            ax.axvspan(t0, float(t1), color=colour, alpha=0.12, lw=0)


# --------------------------------------------------------------------------------------------------
# step-error histograms
# --------------------------------------------------------------------------------------------------


def plot_step_error_histograms(
    steps: pd.DataFrame,
    path: str | Path,
    by: str = "population",
    title: str = "Step parameter errors against the walkway",
) -> Path:
    """Histograms of step width / stride length / step length errors (mm), one colour per ``by`` group,
    with each group's ``σ_IQR`` in the legend. steps: columns ``<metric>_error_m`` and ``by``."""
    groups = list(steps.groupby(by, sort=True)) if by in steps else [("all", steps)]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=False)
        for ax, (column, label) in zip(axes, STEP_ERROR_COLUMNS.items()):
            values_mm = 1000.0 * steps[column].astype(float).to_numpy() if column in steps else np.array([])
            finite = values_mm[np.isfinite(values_mm)]
            lim = max(np.nanpercentile(np.abs(finite), 99) * 1.1, 5.0) if finite.size else 20.0
            bins = np.linspace(-lim, lim, 31)
            for i, (name, group) in enumerate(groups):
                v = 1000.0 * group[column].astype(float).to_numpy() if column in group else np.array([])
                v = v[np.isfinite(v)]
                if not v.size:
                    continue
                colour = PALETTE[i % len(PALETTE)]
                clipped = np.clip(v, -lim, lim)
                ax.hist(clipped, bins=bins, color=colour, alpha=0.18, histtype="stepfilled")
                ax.hist(clipped, bins=bins, color=colour, lw=1.6, histtype="step",
                        label=f"{name} (σ$_{{IQR}}$={1000 * sigma_iqr(v / 1000):.1f} mm, n={v.size})")
            ax.axvline(0, color="0.3", lw=0.8)
            ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            low, high = ax.get_ylim()
            ax.set_ylim(low, high * (1.25 + 0.12 * len(groups)))  # head-room for the legend
            ax.set_xlabel(f"{label} error (mm)")
            ax.set_title(label)
            ax.legend(loc="upper left", fontsize=8)
        axes[0].set_ylabel("Steps")
        fig.suptitle(title)
        fig.tight_layout()
        return _save(fig, path)


# --------------------------------------------------------------------------------------------------
# reprojection overlay
# --------------------------------------------------------------------------------------------------


def plot_reprojection_overlay(
    predicted: np.ndarray,
    observed: np.ndarray,
    confidence: np.ndarray,
    frames: Sequence[int],
    cameras: Sequence[int],
    image_size: Sequence[int] | np.ndarray,
    path: str | Path,
    camera_names: Sequence[str] | None = None,
    images: Mapping[tuple[int, int], np.ndarray] | None = None,
    min_confidence: float = 0.5,
    times: np.ndarray | None = None,
    title: str | None = None,
    zoom: bool = True,
) -> Path:
    """Model markers projected into the cameras vs the detector's keypoints.

    predicted, observed: (C, T, J, 2) px; confidence: (C, T, J) in [0, 1]; frames: frame indices t;
    cameras: camera indices c; image_size: (width, height) px, or (C, 2) per camera. images: optional
    ``{(c, t): (H, W[, 3]) array}`` video frames drawn underneath; otherwise a blank canvas of the image
    size. Detected keypoints are circles (filled when ``confidence ≥ min_confidence``, hollow below),
    model markers are crosses, and a thin line joins each pair; panel titles give the median error over
    confident keypoints. zoom: limit each panel to the person (bounding box of the points plus a margin,
    at least a quarter of the image wide, clipped to the image); False shows the whole image.
    """
    predicted = np.asarray(predicted, dtype=float)
    observed = np.asarray(observed, dtype=float)
    confidence = np.asarray(confidence, dtype=float)
    if predicted.shape != observed.shape or predicted.ndim != 4 or confidence.shape != predicted.shape[:3]:
        raise ValueError(f"predicted/observed: expected (C, T, J, 2) and confidence (C, T, J), got "
                         f"{predicted.shape}, {observed.shape}, {confidence.shape}")
    sizes = np.asarray(image_size, dtype=float)
    sizes = np.broadcast_to(sizes, (predicted.shape[0], 2)) if sizes.ndim == 1 else sizes
    n_rows, n_cols = len(frames), len(cameras)
    aspect = float(np.mean(sizes[list(cameras), 1] / sizes[list(cameras), 0]))
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(max(4.6 * n_cols, 9.0), (4.6 * aspect + 0.5) * n_rows + 0.8),
                                 squeeze=False, layout="constrained")
        for r, t in enumerate(frames):
            for k, c in enumerate(cameras):
                ax = axes[r, k]
                width, height = sizes[c]
                image = None if images is None else images.get((c, t))
                if image is not None:
                    ax.imshow(image, extent=(0, width, height, 0), cmap="gray" if np.ndim(image) == 2 else None)
                else:
                    ax.add_patch(plt.Rectangle((0, 0), width, height, color="#20242a", zorder=0))
                pred, obs, conf = predicted[c, t], observed[c, t], confidence[c, t]
                confident = (conf >= min_confidence) & np.all(np.isfinite(obs), axis=-1)
                weak = (conf > 0) & ~confident & np.all(np.isfinite(obs), axis=-1)
                visible = np.all(np.isfinite(pred), axis=-1)
                pairs = confident & visible
                for j in np.flatnonzero(pairs):
                    ax.plot([obs[j, 0], pred[j, 0]], [obs[j, 1], pred[j, 1]], color="#F0E442", lw=1.0, zorder=2)
                ax.scatter(obs[confident, 0], obs[confident, 1], s=18, facecolor="#56B4E9", edgecolor="white",
                           lw=0.4, zorder=3)
                ax.scatter(obs[weak, 0], obs[weak, 1], s=16, facecolor="none", edgecolor="#56B4E9", lw=0.8, zorder=3)
                ax.scatter(pred[visible, 0], pred[visible, 1], s=22, marker="x", color="#E69F00", lw=1.2, zorder=4)
                err = np.linalg.norm(pred[pairs] - obs[pairs], axis=-1)
                med = f"{np.median(err):.1f} px" if err.size else "–"
                cam = camera_names[c] if camera_names is not None else f"camera {c}"
                when = f"t = {times[t]:.2f} s" if times is not None else f"frame {t}"
                ax.set_title(f"{cam}, {when}\nmedian error {med} ({err.size} keypoints)", fontsize=9)
                (x0, x1), (y0, y1) = _panel_limits(pred, obs, width, height, zoom)
                ax.set_xlim(x0, x1)
                ax.set_ylim(y1, y0)  # image coordinates: y down
                ax.set_aspect("equal")
                ax.tick_params(labelsize=7)
                ax.set_xlabel("u (px)", fontsize=8)
                ax.set_ylabel("v (px)", fontsize=8)
        handles = [
            Line2D([], [], marker="o", ls="", markerfacecolor="#56B4E9", markeredgecolor="white",
                   label=f"Detected keypoint (confidence ≥ {min_confidence:g})"),
            Line2D([], [], marker="o", ls="", markerfacecolor="none", markeredgecolor="#56B4E9",
                   label="Detected keypoint (low confidence)"),
            Line2D([], [], marker="x", ls="", color="#E69F00", label="Model marker (projected)"),
            Line2D([], [], color="#F0E442", label="Residual"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=4 if n_cols > 1 else 2)
        if title:
            fig.suptitle(title)
        return _save(fig, path)


def _panel_limits(pred: np.ndarray, obs: np.ndarray, width: float, height: float, zoom: bool
                  ) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits: the whole image, or a box around the finite points with the image's aspect ratio."""
    points = np.concatenate([pred.reshape(-1, 2), obs.reshape(-1, 2)])
    points = points[np.all(np.isfinite(points), axis=-1)]
    points = points[(points[:, 0] >= 0) & (points[:, 0] <= width) & (points[:, 1] >= 0) & (points[:, 1] <= height)]
    if not zoom or len(points) < 2:
        return (0.0, width), (0.0, height)
    centre = (points.min(0) + points.max(0)) / 2
    half_h = max((points[:, 1].max() - points[:, 1].min()) * 0.6, (points[:, 0].max() - points[:, 0].min()) * 0.6
                 * height / width, height / 8)
    half_w = half_h * width / height
    half_w, half_h = min(half_w, width / 2), min(half_h, height / 2)
    cx = float(np.clip(centre[0], half_w, width - half_w))
    cy = float(np.clip(centre[1], half_h, height - half_h))
    return (cx - half_w, cx + half_w), (cy - half_h, cy + half_h)


# --------------------------------------------------------------------------------------------------
# joint angles over the gait cycle
# --------------------------------------------------------------------------------------------------

#: Joint angles of the gait-cycle figure: (OpenSim coordinate stem, label, bilateral). A bilateral stem is read on
#: the stride's own side (``hip_flexion`` -> ``hip_flexion_l`` for a left stride); pelvis tilt is one coordinate
#: of the whole pelvis, drawn over the strides of each side.
GAIT_CYCLE_JOINTS = (("pelvis_tilt", "Pelvis tilt", False), ("hip_flexion", "Hip flexion", True),
                     ("hip_adduction", "Hip adduction", True), ("knee_angle", "Knee flexion", True),
                     ("ankle_angle", "Ankle dorsiflexion", True))
SIDES = ("L", "R")


def cycle_joint_angles(angles: np.ndarray, coordinate_names: Sequence[str], sides: Sequence[str],
                       joints: Sequence[tuple[str, str, bool]] = GAIT_CYCLE_JOINTS) -> np.ndarray:
    """The figure's joints for each stride, on the stride's own side.

    angles: (S, 101, Q) rad, every coordinate over 0–100 % of each stride's cycle; coordinate_names: (Q,)
    OpenSim names; sides: (S,) 'L'/'R', whose cycle each stride is. Returns (S, 101, K) rad, K = len(joints).
    A coordinate missing from ``coordinate_names`` is a KeyError naming it.
    """
    angles = np.asarray(angles, dtype=float)
    names = list(coordinate_names)
    sides = np.asarray(sides).astype(str)
    if angles.ndim != 3 or angles.shape[2] != len(names) or angles.shape[0] != sides.size:
        raise ValueError(f"angles: expected (S={sides.size}, 101, Q={len(names)}), got {angles.shape}")
    out = np.full((angles.shape[0], angles.shape[1], len(joints)), np.nan)
    for k, (stem, _, bilateral) in enumerate(joints):
        for side in SIDES:
            name = f"{stem}_{side.lower()}" if bilateral else stem
            if name not in names:
                raise KeyError(f"no coordinate {name!r} among the gait-cycle angles {names}")
            rows = sides == side
            out[rows, :, k] = angles[rows, :, names.index(name)]
    return out


def mean_sd_band(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over strides, ignoring NaN: angles (S, 101, K) -> two (101, K) arrays.

    Used for a normal-gait reference: e.g. the lab's own control population, both sides pooled
    (``mean_sd_band(cycle_joint_angles(...)[population == "control"])``), or published normative curves.
    """
    angles = np.asarray(angles, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a sample missing in every stride stays NaN, silently
        return np.nanmean(angles, axis=0), np.nanstd(angles, axis=0)


def plot_gait_cycle_angles(
    angles: np.ndarray,
    sides: Sequence[str],
    groups: Sequence[str],
    path: str | Path,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    reference_label: str = "Reference (mean ± SD)",
    toe_off_percent: np.ndarray | None = None,
    joints: Sequence[tuple[str, str, bool]] = GAIT_CYCLE_JOINTS,
    title: str | None = "Joint angles over the gait cycle",
) -> Path:
    """Joint angles (degrees) against % gait cycle: one row per joint, one column per side, a mean line with a
    ±1 SD band per group (e.g. population).

    angles: (S, 101, K) rad from :func:`cycle_joint_angles` (0 % = foot contact, 100 % = the next contact of the
    same foot); sides: (S,) 'L'/'R'; groups: (S,) labels. reference: optional ``(mean, sd)`` (101, K) rad drawn as
    a grey band in every panel (both sides), e.g. :func:`mean_sd_band` of the control population.
    toe_off_percent: optional (S,) % of cycle of each stride's toe-off; each group's mean is a dotted vertical
    line (the end of stance). Angles keep the model's sign convention (OpenSim: flexion, adduction and
    dorsiflexion positive; pelvis tilt positive = posterior).
    """
    angles = np.asarray(angles, dtype=float)
    sides = np.asarray(sides).astype(str)
    groups = np.asarray(groups).astype(str)
    if angles.ndim != 3 or angles.shape[2] != len(joints) or not angles.shape[0] == sides.size == groups.size:
        raise ValueError(f"angles: expected (S, 101, K={len(joints)}) with S = len(sides) = len(groups), got "
                         f"{angles.shape}, {sides.size}, {groups.size}")
    percent = np.linspace(0.0, 100.0, angles.shape[1])
    names = sorted(set(groups))
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(joints), 2, figsize=(9.5, 2.2 * len(joints) + 0.9), sharex=True,
                                 sharey="row", squeeze=False)
        for k, (_, label, _) in enumerate(joints):
            for col, side in enumerate(SIDES):
                ax = axes[k, col]
                if reference is not None:
                    mean, sd = (np.degrees(np.asarray(a, dtype=float)[:, k]) for a in reference)
                    ax.fill_between(percent, mean - sd, mean + sd, color="0.55", alpha=0.25, lw=0)
                    ax.plot(percent, mean, color="0.45", lw=1, ls="--")
                for name in names:
                    rows = (sides == side) & (groups == name)
                    if not rows.any():
                        continue
                    mean, sd = (np.degrees(a[:, k]) for a in mean_sd_band(angles[rows]))
                    ax.fill_between(percent, mean - sd, mean + sd, color=colours[name], alpha=0.2, lw=0)
                    ax.plot(percent, mean, color=colours[name], lw=1.8)
                    if toe_off_percent is not None:
                        toe_off = np.asarray(toe_off_percent, dtype=float)[rows]
                        if np.isfinite(toe_off).any():
                            ax.axvline(np.nanmean(toe_off), color=colours[name], ls=":", lw=1.2)
                if col == 0:
                    ax.set_ylabel(f"{label} (deg)")
                if k == 0:
                    ax.set_title(f"{LEG_NAMES[side]} strides")
        for ax in axes[-1]:
            ax.set_xlabel("Gait cycle (%)")
            ax.set_xlim(0, 100)
        counts = {name: int((groups == name).sum()) for name in names}
        handles = [Line2D([], [], color=colours[n], lw=1.8, label=f"{n} (mean ± SD, {counts[n]} strides)")
                   for n in names]
        if reference is not None:
            handles.append(Patch(color="0.55", alpha=0.35, label=reference_label))
        if toe_off_percent is not None:
            handles.append(Line2D([], [], color="0.3", ls=":", label="Mean toe-off"))
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3), bbox_to_anchor=(0.5, -0.005))
        if title:
            fig.suptitle(title)
        fig.tight_layout(rect=(0, 0.03 + 0.02 * (len(handles) // 3), 1, 1))
        return _save(fig, path)


# --------------------------------------------------------------------------------------------------
# spatiotemporal parameters by population
# --------------------------------------------------------------------------------------------------

#: Panels of the spatiotemporal figure: (column, label, unit). Column names are the attributes of
#: :class:`compute.spatiotemporal.SpatiotemporalParameters`.
SPATIOTEMPORAL_PANELS = (("walking_speed_m_s", "Walking speed", "m/s"),
                         ("cadence_steps_per_min", "Cadence", "steps/min"),
                         ("stance_percent", "Stance", "% gait cycle"),
                         ("step_length_m", "Step length", "m"))
SUBJECT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def plot_spatiotemporal_by_population(
    parameters: pd.DataFrame,
    path: str | Path,
    panels: Sequence[tuple[str, str, str]] = SPATIOTEMPORAL_PANELS,
    group: str = "population",
    subject: str = "subject_id",
    title: str | None = "Spatiotemporal parameters by population",
) -> Path:
    """Box plots (median, quartiles, whiskers to 1.5 IQR) of each parameter per ``group``, with every row drawn
    on top as a point whose marker identifies the subject.

    parameters: one row per trial and side (or per trial), columns ``group``, ``subject`` and each panel's
    column (units as in ``panels``). A missing column is a KeyError naming it.
    """
    missing = [c for c in [group, subject, *(p[0] for p in panels)] if c not in parameters]
    if missing:
        raise KeyError(f"spatiotemporal frame lacks column(s) {missing} (has {list(parameters.columns)})")
    names = sorted(parameters[group].astype(str).unique())
    subjects = sorted(parameters[subject].astype(str).unique())
    markers = {s: SUBJECT_MARKERS[i % len(SUBJECT_MARKERS)] for i, s in enumerate(subjects)}
    rng = np.random.default_rng(0)  # fixed jitter: the same data give the same figure
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels) + 1.0, 4.0), squeeze=False)
        for ax, (column, label, unit) in zip(axes[0], panels):
            data = [parameters.loc[parameters[group].astype(str) == n, column].astype(float).dropna().to_numpy()
                    for n in names]
            positions = np.arange(len(names))
            drawn = [i for i, d in enumerate(data) if d.size]
            if drawn:
                boxes = ax.boxplot([data[i] for i in drawn], positions=positions[drawn], widths=0.55,
                                   showfliers=False, patch_artist=True, medianprops=dict(color="k", lw=1.5))
                for i, patch in zip(drawn, boxes["boxes"]):
                    patch.set(facecolor=PALETTE[i % len(PALETTE)], alpha=0.3)
            for i, name in enumerate(names):
                rows = parameters[parameters[group].astype(str) == name]
                for who, subset in rows.groupby(rows[subject].astype(str)):
                    values = subset[column].astype(float).to_numpy()
                    ax.scatter(i + rng.uniform(-0.15, 0.15, values.size), values, marker=markers[who], s=26,
                               color=PALETTE[i % len(PALETTE)], edgecolor="k", lw=0.5, zorder=3)
            ax.set_xticks(positions, names, rotation=20)
            ax.set_xlim(-0.6, len(names) - 0.4)
            ax.set_title(label)
            ax.set_ylabel(f"{label} ({unit})")
        handles = [Line2D([], [], marker=markers[s], ls="", color="0.6", markeredgecolor="k", label=s)
                   for s in subjects]
        fig.legend(handles=handles, title="Subject", loc="center left", bbox_to_anchor=(1.0, 0.5))
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return _save(fig, path)


# --------------------------------------------------------------------------------------------------
# per-trial quality-control page
# --------------------------------------------------------------------------------------------------

QC_WAVEFORM_JOINTS = (("hip_flexion", "hip flexion"), ("knee_angle", "knee flexion"), ("ankle_angle", "ankle dorsiflexion"))


def reprojection_errors_by_camera(predicted: np.ndarray, observed: np.ndarray, confidence: np.ndarray,
                                  min_confidence: float = 0.5) -> list[np.ndarray]:
    """Per camera, the distances (px) between projected model markers and detected keypoints with
    ``confidence ≥ min_confidence`` (both finite). predicted, observed: (C, T, J, 2) px; confidence: (C, T, J).
    Returns C arrays (N_c,) px."""
    predicted, observed = np.asarray(predicted, dtype=float), np.asarray(observed, dtype=float)
    confidence = np.asarray(confidence, dtype=float)
    error = np.linalg.norm(predicted - observed, axis=-1)  # (C, T, J); NaN where either point is missing
    keep = (confidence >= min_confidence) & np.isfinite(error)
    return [error[c][keep[c]] for c in range(error.shape[0])]


def missing_keypoint_shares(confidence: np.ndarray, n_time_bins: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share of detections with confidence 0 (not detected) per camera.

    confidence: (C, T, J) in [0, 1]. Returns ``by_keypoint`` (C, J): share of frames without keypoint j;
    ``by_time`` (C, B): share of keypoints missing in each of B ≤ n_time_bins equal runs of frames; ``edges``
    (B + 1,) frame indices bounding the runs.
    """
    missing = np.asarray(confidence, dtype=float) <= 0.0
    n_frames = missing.shape[1]
    edges = np.unique(np.linspace(0, n_frames, min(n_time_bins, n_frames) + 1).round().astype(int))
    by_time = np.stack([missing[:, a:b].mean(axis=(1, 2)) for a, b in zip(edges[:-1], edges[1:])], axis=1)
    return missing.mean(axis=1), by_time, edges


def plot_trial_qc(
    times: np.ndarray,
    qpos: np.ndarray,
    joint_names: Sequence[str],
    confidence: np.ndarray,
    errors_px: Sequence[np.ndarray],
    gc_curve: np.ndarray,
    path: str | Path,
    camera_names: Sequence[str] | None = None,
    keypoint_names: Sequence[str] | None = None,
    thresholds_px: np.ndarray | None = None,
    title: str | None = None,
    held_out_median_px: Sequence[float] | None = None,
    flagged_cameras: Sequence[bool] | None = None,
) -> Path:
    """One page to judge a fitted trial: reprojection error per camera (box plots, px), its ``GC_d`` curve,
    where keypoints are missing (confidence 0: share per camera × keypoint and per camera × time), and the
    sagittal joint angles against time.

    held_out_median_px: (C,) the session's cross-validation (``schemas.validation``): each camera's median error
    when a refit without it predicts it, drawn over the box plots (NaN: none); flagged_cameras: (C,) bool,
    cameras whose bundle adjustment moved them beyond a limit without held-out improvement (marked "!").

    times: (T,) s; qpos: (T, Q) rad with joint_names (Q,); confidence: (C, T, J) in [0, 1]; errors_px: C arrays
    of model-to-detection distances (px, :func:`reprojection_errors_by_camera`); gc_curve: (D,) fractions at
    thresholds_px (default ``compute.metrics.GC_THRESHOLDS_PX``).
    """
    times, qpos = np.asarray(times, dtype=float), np.asarray(qpos, dtype=float)
    confidence = np.asarray(confidence, dtype=float)
    d = np.asarray(GC_THRESHOLDS_PX if thresholds_px is None else thresholds_px, dtype=float)
    gc_curve = np.asarray(gc_curve, dtype=float).reshape(-1)
    if qpos.shape != (times.size, len(joint_names)) or gc_curve.size != d.size or len(errors_px) != confidence.shape[0]:
        raise ValueError(f"expected qpos ({times.size}, {len(joint_names)}), gc_curve ({d.size},), "
                         f"{confidence.shape[0]} error arrays; got {qpos.shape}, {gc_curve.shape}, {len(errors_px)}")
    n_cameras, _, n_keypoints = confidence.shape
    camera_names = list(camera_names) if camera_names is not None else [f"cam {c}" for c in range(n_cameras)]
    keypoint_names = list(keypoint_names) if keypoint_names is not None else [str(j) for j in range(n_keypoints)]
    by_keypoint, by_time, edges = missing_keypoint_shares(confidence)
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(13, 12), layout="constrained")
        grid = fig.add_gridspec(3, 2, height_ratios=(1.0, 1.1, 1.0))
        ax = fig.add_subplot(grid[0, 0])
        drawn = [c for c, e in enumerate(errors_px) if len(e)]
        if drawn:
            ax.boxplot([errors_px[c] for c in drawn], positions=drawn, widths=0.6, showfliers=False)
        ax.set_xticks(range(n_cameras), camera_names, rotation=30, fontsize=8)
        medians = [f"{np.median(e):.1f}" if len(e) else "–" for e in errors_px]
        if held_out_median_px is not None:
            ax.plot(range(n_cameras), np.asarray(held_out_median_px, float), ls="none", marker="D", ms=6,
                    color=PALETTE[1], label="median, camera held out of the fit")
            ax.legend(loc="upper right", fontsize=8)
        if flagged_cameras is not None:
            ax.set_xticks(range(n_cameras), [f"{name} (!)" if flag else name
                                             for name, flag in zip(camera_names, flagged_cameras)],
                          rotation=30, fontsize=8)
        ax.set_ylabel("Reprojection error (px)")
        ax.set_title(f"Reprojection error per camera (medians {', '.join(medians)} px)", fontsize=10)

        ax = fig.add_subplot(grid[0, 1])
        ax.plot(d, gc_curve, color=PALETTE[0], lw=2, marker="o", ms=3)
        ax.axvline(5, color="0.4", ls="--", lw=1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("Reprojection threshold $d$ (px)")
        ax.set_ylabel("GC$_d$")
        ax.set_title(f"Geometric consistency (GC$_5$ = {np.interp(5.0, d, gc_curve):.3f})")

        # pcolormesh, not imshow, and a 20-step colour map (matplotlib rasterises colour bars of ≥ 50 steps):
        # the page stays vector in the PDF
        shares = plt.get_cmap("magma_r", 20)
        ax = fig.add_subplot(grid[1, 0])
        mesh = ax.pcolormesh(np.arange(n_keypoints + 1), np.arange(n_cameras + 1), by_keypoint, vmin=0, vmax=1,
                             cmap=shares)
        ax.set_xticks(np.arange(n_keypoints) + 0.5, keypoint_names, rotation=90, fontsize=6)
        ax.set_yticks(np.arange(n_cameras) + 0.5, camera_names, fontsize=8)
        ax.invert_yaxis()
        ax.grid(False)
        ax.set_title("Missing keypoints (share of frames with confidence 0)", fontsize=10)
        ax = fig.add_subplot(grid[1, 1])
        frame_times = np.interp(edges, np.arange(times.size), times, right=times[-1] + (times[-1] - times[-2]
                                                                                         if times.size > 1 else 0))
        ax.pcolormesh(frame_times, np.arange(n_cameras + 1), by_time, vmin=0, vmax=1, cmap=shares)
        ax.set_yticks(np.arange(n_cameras) + 0.5, camera_names, fontsize=8)
        ax.invert_yaxis()
        ax.grid(False)
        ax.set_xlabel("Time (s)")
        ax.set_title("Missing keypoints over time (share of keypoints)", fontsize=10)
        fig.colorbar(mesh, ax=fig.axes[-2:], label="Share missing", shrink=0.8)

        for col, side in enumerate(SIDES):
            ax = fig.add_subplot(grid[2, col])
            for i, (stem, label) in enumerate(QC_WAVEFORM_JOINTS):
                j = _joint_column(joint_names, stem, side)
                if j is not None:
                    ax.plot(times, np.degrees(qpos[:, j]), color=PALETTE[i], lw=1.5, label=label)
            ax.set_xlabel("Time (s)")
            ax.set_ylabel("Angle (deg)")
            ax.set_title(f"{LEG_NAMES[side]} leg joint angles")
            ax.legend(loc="best", fontsize=8)
        if title:
            fig.suptitle(title)
        return _save(fig, path)


# --------------------------------------------------------------------------------------------------
# from report frames / the database
# --------------------------------------------------------------------------------------------------


def report_figures(steps: pd.DataFrame, trials: pd.DataFrame, out_dir: str | Path) -> dict[str, Path]:
    """Figures of the report: GC_d curves per condition (when trials carry ``gc_curve``), the same by population
    within the best condition, and step-error histograms of the primary condition (when there are matched
    steps). Frames as in :mod:`pipeline.report.stats`. Returns ``{name: path}``."""
    out_dir = Path(out_dir)
    paths: dict[str, Path] = {}
    if trials is not None and len(trials) and "gc_curve" in trials:
        labels = condition_labels(trials)
        curves: dict[str, list[np.ndarray]] = {}
        for label, curve in zip(labels, trials["gc_curve"]):
            curves.setdefault(label, []).append(np.asarray(curve, dtype=float).reshape(-1))
        paths["gc_curves"] = plot_gc_curves({k: np.stack(v) for k, v in sorted(curves.items())},
                                            out_dir / "gc_curves.png")
        if "population" in trials:
            # populations are compared within one method: the condition with the best mean GC_5
            best = best_condition(trials)
            by_pop: dict[str, list[np.ndarray]] = {}
            for label, population, curve in zip(labels, trials["population"], trials["gc_curve"]):
                if label == best:
                    by_pop.setdefault(str(population), []).append(np.asarray(curve, float).reshape(-1))
            paths["gc_curves_population"] = plot_gc_curves(
                {k: np.stack(v) for k, v in sorted(by_pop.items())}, out_dir / "gc_curves_by_population.png",
                title=f"Geometric consistency by population ({best})")
    if steps is not None and len(steps):
        title = "Step parameter errors against the walkway"
        if trials is not None and len(trials) and {"base_model", "bundle_adjustment"} <= set(steps.columns):
            primary = primary_condition(trials, steps)
            steps = steps[[label == primary for label in condition_labels(steps)]]
            title = f"{title} ({primary})"
        if len(steps):
            paths["step_errors"] = plot_step_error_histograms(steps, out_dir / "step_errors.png", title=title)
    return paths


REFERENCE_POPULATION = "control"


def gait_figures(strides: pd.DataFrame, spatiotemporal: pd.DataFrame, out_dir: str | Path,
                 reference: tuple[np.ndarray, np.ndarray] | None = None, reference_label: str | None = None,
                 condition: str | None = None) -> dict[str, Path]:
    """The biomechanist's figures of a report: joint angles over the gait cycle by side and population, and the
    spatiotemporal parameters by population. Returns ``{name: png path}`` (each with its PDF beside it).

    strides: one row per kept stride (``schemas.reads.results.gait_cycle_strides``): ``side``, ``population``,
    ``toe_off_percent`` (% or None), ``angles`` (101, Q) rad, ``coordinate_names`` (Q,). spatiotemporal: one row
    per trial and side (``schemas.reads.results.spatiotemporal_parameters``) with ``population``, ``subject_id``
    and the columns of ``SPATIOTEMPORAL_PANELS``. reference: ``(mean, sd)`` (101, K) rad of normal gait for the
    joints of ``GAIT_CYCLE_JOINTS`` (e.g. published normative curves). Without one, the lab's own
    ``control`` population is the reference band, when the report also holds another population. condition:
    the method these fits come from, for the titles.
    """
    out_dir = Path(out_dir)
    paths: dict[str, Path] = {}
    suffix = f" ({condition})" if condition else ""
    if strides is not None and len(strides):
        angles = np.stack([cycle_joint_angles(np.asarray(a, dtype=float)[None], names, [side])[0]
                           for a, names, side in zip(strides["angles"], strides["coordinate_names"], strides["side"])])
        groups = strides["population"].astype(str).to_numpy()
        if reference is None and REFERENCE_POPULATION in groups and len(set(groups)) > 1:
            control = groups == REFERENCE_POPULATION
            reference = mean_sd_band(angles[control])
            reference_label = f"Control population (mean ± SD, {int(control.sum())} strides)"
        toe_off = pd.to_numeric(strides["toe_off_percent"], errors="coerce").to_numpy(float)
        paths["gait_cycle_angles"] = plot_gait_cycle_angles(
            angles, strides["side"].to_numpy(str), groups, out_dir / "gait_cycle_angles.png", reference=reference,
            reference_label=reference_label or "Reference (mean ± SD)", toe_off_percent=toe_off,
            title=f"Joint angles over the gait cycle by population{suffix}")
    if spatiotemporal is not None and len(spatiotemporal):
        paths["spatiotemporal"] = plot_spatiotemporal_by_population(
            spatiotemporal, out_dir / "spatiotemporal_by_population.png",
            title=f"Spatiotemporal parameters by population, one point per trial and side{suffix}")
    return paths


def project_markers(cameras: Mapping[str, np.ndarray], markers: np.ndarray) -> np.ndarray:
    """Project world markers ``(T, J, 3)`` m into each camera -> ``(C, T, J, 2)`` px (NaN behind a camera).

    cameras: ``schemas.reads.observations.camera_arrays`` output (``K (C,3,3)``, ``dist (C,5)``, ``rvec (C,3)``,
    ``tvec (C,3)``, ``size (C,2)``; OpenCV model).
    """
    out = []
    for camera in unstack_cameras(observations.camera_rig(cameras)):
        pixels, depth = project_points_numpy(camera, np.asarray(markers, dtype=np.float64))
        out.append(np.where((depth > 0)[..., None], pixels, np.nan))
    return np.stack(out)


def walkway_footfalls_video_clock(trial_fit_key: Mapping[str, Any]) -> pd.DataFrame | None:
    """The trial's walkway footfalls (``foot``, ``contact_time``, ``toe_off_time`` s) moved to the video clock with
    the session's fitted clock offset (``walkway time = video time + time_offset_s``); None without footfalls."""
    footfalls = observations.walkway_footfalls(dict(trial_fit_key))
    if not footfalls:
        return None
    frame = pd.DataFrame(footfalls)
    offset = results.walkway_time_offset(dict(trial_fit_key))
    return pd.DataFrame({"foot": frame["foot"].astype(str),
                         "contact_time": frame["contact_time"].astype(float) - offset,
                         "toe_off_time": pd.to_numeric(frame["toe_off_time"], errors="coerce") - offset})


def detected_contacts(trial_fit_key: Mapping[str, Any]) -> pd.DataFrame | None:
    """Foot contacts found in the fitted markers (``foot``, ``contact_time`` s); None when there are none."""
    rows = results.detected_contacts(dict(trial_fit_key))
    return pd.DataFrame(rows, columns=["foot", "contact_time"]) if rows else None


def trial_figures(trial_fit_key: Mapping[str, Any], out_dir: str | Path, frames: Sequence[int] | None = None,
                  cameras: Sequence[int] | None = None, images: Mapping[tuple[int, int], np.ndarray] | None = None
                  ) -> dict[str, Path]:
    """Joint-angle waveforms (with walkway footfalls), a reprojection overlay and the quality-control page
    (:func:`plot_trial_qc`) of one fitted trial.

    trial_fit_key: restricts ``BilevelFit.Trial`` to one row (subject_id, session_id, trial_name, base_model,
    params_name); needs activated schemas. Markers are projected with the intrinsics of the calibration and the
    refined extrinsics of the fit. frames / cameras default to two frames and two cameras spread over the trial
    and the rig.
    """
    row = results.fitted_trial(dict(trial_fit_key))
    key = {k: row[k] for k in results.FIT_KEY}
    stem = "_".join(str(key[k]) for k in results.FIT_KEY)
    out_dir = Path(out_dir)
    label = (f"{key['subject_id']} ({row['population']}), {key['trial_name']} — {key['base_model']}, "
             f"{key['params_name']}")
    paths = {"waveforms": plot_joint_waveforms(
        row["times"], row["qpos"], row["joint_names"], out_dir / f"{stem}_waveforms.png",
        footfalls=walkway_footfalls_video_clock(key), detected_contacts=detected_contacts(key), title=label)}

    rig = results.refined_cameras(key)
    n_frames, n_joints = np.asarray(row["markers"]).shape[:2]
    observed, confidence = observations.trial_keypoints(key, rig["names"], n_frames, n_joints)
    predicted = project_markers(rig, row["markers"])
    frames = list(frames) if frames is not None else sorted({n_frames // 3, (2 * n_frames) // 3})
    cameras = list(cameras) if cameras is not None else sorted({0, len(rig["names"]) // 2})
    paths["overlay"] = plot_reprojection_overlay(
        predicted, observed, confidence, frames, cameras, rig["size"],
        out_dir / f"{stem}_reprojection.png", camera_names=rig["names"], images=images,
        times=np.asarray(row["times"]), title=f"Model markers vs detected keypoints — {label}")
    fit_key = {k: key[k] for k in ("subject_id", "session_id", "base_model", "params_name")}
    validated = {r["camera_name"]: r for r in results.cross_validation_cameras(fit_key)}
    paths["qc"] = plot_trial_qc(
        row["times"], row["qpos"], row["joint_names"], confidence,
        reprojection_errors_by_camera(predicted, observed, confidence), row["gc_curve"],
        out_dir / f"{stem}_qc.png", camera_names=rig["names"], keypoint_names=row["keypoint_names"],
        title=f"Quality control — {label}",
        held_out_median_px=[validated[n]["fit_median_px"] if n in validated and validated[n]["fit_median_px"]
                            is not None else np.nan for n in rig["names"]] if validated else None,
        flagged_cameras=[bool(validated.get(n, {}).get("calibration_flagged")) for n in rig["names"]]
        if validated else None)
    return paths
