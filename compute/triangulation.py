"""Robust confidence-weighted multi-view triangulation (numpy, vectorised over points).

Used to initialise fits (root position) and as the first stage of the two-stage baseline (triangulate the
keypoints, then fit the skeleton to the 3D points), against which the end-to-end fit is compared.

Method, per point:

1. Undistort every view's pixel to normalised coordinates ``(x', y')`` (:func:`compute.cameras.undistort_points`).
2. Linear triangulation (inhomogeneous DLT): each view contributes the two rows
   ``(x' r3 - r1) · X = t1 - x' t3`` and ``(y' r3 - r2) · X = t2 - y' t3`` (``r_i`` rows of R, ``t`` the
   translation), whose residual is ``z_cam · (x' - x'_proj)``. Rows are weighted by
   ``confidence · f / z_cam`` (``z_cam`` from the previous estimate) so the algebraic error approximates
   the pixel error. Normal equations are solved as a batch of 3×3 systems.
3. Outliers: views with confidence < ``min_confidence`` or non-finite pixels are never used. Starting from
   all usable views, the view with the largest reprojection error is dropped while it exceeds
   ``outlier_threshold_px`` (re-solving each time). Points where any usable view was rejected also try
   every pair of views as a hypothesis (best subset, MSAC score ``Σ max(0, 1 - e²/τ²)``), keep the better
   consensus, re-solve on it and re-admit all views within τ.
4. Points with fewer than 2 inlier views are NaN.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from compute.cameras import Camera, project_points_numpy, undistort_points, unstack_cameras

__all__ = ["triangulate_points", "triangulate_trajectories"]


class _Views:
    """Per-view data of a rig for N points (numpy float64)."""

    def __init__(self, rig: Camera, keypoints: np.ndarray, confidence: np.ndarray, min_confidence: float):
        self.cameras = unstack_cameras(rig)
        C, N = confidence.shape
        self.R = np.stack([_rotation(c) for c in self.cameras])  # (C,3,3)
        self.t = np.array(rig.tvec, np.float64)  # (C,3)
        K = np.array(rig.K, np.float64)
        self.focal = 0.5 * (K[:, 0, 0] + K[:, 1, 1])  # (C,)
        self.pixels = keypoints
        xn = np.stack([undistort_points(cam, keypoints[c]) for c, cam in enumerate(self.cameras)])  # (C,N,2)
        self.usable = (
            np.isfinite(keypoints).all(-1) & np.isfinite(xn).all(-1) & (np.nan_to_num(confidence) >= min_confidence)
        )
        self.confidence = np.where(self.usable, np.nan_to_num(confidence), 0.0)
        xn = np.where(self.usable[..., None], xn, 0.0)
        x, y = xn[..., 0:1], xn[..., 1:2]
        r1, r2, r3 = (self.R[:, None, i, :] for i in range(3))  # (C,1,3)
        t1, t2, t3 = (self.t[:, None, i] for i in range(3))  # (C,1)
        self.a1 = x * r3 - r1  # (C,N,3)
        self.a2 = y * r3 - r2
        self.b1 = t1 - x[..., 0] * t3  # (C,N)
        self.b2 = t2 - y[..., 0] * t3

    def subset(self, idx: np.ndarray) -> "_Views":
        out = object.__new__(_Views)
        out.cameras, out.R, out.t, out.focal = self.cameras, self.R, self.t, self.focal
        for name in ("pixels", "usable", "confidence", "a1", "a2", "b1", "b2"):
            setattr(out, name, getattr(self, name)[:, idx])
        return out

    def solve(self, mask: np.ndarray, depth: np.ndarray | None) -> np.ndarray:
        """Weighted linear solve using views in mask (C,n); depth (C,n) z_cam or None -> X (n,3)."""
        w = self.confidence * self.focal[:, None]
        if depth is not None:
            w = w / np.where(depth > 1e-6, depth, np.inf)
        w2 = np.where(mask, w * w, 0.0)
        M, v = _normal_equations(w2, self.a1, self.b1, self.a2, self.b2)
        # A tiny ridge keeps degenerate systems (< 2 views, parallel rays) solvable; they are masked later.
        ridge = 1e-12 * np.trace(M, axis1=1, axis2=2) + 1e-300
        M = M + ridge[:, None, None] * np.eye(3)
        return np.linalg.solve(M, v[..., None])[..., 0]

    def view_error(self, c: int, X: np.ndarray) -> np.ndarray:
        """Reprojection error (n,) px of view c (inf where unusable or behind the camera)."""
        uv, z = project_points_numpy(self.cameras[c], X)
        e = np.linalg.norm(uv - self.pixels[c], axis=-1)
        return np.where(self.usable[c] & (z > 0) & np.isfinite(e), e, np.inf)

    def errors(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reprojection error (C,n) px (inf where unusable or behind the camera) and depth z_cam (C,n)."""
        err, depth = [], []
        for c, cam in enumerate(self.cameras):
            uv, z = project_points_numpy(cam, X)
            e = np.linalg.norm(uv - self.pixels[c], axis=-1)
            err.append(np.where(self.usable[c] & (z > 0) & np.isfinite(e), e, np.inf))
            depth.append(z)
        return np.stack(err), np.stack(depth)


