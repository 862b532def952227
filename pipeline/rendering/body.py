"""MuJoCo rendering of a fitted body from a virtual camera that follows it (as in Cotton 2024, fig. 2).

The fitted body is the base skeleton (``compute/models/body40.xml`` unless another MJCF is given) scaled the
way the fit scales it: per-body isotropic factors ``s_b = exp(scale_matrix @ log_scale)`` multiply the
children's ``body_pos`` (the joint centres a body carries), the body's own ``jnt_pos`` and ``site_pos``, so
the joint centres here are exactly the fit's. The display capsules (``geom_pos``, ``geom_size``) are scaled
with their body too, so a tall subject also looks tall. Virtual markers ``(T, J, 3)`` are drawn as small
spheres added to the scene of each frame, so fitted markers (with their offsets) appear where the fit put
them.

Rendering is offscreen OpenGL on the CPU: EGL with Mesa's software driver (llvmpipe) by default, or OSMesa.
The backend is opened explicitly (``mujoco.egl`` / ``mujoco.osmesa``), so it works whether or not ``mujoco``
was imported before ``MUJOCO_GL`` could be set. Debian packages: ``libegl1 libegl-mesa0 libgl1-mesa-dri``
for EGL, ``libosmesa6`` for OSMesa.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from compute.kinematics import BODY40_XML_PATH, MARKER_SITE_PREFIX, default_scale_matrix
from pipeline.rendering.video import frame_strip, strip_frame_indices, write_mp4, write_png

__all__ = [
    "GL_BACKENDS", "default_gl_backend", "working_gl_backend", "TrackingView", "SIDE_VIEW", "FRONT_VIEW",
    "BodyRenderStyle", "Skeleton", "scaled_body_model", "scale_mj_model", "body_scene_model", "skeleton_over_time",
    "BodyRenderer", "iter_body_frames", "render_body_video", "render_body_strip",
]

GL_BACKENDS: tuple[str, ...] = ("egl", "osmesa")


def default_gl_backend() -> str:
    """The offscreen OpenGL backend to use: ``MUJOCO_GL`` when it names one of ``GL_BACKENDS``, else EGL."""
    requested = os.environ.get("MUJOCO_GL", "").strip().lower()
    return requested if requested in GL_BACKENDS else "egl"


def working_gl_backend() -> str:
    """The first of ``GL_BACKENDS`` (``default_gl_backend()`` first) that opens an offscreen context here.

    Raises RuntimeError naming each backend's failure and the Debian packages that provide them.
    """
    preferred = default_gl_backend()
    errors = []
    for backend in (preferred,) + tuple(b for b in GL_BACKENDS if b != preferred):
        try:
            _gl_context(backend, 16, 16).free()
            return backend
        except Exception as error:  # noqa: BLE001 - whatever a backend raises, it is unusable here
            errors.append(f"{backend}: {type(error).__name__}: {error}")
    raise RuntimeError("no offscreen OpenGL backend works on this machine (Debian: apt-get install libegl1 "
                       "libegl-mesa0 libgl1-mesa-dri, or libosmesa6): " + "; ".join(errors))


def _gl_context(backend: str, width: int, height: int):
    """An offscreen OpenGL context of at least ``width`` × ``height`` px, made current on this thread."""
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        raise ValueError(f"unknown GL backend {backend!r}; expected one of {GL_BACKENDS}")
    context = GLContext(width, height)
    context.make_current()
    return context


@dataclass(frozen=True)
class TrackingView:
    """A virtual camera that keeps the root body (the pelvis) in the middle of the picture.

    The camera looks at the root body's horizontal position at a fixed height, from ``distance_m`` metres,
    along the direction given by MuJoCo's free-camera angles: ``azimuth_deg`` about world Z (90: the camera
    stands on the −Y side looking toward +Y, i.e. at the right side of a subject walking along +X;
    180: it stands on the +X side, facing a subject who walks toward it), ``elevation_deg`` (negative: looking
    down). ``lookat_height_m``: the height looked at (m); None uses the mean root height over the frames, so
    the picture does not bob with the pelvis.
    """

    azimuth_deg: float = 90.0
    elevation_deg: float = -8.0
    distance_m: float = 3.2
    lookat_height_m: float | None = None


SIDE_VIEW = TrackingView()
FRONT_VIEW = TrackingView(azimuth_deg=180.0)


@dataclass(frozen=True)
class BodyRenderStyle:
    """How a body video looks: image ``width`` × ``height`` px, the ``view``, marker spheres of
    ``marker_radius_m`` metres in ``marker_rgba`` (0-1), a checkered floor at z = 0 (``floor``), and
    ``antialias_samples`` multisamples per pixel (on Mesa's CPU renderer 4 samples take 3× the time of none,
    2 look almost as smooth at 2×).

    No shadows: Mesa's software shadow maps show acne on the floor and triple the time per frame."""

    width: int = 640
    height: int = 480
    view: TrackingView = field(default_factory=TrackingView)
    marker_radius_m: float = 0.015
    marker_rgba: tuple[float, float, float, float] = (0.1, 0.45, 1.0, 1.0)
    floor: bool = True
    antialias_samples: int = 2


