"""Publication-style figures (matplotlib, Agg backend): PNG by default, PDF when the path says so.

Plain functions over numpy arrays / DataFrames:

* ``plot_gc_curves`` — geometric consistency ``GC_d`` against the threshold ``d`` (px), one median
  curve with an inter-quartile band per condition;
* ``plot_joint_waveforms`` — hip / knee / ankle flexion over time for each leg, with walkway footfalls
  (contact lines, shaded stance) like the paper's Fig. 3–4;
* ``plot_step_error_histograms`` — step width / stride length / step length errors (mm) by population;
* ``plot_reprojection_overlay`` — projected model markers vs detected keypoints for chosen frames and
  cameras, on a blank canvas of the image size or on a given video frame.

``report_figures`` and ``trial_figures`` feed them from the report frames / the database.
"""
from __future__ import annotations

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


def _gc_thresholds() -> np.ndarray:
    try:
        from compute.metrics import GC_THRESHOLDS_PX

        return np.asarray(GC_THRESHOLDS_PX, dtype=float)
    except ImportError:
        return np.arange(1, 21, dtype=float)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
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
    d = _gc_thresholds() if thresholds_px is None else np.asarray(thresholds_px, dtype=float)
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
    from pipeline.report import STEP_ERROR_COLUMNS, sigma_iqr

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
# from report frames / the database
# --------------------------------------------------------------------------------------------------


def report_figures(steps: pd.DataFrame, trials: pd.DataFrame, out_dir: str | Path, restriction: Any = None) -> dict[str, Path]:
    """Figures of the report: GC_d curves per condition (when trials carry ``gc_curve``) and step-error
    histograms by population (when there are matched steps). Returns ``{name: path}``."""
    from pipeline.report import best_condition, condition_label

    out_dir = Path(out_dir)
    paths: dict[str, Path] = {}
    if trials is not None and len(trials) and "gc_curve" in trials:
        curves: dict[str, list[np.ndarray]] = {}
        for _, row in trials.iterrows():
            label = condition_label(row.get("base_model", "model"), row.get("bundle_adjustment", False))
            curves.setdefault(label, []).append(np.asarray(row["gc_curve"], dtype=float).reshape(-1))
        paths["gc_curves"] = plot_gc_curves({k: np.stack(v) for k, v in sorted(curves.items())},
                                            out_dir / "gc_curves.png")
        if "population" in trials:
            # populations are compared within one method: the condition with the best mean GC_5
            labels = [condition_label(r.get("base_model", "model"), r.get("bundle_adjustment", False))
                      for _, r in trials.iterrows()]
            best = best_condition(trials) or labels[0]
            by_pop: dict[str, list[np.ndarray]] = {}
            for label, (_, row) in zip(labels, trials.iterrows()):
                if label == best:
                    by_pop.setdefault(str(row["population"]), []).append(np.asarray(row["gc_curve"], float).reshape(-1))
            paths["gc_curves_population"] = plot_gc_curves(
                {k: np.stack(v) for k, v in sorted(by_pop.items())}, out_dir / "gc_curves_by_population.png",
                title=f"Geometric consistency by population ({best})")
    if steps is not None and len(steps):
        title = "Step parameter errors against the walkway"
        if trials is not None and len(trials) and {"base_model", "bundle_adjustment"} <= set(steps.columns):
            labels = [condition_label(m, b) for m, b in zip(steps["base_model"], steps["bundle_adjustment"])]
            trial_labels = [condition_label(r.get("base_model", "model"), r.get("bundle_adjustment", False))
                            for _, r in trials.iterrows()]
            with_steps = trials[[label in set(labels) for label in trial_labels]]
            best = (best_condition(with_steps) if len(with_steps) else None) or labels[0]
            steps, title = steps[[label == best for label in labels]], f"{title} ({best})"
        if len(steps):
            paths["step_errors"] = plot_step_error_histograms(steps, out_dir / "step_errors.png", title=title)
    return paths


def project_markers(cameras: Sequence[dict], markers: np.ndarray) -> np.ndarray:
    """Project world markers ``(T, J, 3)`` m into each camera -> ``(C, T, J, 2)`` px (NaN behind a camera).

    cameras: dicts with ``K (3,3)``, ``dist (5,)``, ``rvec (3,)``, ``tvec (3,)``, ``size (2,)`` (OpenCV model).
    """
    from compute.cameras import make_camera, project_points_numpy

    out = []
    for cam in cameras:
        camera = make_camera(cam["K"], cam["dist"], cam["rvec"], cam["tvec"], cam["size"])
        pixels, depth = project_points_numpy(camera, np.asarray(markers, dtype=np.float64))
        pixels = np.where((depth > 0)[..., None], pixels, np.nan)
        out.append(pixels)
    return np.stack(out)


def _walkway_footfalls(trial_key: Mapping[str, Any]) -> pd.DataFrame | None:
    """The trial's walkway footfalls with times moved to the video clock, using the session's fitted clock
    offset from ``GaitMetrics.walkway_alignment`` (``walkway time = video time + time_offset_s``)."""
    from schemas import acquisition

    footfalls = acquisition.WalkwaySteps.Footfall & dict(trial_key)
    if not len(footfalls):
        return None
    frame = pd.DataFrame(footfalls.proj("foot", "contact_time", "toe_off_time").to_dicts())
    offset = _walkway_time_offset(trial_key)
    return pd.DataFrame({"foot": frame["foot"].astype(str),
                         "contact_time": frame["contact_time"].astype(float) - offset,
                         "toe_off_time": pd.to_numeric(frame["toe_off_time"], errors="coerce") - offset})