def _normal_equations(w2: np.ndarray, a1: np.ndarray, b1: np.ndarray, a2: np.ndarray,
                      b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted normal equations of the rows ``a X = b`` of every view: weights w2 (C,n), rows a1, a2 (C,n,3) with
    right-hand sides b1, b2 (C,n) -> (M (n,3,3), v (n,3)), ``M = sum_c w2 (a1 a1^T + a2 a2^T)``,
    ``v = sum_c w2 (a1 b1 + a2 b2)``.

    Written as the six distinct entries of the symmetric M summed over the views: numpy's three-operand
    ``einsum`` took 2.3x as long (10 walks x 10 s with 8 cameras: 11.7 s of a 24 s initialisation).
    """
    wa1, wa2 = w2[..., None] * a1, w2[..., None] * a2
    M = np.empty(w2.shape[1:] + (3, 3))
    v = np.empty(w2.shape[1:] + (3,))
    for i in range(3):
        for j in range(i, 3):
            M[:, i, j] = M[:, j, i] = (wa1[..., i] * a1[..., j]).sum(0) + (wa2[..., i] * a2[..., j]).sum(0)
        v[:, i] = (wa1[..., i] * b1).sum(0) + (wa2[..., i] * b2).sum(0)
    return M, v


def _rotation(cam: Camera) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(np.array(cam.rvec, np.float64)).as_matrix()


def _refine(views: _Views, mask: np.ndarray, iterations: int = 2):
    """Depth-weighted re-solve on `mask`, then re-admit every usable view within threshold (caller's job)."""
    X = views.solve(mask, None)
    for _ in range(iterations):
        _, depth = views.errors(X)
        X = views.solve(mask, depth)
    err, depth = views.errors(X)
    return X, err, depth


def _msac_score(err: np.ndarray, threshold: float) -> np.ndarray:
    e = np.where(np.isfinite(err), err, threshold)
    return np.sum(np.clip(1.0 - (e / threshold) ** 2, 0.0, None), axis=0)


def _greedy_rejection(views: _Views, threshold: float):
    """Drop the worst view while it exceeds the threshold. Returns X (n,3), err (C,n), mask (C,n)."""
    mask = views.usable.copy()
    X, err, _ = _refine(views, mask, iterations=1)
    C = mask.shape[0]
    for _ in range(max(C - 2, 0)):
        masked_err = np.where(mask, err, -np.inf)
        worst = np.argmax(masked_err, axis=0)
        worst_err = masked_err[worst, np.arange(mask.shape[1])]
        bad = (worst_err > threshold) & (mask.sum(0) > 2)
        if not bad.any():
            break
        idx = np.nonzero(bad)[0]
        mask[worst[idx], idx] = False
        sub = views.subset(idx)
        Xs, errs, _ = _refine(sub, mask[:, idx], iterations=1)
        X[idx], err[:, idx] = Xs, errs
    return X, err, mask


def _leave_one_out_rejection(views: _Views, mask: np.ndarray, threshold: float, max_rounds: int):
    """Drop, one per round, the view whose error against the solution *without it* is largest and above
    the threshold (catches moderate outliers that pull a joint solution to within the threshold).
    Only points with >= 3 views in `mask` are tested. Returns the updated mask (C,n)."""
    mask = mask.copy()
    active = np.nonzero(mask.sum(0) >= 3)[0]
    for _ in range(max_rounds):
        if active.size == 0:
            break
        sub = views.subset(active)
        m = mask[:, active]
        _, depth = sub.errors(sub.solve(m, None))
        loo = np.full(m.shape, -np.inf)
        for c in range(m.shape[0]):
            has = m[c]
            if not has.any():
                continue
            m_c = m.copy()
            m_c[c] = False
            X_c = sub.solve(m_c, depth)
            loo[c] = np.where(has, sub.view_error(c, X_c), -np.inf)
        worst = np.argmax(loo, axis=0)
        worst_err = loo[worst, np.arange(m.shape[1])]
        bad = worst_err > threshold
        if not bad.any():
            break
        mask[worst[bad], active[bad]] = False
        active = active[mask[:, active].sum(0) >= 3]
    return mask


def _best_pair(views: _Views, threshold: float):
    """Try every pair of views; return the consensus mask (C,n) of the best MSAC hypothesis and its score."""
    C, n = views.usable.shape
    best_score = np.full(n, -1.0)
    best_mask = np.zeros((C, n), bool)
    for i, j in combinations(range(C), 2):
        pair_ok = views.usable[i] & views.usable[j]
        if not pair_ok.any():
            continue
        mask = np.zeros((C, n), bool)
        mask[i], mask[j] = pair_ok, pair_ok
        X = views.solve(mask, None)
        err, _ = views.errors(X)
        score = np.where(pair_ok, _msac_score(err, threshold), -1.0)
        better = score > best_score
        best_score = np.where(better, score, best_score)
        best_mask[:, better] = (err < threshold)[:, better]
    return best_mask, best_score


def triangulate_points(
    rig: Camera,
    keypoints,
    confidence,
    min_confidence: float = 0.3,
    outlier_threshold_px: float = 20.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Robust confidence-weighted triangulation of many points seen by a rig.

    Args:
        rig: Camera with leaves (C, ...).
        keypoints: (C, ..., 2) pixels; NaN where missing.
        confidence: (C, ...) in [0, 1]; views below ``min_confidence`` are ignored.
        min_confidence: usable-view threshold.
        outlier_threshold_px: views re-projecting further than this from their keypoint are outliers.
    Returns:
        points (..., 3) world metres (NaN where fewer than 2 inlier views) and n_inlier_views (...) int
        (views used in the final solution; 0 where the point is NaN).
    """
    kp = np.array(keypoints, np.float64)
    conf = np.array(confidence, np.float64)
    C = np.shape(rig.K)[0]
    if kp.shape[-1:] != (2,) or kp.shape[0] != C:
        raise ValueError(f"compute/triangulation.py triangulate_points: keypoints must have shape ({C}, ..., 2), got {kp.shape}")
    if conf.shape != kp.shape[:-1]:
        raise ValueError(
            f"compute/triangulation.py triangulate_points: confidence must have shape {kp.shape[:-1]}, got {conf.shape}"
        )
    batch = kp.shape[1:-1]
    N = int(np.prod(batch, dtype=np.int64))
    if N == 0:
        return np.zeros(batch + (3,)), np.zeros(batch, np.int64)
    views = _Views(rig, kp.reshape(C, N, 2), conf.reshape(C, N), min_confidence)
    tau = float(outlier_threshold_px)

    X, err, mask = _greedy_rejection(views, tau)
    inliers = views.usable & (err < tau)
    loo_mask = _leave_one_out_rejection(views, np.where(inliers.sum(0) >= 2, inliers, mask), tau, C - 2)
    changed = np.nonzero((loo_mask != inliers).any(0))[0]
    if changed.size:
        Xs, errs, _ = _refine(views.subset(changed), loo_mask[:, changed])
        X[changed], err[:, changed] = Xs, errs
        inliers[:, changed] = loo_mask[:, changed]
    # Best-subset search where the views disagree (something was rejected or is out of threshold).
    disagree = np.nonzero((inliers != views.usable).any(0) & (views.usable.sum(0) >= 2))[0]
    if disagree.size and C > 2:
        sub = views.subset(disagree)
        pair_mask, pair_score = _best_pair(sub, tau)
        greedy_score = _msac_score(np.where(sub.usable, err[:, disagree], np.inf), tau)
        use_pair = pair_score > greedy_score
        cand = np.where(use_pair[None], pair_mask, inliers[:, disagree])
        cand = np.where(cand.sum(0) >= 2, cand, mask[:, disagree])
        Xs, errs, _ = _refine(sub, cand)
        cons = sub.usable & (errs < tau)
        ok = cons.sum(0) >= 2
        Xs2, errs2, _ = _refine(sub, np.where(ok[None], cons, cand))
        X[disagree], err[:, disagree] = Xs2, errs2
    # Final consensus: every usable view within threshold, one more solve on it.
    inliers = views.usable & (err < tau)
    enough = inliers.sum(0) >= 2
    if enough.any():
        idx = np.nonzero(enough)[0]
        Xs, errs, _ = _refine(views.subset(idx), inliers[:, idx])
        keep = (views.usable[:, idx] & (errs < tau)).sum(0) >= 2
        X[idx[keep]] = Xs[keep]
        inliers[:, idx[keep]] = (views.usable[:, idx] & (errs < tau))[:, keep]
    n_inliers = inliers.sum(0)
    X[n_inliers < 2] = np.nan
    n_inliers[n_inliers < 2] = 0  # no solution: no view was used
    return X.reshape(batch + (3,)), n_inliers.reshape(batch).astype(np.int64)


def triangulate_trajectories(rig: Camera, keypoints, confidence, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate a trial: keypoints (C, T, J, 2) px, confidence (C, T, J) -> (points (T, J, 3) m, n_inlier_views (T, J)).

    Keyword arguments are passed to :func:`triangulate_points`.
    """
    kp = np.array(keypoints)
    if kp.ndim != 4 or kp.shape[-1] != 2:
        raise ValueError(
            f"compute/triangulation.py triangulate_trajectories: keypoints must have shape (C, T, J, 2), got {kp.shape}"
        )
    return triangulate_points(rig, kp, confidence, **kwargs)