@dataclass(frozen=True)
class Skeleton:
    """Joint centres and segment end points of a body over time.

    names: (P,) point names (body names for joint centres = body origins, then the model's non-marker sites
    such as ``toes_r_end`` that close the end segments); positions: (T, P, 3) metres, world frame;
    segments: (S, 2) int point indices ``(proximal, distal)``; segment_sides: (S,) ``"l"``, ``"r"`` or ``""``
    from the distal body's name suffix (``_l`` / ``_r``), for colouring.
    """

    names: tuple[str, ...]
    positions: np.ndarray
    segments: np.ndarray
    segment_sides: tuple[str, ...]


def scale_mj_model(model: mujoco.MjModel, log_scale: np.ndarray,
                   scale_matrix: np.ndarray | None = None) -> mujoco.MjModel:
    """A copy of ``model`` scaled per body as the fit scales it (see the module docstring).

    log_scale: (G,) log of each scale group's factor; scale_matrix: (B, G) 0/1 over the model's bodies
    without the world body (default: ``compute.kinematics.default_scale_matrix`` of the body names).
    Bodies of the world (floor, lights) keep scale 1.
    """
    body_names = tuple(model.body(b).name for b in range(1, model.nbody))
    matrix = default_scale_matrix(body_names) if scale_matrix is None else np.asarray(scale_matrix, np.float64)
    log_scale = np.asarray(log_scale, np.float64)
    if matrix.shape != (len(body_names), log_scale.shape[0]):
        raise ValueError(f"scale_mj_model: scale_matrix {matrix.shape} does not match {len(body_names)} bodies "
                         f"× log_scale {log_scale.shape}")
    s = np.concatenate([[1.0], np.exp(matrix @ log_scale)])
    scaled = copy.copy(model)
    scaled.body_pos[:] = model.body_pos * s[model.body_parentid][:, None]
    scaled.jnt_pos[:] = model.jnt_pos * s[model.jnt_bodyid][:, None]
    scaled.site_pos[:] = model.site_pos * s[model.site_bodyid][:, None]
    scaled.geom_pos[:] = model.geom_pos * s[model.geom_bodyid][:, None]
    scaled.geom_size[:] = model.geom_size * s[model.geom_bodyid][:, None]
    scaled.geom_rbound[:] = model.geom_rbound * s[model.geom_bodyid]
    return scaled


def _mjcf_text(mjcf_xml: str | None) -> str:
    return BODY40_XML_PATH.read_text() if mjcf_xml is None else mjcf_xml


def scaled_body_model(log_scale: np.ndarray, scale_matrix: np.ndarray | None = None,
                      mjcf_xml: str | None = None) -> mujoco.MjModel:
    """The scaled skeleton alone (no floor, no lights): for joint centres (``skeleton_over_time``).

    log_scale (G,), scale_matrix (B, G) as in ``scale_mj_model``; mjcf_xml: MJCF text of the base skeleton
    (default body40).
    """
    return scale_mj_model(mujoco.MjModel.from_xml_string(_mjcf_text(mjcf_xml)), log_scale, scale_matrix)