def _walkway_time_offset(trial_key: Mapping[str, Any]) -> float:
    """``time_offset_s`` of the session's walkway alignment (0 when not computed)."""
    try:
        from schemas import gait
    except ImportError:
        return 0.0
    metrics = getattr(gait, "GaitMetrics", None)
    if metrics is None or "walkway_alignment" not in metrics.heading.names:
        return 0.0
    for row in (metrics & dict(trial_key)).proj("walkway_alignment").to_dicts():
        alignment = row.get("walkway_alignment") or {}
        offset = alignment.get("time_offset_s") if isinstance(alignment, dict) else None
        if offset is not None and np.isfinite(offset):
            return float(offset)
    return 0.0


def _detected_contacts(trial_key: Mapping[str, Any]) -> pd.DataFrame | None:
    try:
        from schemas import gait
    except ImportError:
        return None
    metrics = getattr(gait, "GaitMetrics", None)
    for part_name in ("Event", "Events", "FootContact", "Step", "Steps"):
        part = getattr(metrics, part_name, None) if metrics is not None else None
        if part is None:
            continue
        names = part.heading.names
        time_col = next((c for c in ("contact_time", "contact_time_s", "time") if c in names), None)
        foot_col = next((c for c in ("foot", "side") if c in names), None)
        if time_col and foot_col:
            rows = (part & dict(trial_key)).proj(foot_col, time_col).to_dicts()
            if rows:
                frame = pd.DataFrame(rows)
                return pd.DataFrame({"foot": frame[foot_col].astype(str), "contact_time": frame[time_col]})
    return None


def trial_figures(trial_key: Mapping[str, Any], out_dir: str | Path, frames: Sequence[int] | None = None,
                  cameras: Sequence[int] | None = None, images: Mapping[tuple[int, int], np.ndarray] | None = None
                  ) -> dict[str, Path]:
    """Joint-angle waveforms (with walkway footfalls) and a reprojection overlay for one fitted trial.

    trial_key: restricts ``BilevelFit.Trial`` to one row (subject_id, session_id, trial_name, base_model,
    params_name). Markers are projected with the intrinsics of ``acquisition.Camera`` and the refined
    extrinsics of ``BilevelFit.RefinedCalibration``. frames / cameras default to two frames and two
    cameras spread over the trial and the rig.
    """
    from schemas import acquisition, fitting

    row = (fitting.BilevelFit.Trial & dict(trial_key)).fetch1()
    key = {k: row[k] for k in fitting.BilevelFit.Trial.primary_key}
    population = (acquisition.Subject & key).fetch1("population")
    stem = "_".join(str(key[k]) for k in ("subject_id", "session_id", "trial_name", "base_model", "params_name"))
    out_dir = Path(out_dir)
    label = f"{key['subject_id']} ({population}), {key['trial_name']} — {key['base_model']}, {key['params_name']}"
    paths = {"waveforms": plot_joint_waveforms(
        row["times"], row["qpos"], row["joint_names"], out_dir / f"{stem}_waveforms.png",
        footfalls=_walkway_footfalls(key), detected_contacts=_detected_contacts(key), title=label)}

    camera_rows = (acquisition.Camera & key).to_dicts(order_by="camera_name")
    refined = {r["camera_name"]: r for r in (fitting.BilevelFit.RefinedCalibration & key).to_dicts()}
    rig = [dict(K=np.asarray(c["intrinsics"]), dist=np.asarray(c["distortion"]).ravel(),
                rvec=np.asarray(refined.get(c["camera_name"], c)["rotation"]).ravel(),
                tvec=np.asarray(refined.get(c["camera_name"], c)["translation"]).ravel(),
                size=np.array([c["image_width"], c["image_height"]], float)) for c in camera_rows]
    names = [c["camera_name"] for c in camera_rows]
    keypoints = {r["camera_name"]: r for r in (acquisition.Keypoints & key).to_dicts()}
    n_frames, n_joints = np.asarray(row["markers"]).shape[:2]
    observed = np.full((len(names), n_frames, n_joints, 2), np.nan)
    confidence = np.zeros((len(names), n_frames, n_joints))
    for c, name in enumerate(names):
        if name in keypoints:
            observed[c] = np.asarray(keypoints[name]["points"], float)
            confidence[c] = np.asarray(keypoints[name]["confidence"], float)
    predicted = project_markers(rig, row["markers"])
    frames = list(frames) if frames is not None else sorted({n_frames // 3, (2 * n_frames) // 3})
    cameras = list(cameras) if cameras is not None else sorted({0, len(names) // 2})
    paths["overlay"] = plot_reprojection_overlay(
        predicted, observed, confidence, frames, cameras, np.stack([c["size"] for c in rig]),
        out_dir / f"{stem}_reprojection.png", camera_names=names, images=images, times=np.asarray(row["times"]),
        title=f"Model markers vs detected keypoints — {label}")
    return paths