def _decorate(spec: mujoco.MjSpec, style: BodyRenderStyle) -> None:
    """Add what a picture needs and a skeleton file lacks: floor, sky, light, offscreen buffer size."""
    spec.visual.global_.offwidth = max(int(style.width), int(spec.visual.global_.offwidth))
    spec.visual.global_.offheight = max(int(style.height), int(spec.visual.global_.offheight))
    spec.visual.quality.offsamples = int(style.antialias_samples)
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.45, 0.45, 0.45]
    spec.visual.headlight.specular = [0.05, 0.05, 0.05]
    sky = spec.add_texture(name="render_sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
                           builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT, width=64, height=64)
    sky.rgb1 = [0.75, 0.82, 0.9]
    sky.rgb2 = [0.98, 0.98, 1.0]
    light = spec.worldbody.add_light(name="render_sun", pos=[0.0, 0.0, 6.0], dir=[0.3, 0.2, -1.0])
    light.type = mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
    light.castshadow = False
    light.diffuse = [0.55, 0.55, 0.55]
    light.specular = [0.1, 0.1, 0.1]
    light.ambient = [0.1, 0.1, 0.1]
    if style.floor:
        checker = spec.add_texture(name="render_floor", type=mujoco.mjtTexture.mjTEXTURE_2D,
                                   builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, width=256, height=256)
        checker.rgb1 = [0.82, 0.82, 0.8]
        checker.rgb2 = [0.68, 0.68, 0.66]
        material = spec.add_material(name="render_floor", texrepeat=[1.0, 1.0], texuniform=True,
                                     reflectance=0.0)
        textures = list(material.textures)
        textures[int(mujoco.mjtTextureRole.mjTEXROLE_RGB)] = "render_floor"
        material.textures = textures
        # a plane of size 0 is drawn out to the far clipping distance; its own white rgba keeps the skeleton
        # file's default geom colour from tinting the texture
        spec.worldbody.add_geom(name="render_floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0.0, 0.0, 0.5],
                                material="render_floor", rgba=[1.0, 1.0, 1.0, 1.0], contype=0, conaffinity=0)


def body_scene_model(log_scale: np.ndarray, scale_matrix: np.ndarray | None = None,
                     mjcf_xml: str | None = None, style: BodyRenderStyle = BodyRenderStyle()) -> mujoco.MjModel:
    """The scaled skeleton in a scene ready to render: floor at z = 0, sky, a directional light.

    log_scale (G,), scale_matrix (B, G) and mjcf_xml as in ``scaled_body_model``; the offscreen buffer is
    made at least ``style.width`` × ``style.height``.
    """
    spec = mujoco.MjSpec.from_string(_mjcf_text(mjcf_xml))
    _decorate(spec, style)
    return scale_mj_model(spec.compile(), log_scale, scale_matrix)


def _check_qpos(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    qpos = np.asarray(qpos, np.float64)
    if qpos.ndim != 2 or qpos.shape[1] != model.nq:
        raise ValueError(f"qpos has shape {qpos.shape}, expected (T, {model.nq}) in the model's joint order")
    return qpos


def skeleton_over_time(model: mujoco.MjModel, qpos: np.ndarray) -> Skeleton:
    """Joint centres and segment ends of ``model`` (already scaled) over a trajectory ``qpos`` (T, Q) rad/m."""
    qpos = _check_qpos(model, qpos)
    body_names = tuple(model.body(b).name for b in range(1, model.nbody))
    end_sites = [k for k in range(model.nsite) if not model.site(k).name.startswith(MARKER_SITE_PREFIX)
                 and model.site_bodyid[k] > 0]
    names = body_names + tuple(model.site(k).name for k in end_sites)
    segments, sides = [], []
    for b in range(2, model.nbody):
        parent = int(model.body_parentid[b])
        if parent > 0:
            segments.append((parent - 1, b - 1))
            sides.append(_side(body_names[b - 1]))
    for i, k in enumerate(end_sites):
        body = int(model.site_bodyid[k])
        segments.append((body - 1, len(body_names) + i))
        sides.append(_side(body_names[body - 1]))
    data = mujoco.MjData(model)
    positions = np.empty((qpos.shape[0], len(names), 3))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        positions[t, :len(body_names)] = data.xpos[1:]
        positions[t, len(body_names):] = data.site_xpos[end_sites]
    return Skeleton(names, positions, np.asarray(segments, np.int64).reshape(-1, 2), tuple(sides))


def _side(body_name: str) -> str:
    # body40 names the sides of paired bodies with a suffix: femur_l, humerus_r, ...
    return body_name[-1] if body_name[-2:] in ("_l", "_r") else ""


class BodyRenderer:
    """An offscreen MuJoCo renderer of one scene model (use as a context manager; frees its GL context).

    model: from ``body_scene_model``; width, height: image size, px; gl_backend: one of ``GL_BACKENDS``
    (default ``default_gl_backend()``); max_geom: scene capacity (model geoms + marker spheres).
    """

    def __init__(self, model: mujoco.MjModel, width: int, height: int, gl_backend: str | None = None,
                 max_geom: int = 2000):
        if width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            raise ValueError(f"BodyRenderer: {width}×{height} px exceeds the model's offscreen buffer "
                             f"{model.vis.global_.offwidth}×{model.vis.global_.offheight} (build it with "
                             "body_scene_model and the same style)")
        self.model = model
        self.data = mujoco.MjData(model)
        self.width, self.height = int(width), int(height)
        self._gl = _gl_context(gl_backend or default_gl_backend(), self.width, self.height)
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._scene = mujoco.MjvScene(model, maxgeom=max_geom)
        self._option = mujoco.MjvOption()
        self._option.sitegroup[:] = 0          # model sites (marker sites, segment ends) stay hidden
        self._perturb = mujoco.MjvPerturb()
        self._viewport = mujoco.MjrRect(0, 0, self.width, self.height)
        self._pixels = np.empty((self.height, self.width, 3), np.uint8)

    def __enter__(self) -> BodyRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Free the MuJoCo render context and the GL context."""
        if self._gl is not None:
            self._gl.make_current()
            self._context.free()
            self._gl.free()
            self._gl = None

    def render(self, qpos: np.ndarray, camera: mujoco.MjvCamera, markers: np.ndarray | None = None,
               marker_radius_m: float = 0.015,
               marker_rgba: tuple[float, float, float, float] = (0.1, 0.45, 1.0, 1.0)) -> np.ndarray:
        """One RGB frame (H, W, 3) uint8 of the body at ``qpos`` (Q,) seen by ``camera``.

        markers: optional (J, 3) metres drawn as spheres; rows with a NaN are skipped.
        """
        self.data.qpos[:] = qpos
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)
        scene = self._scene
        mujoco.mjv_updateScene(self.model, self.data, self._option, self._perturb, camera,
                               mujoco.mjtCatBit.mjCAT_ALL, scene)
        if markers is not None:
            self._add_spheres(np.asarray(markers, np.float64), marker_radius_m, marker_rgba)
        mujoco.mjr_render(self._viewport, scene, self._context)
        mujoco.mjr_readPixels(self._pixels, None, self._viewport, self._context)
        return np.flipud(self._pixels).copy()   # OpenGL rows run bottom-up

    def _add_spheres(self, centres: np.ndarray, radius: float, rgba) -> None:
        scene = self._scene
        size = np.array([radius, radius, radius])
        identity = np.eye(3).ravel()
        colour = np.asarray(rgba, np.float32)
        for centre in centres[np.all(np.isfinite(centres), axis=1)]:
            if scene.ngeom >= scene.maxgeom:
                raise ValueError(f"BodyRenderer: more than max_geom={scene.maxgeom} scene geoms; raise max_geom")
            mujoco.mjv_initGeom(scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE, size, centre,
                                identity, colour)
            scene.ngeom += 1


def _tracking_camera(view: TrackingView, lookat: np.ndarray) -> mujoco.MjvCamera:
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.azimuth = view.azimuth_deg
    camera.elevation = view.elevation_deg
    camera.distance = view.distance_m
    camera.lookat[:] = lookat
    return camera


def _root_positions(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """(T, 3) world position of the root body (body 1, the pelvis of body40), metres."""
    data = mujoco.MjData(model)
    out = np.empty((qpos.shape[0], 3))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        out[t] = data.xpos[1]
    return out


def iter_body_frames(model: mujoco.MjModel, qpos: np.ndarray, markers: np.ndarray | None = None,
                     style: BodyRenderStyle = BodyRenderStyle(),
                     gl_backend: str | None = None) -> Iterator[np.ndarray]:
    """Render the body over a trajectory, one RGB (H, W, 3) uint8 frame per row of ``qpos``.

    model: from ``body_scene_model`` (scaled, decorated); qpos: (T, Q) joint coordinates in the model's joint
    order (rad; the root translation in m included); markers: optional (T, J, 3) metres, world frame.
    The camera follows the root body per ``style.view``. Frames are produced lazily: the GL context lives
    while the iterator is consumed.
    """
    qpos = _check_qpos(model, qpos)
    if markers is not None:
        markers = np.asarray(markers, np.float64)
        if markers.ndim != 3 or markers.shape[0] != qpos.shape[0] or markers.shape[2] != 3:
            raise ValueError(f"markers has shape {markers.shape}, expected ({qpos.shape[0]}, J, 3)")
    root = _root_positions(model, qpos)
    view = style.view
    height = float(np.mean(root[:, 2])) if view.lookat_height_m is None else view.lookat_height_m
    with BodyRenderer(model, style.width, style.height, gl_backend) as renderer:
        for t in range(qpos.shape[0]):
            camera = _tracking_camera(view, np.array([root[t, 0], root[t, 1], height]))
            yield renderer.render(qpos[t], camera, None if markers is None else markers[t],
                                  style.marker_radius_m, style.marker_rgba)


def render_body_video(path: Path | str, qpos: np.ndarray, log_scale: np.ndarray, fps: float,
                      markers: np.ndarray | None = None, scale_matrix: np.ndarray | None = None,
                      mjcf_xml: str | None = None, style: BodyRenderStyle = BodyRenderStyle(),
                      gl_backend: str | None = None) -> Path:
    """Write an H.264 MP4 of the fitted body walking, seen by a camera that follows it.

    qpos: (T, Q) joint angles in qpos order (rad; pelvis translation m); log_scale: (G,) the fit's per-group
    log scale factors; fps: frame rate of ``qpos`` (frames/s; pass ``qpos[::k]`` with ``fps / k`` to render
    fewer frames); markers: optional (T, J, 3) virtual markers, metres; scale_matrix (B, G) and mjcf_xml:
    the base model's (default body40 and its default scale groups). Returns the path; the video has T frames
    of ``style.width`` × ``style.height`` px.
    """
    model = body_scene_model(log_scale, scale_matrix, mjcf_xml, style)
    written, _ = write_mp4(path, iter_body_frames(model, qpos, markers, style, gl_backend), fps)
    return written


def render_body_strip(path: Path | str, qpos: np.ndarray, log_scale: np.ndarray, n_tiles: int = 6,
                      markers: np.ndarray | None = None, scale_matrix: np.ndarray | None = None,
                      mjcf_xml: str | None = None, style: BodyRenderStyle = BodyRenderStyle(),
                      tile_height: int = 240, gl_backend: str | None = None) -> Path:
    """Write a PNG of ``n_tiles`` renderings of the body spread evenly over the trial, side by side.

    Arguments as in ``render_body_video``; each tile is ``tile_height`` px high (``frame_strip``).
    Returns the path.
    """
    indices = strip_frame_indices(np.asarray(qpos).shape[0], n_tiles)
    model = body_scene_model(log_scale, scale_matrix, mjcf_xml, style)
    chosen_markers = None if markers is None else np.asarray(markers)[indices]
    frames = list(iter_body_frames(model, np.asarray(qpos)[indices], chosen_markers, style, gl_backend))
    return write_png(path, frame_strip(frames, tile_height))
