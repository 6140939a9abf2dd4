"""The tracker: runs the declared stages in order over a clip, batched over frames, resumable.

For each stage, the frames (keyframes or all, see :class:`~core.tracking.config.StageSpec`) are split into
mini-batches (consecutive frames for ``"all"``). For every batch, the stage's per-frame variables of those
frames get a fresh Adam optimiser and ``iterations`` steps (learning rate cosine-decayed to 10 %), while the
stage's shared variables (shape, focal, lighting, albedo) have one Adam optimiser for the whole stage and
keep learning from batch to batch. Every stage starts from the values the previous one left (warm start);
the first from a weak-perspective placement of every frame. After a keyframe stage the change it made on
the keyframes is interpolated to the frames in between.

Checkpoints (``state.pt``, written atomically) hold every variable, where the run is (stage, pass, batch),
the shared optimiser's state and the time spent per stage: after each stage, every
``checkpoint_every_s`` seconds at batch boundaries, and when a job is cancelled. A rerun with the same
settings and inputs continues from there and ends with the same result as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from core.morphable.data import FaceParams
from core.morphable.model import MorphableModel
from core.render.camera import PerspectiveCamera
from core.tracking.config import PER_FRAME_VARIABLES, SHARED_VARIABLES, StageSpec, TrackerConfig
from core.tracking.data import ClipTargets
from core.tracking.energies import Energy, build_energies
from core.tracking.geometry import LandmarkModel, initial_focal, initial_placement
from core.tracking.optim import NamedAdam
from core.tracking.problem import FitView, FrameBatch, TrackingProblem, render_surface

Tensor = torch.Tensor
CHECKPOINT_VERSION = 1
GEOMETRY_VARIABLES = frozenset(PER_FRAME_VARIABLES) | {"shape", "focal"}
_SH_C0 = 0.5 * math.sqrt(1.0 / math.pi)


class Reporter(Protocol):
    def progress(self, stage: str, done: int, total: int, message: str = "") -> None: ...

    def log(self, message: str, level: str = "info") -> None: ...


class _Silent:
    def progress(self, stage: str, done: int, total: int, message: str = "") -> None:
        pass

    def log(self, message: str, level: str = "info") -> None:
        pass


@dataclass
class TrackingResult:
    """What a run produced.

    Attributes:
        params: N frames of parameters (shape repeated per frame), on the CPU.
        camera: the clip's crop-space camera (one camera).
        shared: ``shape`` (S,), ``focal_px`` float, ``sh`` (9, 3), ``albedo`` (3, T, T) tensors/values.
        stage_seconds: wall seconds spent in each stage (summed over resumed runs).
        stage_frames: frames each stage optimised (keyframes count or N); skipped stages are absent.
        skipped: names of stages that did not run (photometric stages without a video).
        resumed: the run continued from a checkpoint.
    """

    params: FaceParams
    camera: PerspectiveCamera
    shared: dict[str, Any]
    stage_seconds: dict[str, float]
    stage_frames: dict[str, int]
    skipped: list[str] = field(default_factory=list)
    resumed: bool = False


def _cosine(step: int, total: int) -> float:
    """Learning-rate factor: 1 at the first step, 0.1 at the last."""
    if total <= 1:
        return 1.0
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * step / (total - 1)))


class Tracker:
    """Fits a morphable model to one clip's targets.

    Args:
        model: the morphable model (its device and dtype are used).
        targets: the clip's landmark targets (and frames, for photometric stages).
        config: stages and settings.
        reporter: progress/log sink (a :class:`~core.jobs.context.JobContext`); its ``progress`` may raise
            :class:`~core.jobs.context.JobCancelled`, after which the state is checkpointed.
        checkpoint: path of ``state.pt`` (``None``: no checkpoints, no resume).
        identity: shared values from the actor's other tracked clips (``shape``, ``sh``, ``albedo``, and
            ``focal_frame_px`` with ``image_size``): used as the start, and the shape is held.
    """

    def __init__(self, model: MorphableModel, targets: ClipTargets, config: TrackerConfig | None = None, *,
                 reporter: Reporter | None = None, checkpoint: Path | None = None,
                 identity: dict[str, Any] | None = None) -> None:
        self.model = model
        self.targets = targets
        self.config = config or TrackerConfig()
        self.reporter = reporter or _Silent()
        self.checkpoint_path = checkpoint
        self.identity = identity
        self.device, self.dtype = model.device, model.dtype
        self.n_frames = targets.n_frames
        self.n_shape = min(self.config.n_shape if self.config.n_shape is not None else model.n_shape, model.n_shape)
        self.n_expr = min(self.config.n_expr if self.config.n_expr is not None else model.n_expr, model.n_expr)
        self.expression_range = self._expression_range()
        self.keyframes = targets.keyframes(self.config.keyframes)
        self.resumed = False
        self._last_checkpoint = time.monotonic()

    # ------------------------------------------------------------------ setup
    def _expression_range(self) -> tuple[float, float] | None:
        setting = self.config.expression_range
        if setting == "auto":
            return (0.0, 1.0) if self.model.name in ("procedural", "ict") else None
        if setting is None:
            return None
        low, high = setting
        return float(low), float(high)

    def _tensor(self, value: Any) -> Tensor:
        return torch.as_tensor(value, device=self.device, dtype=self.dtype)

    def input_fingerprint(self) -> str:
        """A hash of the targets (a checkpoint made for other landmarks is not resumed)."""
        t = self.targets
        h = hashlib.sha256()
        for array in (t.landmarks, t.frame_weight, t.landmark_weights):
            h.update(np.ascontiguousarray(array).tobytes())
        h.update(repr(t.crop.to_json()).encode())
        h.update(repr(t.frames.shape if t.frames is not None else None).encode())
        if self.identity is not None:
            for key in sorted(self.identity):
                value = np.asarray(self.identity[key])
                if np.issubdtype(value.dtype, np.number):
                    value = value.astype(np.float64).round(6)
                h.update(key.encode() + repr(value.tolist()).encode())
        return h.hexdigest()[:16]

    def _initial_state(self) -> dict[str, Any]:
        """Variables before the first stage: neutral face, each frame placed by weak perspective."""
        t = self.targets
        n = self.n_frames
        crop_size = t.crop_size
        focal = initial_focal(t.image_size[0], t.crop.scale, self.config.focal_mm)
        if self.identity is not None and self.identity.get("focal_frame_px") is not None and \
                tuple(self.identity.get("image_size", ())) == tuple(t.image_size):
            focal = float(self.identity["focal_frame_px"]) * t.crop.scale
        shape = torch.zeros(self.n_shape, device=self.device, dtype=self.dtype)
        if self.identity is not None and self.identity.get("shape") is not None:
            given = self._tensor(np.asarray(self.identity["shape"]).reshape(-1))[: self.n_shape]
            shape[: given.shape[0]] = given
        neutral = self.model.zero_params(1)
        neutral.shape = shape[None]
        lmk0 = LandmarkModel(self.model)(neutral)[0]
        lmk, lw, _ = t.landmark_tensors(np.arange(n), self.device, self.dtype)
        # frames without usable landmarks borrow the nearest usable frame's placement weights
        usable_w = torch.where(lw.sum(1, keepdim=True) > 0, lw, torch.ones_like(lw))
        key_w = usable_w[torch.as_tensor(self.keyframes, device=self.device)]
        distance, _ = initial_placement(lmk0, lmk[torch.as_tensor(self.keyframes, device=self.device)], key_w,
                                        focal, crop_size)
        variables: dict[str, Tensor] = {
            "shape": shape,
            "focal": self._tensor(math.log(focal)),
            "sh": self._initial_sh(),
            "albedo": self._initial_albedo(),
            "expression": torch.zeros(n, self.n_expr, device=self.device, dtype=self.dtype),
            "jaw_pose": torch.zeros(n, 3, device=self.device, dtype=self.dtype),
            "neck_pose": torch.zeros(n, 3, device=self.device, dtype=self.dtype),
            "eye_pose": torch.zeros(n, 6, device=self.device, dtype=self.dtype),
            "rotation": torch.zeros(n, 3, device=self.device, dtype=self.dtype),
            # each frame's own scale becomes its depth in front of the common camera distance
            "translation": self._fill_unusable(
                self._translation_at_distance(lmk0, lmk, usable_w, focal, distance, crop_size)),
        }
        return {"variables": variables, "distance": distance, "log_focal0": math.log(focal)}

    def _fill_unusable(self, per_frame: Tensor) -> Tensor:
        """Frames without usable landmarks take values interpolated from the usable ones around them."""
        usable = self.targets.usable
        if usable.all() or not usable.any():
            return per_frame
        frames = np.arange(self.n_frames)
        good = np.flatnonzero(usable)
        values = per_frame.detach().cpu().numpy()
        filled = np.stack([np.interp(frames, good, values[good, c]) for c in range(values.shape[1])], 1)
        return self._tensor(filled)

    def _translation_at_distance(self, lmk0: Tensor, lmk: Tensor, weights: Tensor, focal: float,
                                 distance: float, size: int) -> Tensor:
        """(N, 3) translations placing the neutral landmarks over each frame's targets, camera at ``distance``."""
        w = weights / weights.sum(1, keepdim=True)
        centre = (lmk * w[..., None]).sum(1)
        spread = (((lmk - centre[:, None]) ** 2).sum(-1) * w).sum(1).sqrt()
        xy0 = lmk0[:, :2]
        centre0 = (xy0[None] * w[..., None]).sum(1)
        spread0 = (((xy0[None] - centre0[:, None]) ** 2).sum(-1) * w).sum(1).sqrt()
        depth = focal * spread0 / spread.clamp_min(1e-6)  # depth of the landmark plane in each frame
        mean_z = float(lmk0[:, 2].mean())
        tz = (distance - mean_z) - depth  # camera at +distance looks down -z: nearer head = larger z
        # x, y from the pixel offsets at that depth
        tx = (centre[:, 0] - size / 2.0) * depth / focal - centre0[:, 0]
        ty = -(centre[:, 1] - size / 2.0) * depth / focal - centre0[:, 1]
        return torch.stack([tx, ty, tz], 1)

    def _initial_sh(self) -> Tensor:
        if self.identity is not None and self.identity.get("sh") is not None:
            return self._tensor(np.asarray(self.identity["sh"])).reshape(9, 3).clone()
        sh = torch.zeros(9, 3, device=self.device, dtype=self.dtype)
        sh[0] = 1.0 / _SH_C0  # a uniform white sky: shading factor 1 everywhere
        return sh

    def _initial_albedo(self) -> Tensor:
        size = self.config.albedo_size
        if self.identity is not None and self.identity.get("albedo") is not None:
            given = self._tensor(np.asarray(self.identity["albedo"]))
            if given.shape == (3, size, size):
                return given.clone()
        if self.model.albedo is not None:
            tex = self.model.albedo.permute(2, 0, 1)[None].to(self.dtype)
            tex = torch.nn.functional.interpolate(tex, size=(size, size), mode="area")[0]
            return tex.clamp(0.0, 1.0).contiguous()
        return torch.full((3, size, size), 0.6, device=self.device, dtype=self.dtype)

    # ------------------------------------------------------------------ checkpoints
    def _save(self, state: dict[str, Any]) -> None:
        if self.checkpoint_path is None:
            return
        from core.io.checkpoint import save_checkpoint

        payload = {k: v for k, v in state.items() if k != "variables"}
        payload["variables"] = {k: v.detach().cpu() for k, v in state["variables"].items()}
        save_checkpoint(payload, self.checkpoint_path)
        self._last_checkpoint = time.monotonic()

    def _load(self) -> dict[str, Any] | None:
        path = self.checkpoint_path
        if path is None or not path.is_file():
            return None
        from core.io.checkpoint import UnreadableCheckpoint, load_checkpoint

        try:
            # weights only: a crafted state.pt raises UnsafeCheckpoint (unsafe_file) and runs nothing
            payload = load_checkpoint(path, map_location=self.device, what="tracking state")
        except UnreadableCheckpoint as exc:
            # a damaged checkpoint is not fatal: start over
            self.reporter.log(f"ignoring unreadable tracking checkpoint {path} ({exc})", "warning")
            return None
        if payload.get("version") != CHECKPOINT_VERSION or payload.get("fingerprint") != self.config.fingerprint() \
                or payload.get("inputs") != self.input_fingerprint():
            self.reporter.log("the tracking checkpoint was made with other settings or inputs; starting over")
            return None
        payload["variables"] = {k: v.to(self.device, self.dtype) for k, v in payload["variables"].items()}
        return payload

    # ------------------------------------------------------------------ running
    def run(self) -> TrackingResult:
        """Run (or resume) every stage; returns the result."""
        state = self._load()
        if state is None:
            state = {"version": CHECKPOINT_VERSION, "fingerprint": self.config.fingerprint(),
                     "inputs": self.input_fingerprint(), "stage": 0, "pass": 0, "batch": 0,
                     "shared_optimizer": None, "stage_seconds": {}, "stage_frames": {}, "skipped": [],
                     **self._initial_state()}
        else:
            self.resumed = True
            done = [s.name for s in self.config.stages[: state["stage"]]]
            self.reporter.log(f"resuming tracking after {', '.join(done) or 'nothing'} "
                              f"(stage {state['stage'] + 1}, pass {state['pass'] + 1}, batch {state['batch'] + 1})")
        problem = TrackingProblem(self.model, self.targets.crop_size, state["distance"], self.config.photometric_size,
                                  self.config.translation_scale, self.config.jaw_prior_weights)
        energies = build_energies(landmark_weight=self.config.landmark_base_weight,
                                  huber_px=self.config.landmark_huber_px, log_focal0=state["log_focal0"],
                                  jaw_prior=self._tensor(self.config.jaw_prior_weights),
                                  translation_scale=self.config.translation_scale)
        stages = self.config.stages
        try:
            while state["stage"] < len(stages):
                stage = stages[state["stage"]]
                self._run_stage(stage, state, problem, energies)
                state["stage"] += 1
                state["pass"] = state["batch"] = 0
                state["shared_optimizer"] = None
                self._save(state)
        except BaseException:
            # cancelled or failed mid-stage: keep what is done (the counters point at the next batch)
            self._save(state)
            raise
        return self._result(state, problem)

    def _stage_variables(self, stage: StageSpec) -> tuple[str, ...]:
        variables = list(stage.variables)
        if self.identity is not None and self.identity.get("shape") is not None and "shape" in variables:
            variables.remove("shape")  # the actor's identity is fixed across clips
        if self.identity is not None and self.identity.get("focal_frame_px") is not None and "focal" in variables \
                and tuple(self.identity.get("image_size", ())) == tuple(self.targets.image_size):
            variables.remove("focal")
        return tuple(variables)

    def _batches(self, stage: StageSpec) -> list[np.ndarray]:
        if stage.frames == "keyframes":
            frames = self.keyframes
        else:
            frames = np.arange(self.n_frames)
        size = stage.batch_size
        return [frames[i:i + size] for i in range(0, len(frames), size)]

    def _run_stage(self, stage: StageSpec, state: dict[str, Any], problem: TrackingProblem,
                   energies: dict[str, Energy]) -> None:
        iterations = self.config.iterations(stage)
        if stage.photometric and self.targets.frames is None:
            if stage.name not in state["skipped"]:
                state["skipped"].append(stage.name)
                self.reporter.log(f"stage {stage.name}: skipped (the clip has no video frames)", "warning")
            return
        batches = self._batches(stage)
        variables = self._stage_variables(stage)
        frame_vars = [v for v in variables if v in PER_FRAME_VARIABLES]
        shared_vars = [v for v in variables if v in SHARED_VARIABLES]
        values = state["variables"]
        before_stage = {v: values[v].detach().clone() for v in frame_vars} if stage.frames == "keyframes" else None
        # shared leaves and their optimiser live for the whole stage
        shared_leaves = {v: values[v].detach().clone().requires_grad_(True) for v in shared_vars}
        shared_opt = None
        if shared_leaves and iterations > 0:
            shared_opt = NamedAdam(shared_leaves, stage.lr)
            if state["shared_optimizer"] is not None:
                shared_opt.load_state_dict(state["shared_optimizer"])
        total = stage.passes * len(batches)
        state["stage_frames"][stage.name] = int(sum(len(b) for b in batches))
        for pass_index in range(state["pass"], stage.passes):
            start = state["batch"] if pass_index == state["pass"] else 0
            for batch_index in range(start, len(batches)):
                began = time.perf_counter()
                index = batches[batch_index]
                if iterations > 0:
                    self._fit_batch(stage, index, frame_vars, shared_leaves, shared_opt, values, problem,
                                    energies, iterations)
                for v, leaf in shared_leaves.items():
                    values[v] = leaf.detach().clone()
                state["batch"] = batch_index + 1
                state["pass"] = pass_index
                if state["batch"] == len(batches) and pass_index + 1 < stage.passes:
                    state["pass"], state["batch"] = pass_index + 1, 0
                state["shared_optimizer"] = shared_opt.state_dict() if shared_opt is not None else None
                seconds = state["stage_seconds"]
                seconds[stage.name] = seconds.get(stage.name, 0.0) + time.perf_counter() - began
                if time.monotonic() - self._last_checkpoint > self.config.checkpoint_every_s:
                    self._save(state)
                done = pass_index * len(batches) + batch_index + 1
                self.reporter.progress(stage.name, done, total,
                                       f"pass {pass_index + 1}/{stage.passes}" if stage.passes > 1 else "")
        if before_stage is not None:
            self._propagate_from_keyframes(frame_vars, before_stage, values)

    def _frame_batch(self, index: np.ndarray, contiguous: bool, values: dict[str, Tensor],
                     photometric: bool) -> FrameBatch:
        lmk, lw, fw = self.targets.landmark_tensors(index, self.device, self.dtype)
        images = self.targets.image_tensor(index, self.device, self.dtype) if photometric else None
        before = after = None
        if contiguous:
            first, last = int(index[0]), int(index[-1])
            if first > 0:
                before = {v: values[v][first - 1:first].detach() for v in PER_FRAME_VARIABLES}
            if last + 1 < self.n_frames:
                after = {v: values[v][last + 1:last + 2].detach() for v in PER_FRAME_VARIABLES}
        return FrameBatch(index=torch.as_tensor(index, device=self.device), contiguous=contiguous, landmarks=lmk,
                          landmark_weight=lw, frame_weight=fw, images=images, before=before, after=after)

    def _fit_batch(self, stage: StageSpec, index: np.ndarray, frame_vars: list[str],
                   shared_leaves: dict[str, Tensor], shared_opt: NamedAdam | None,
                   values: dict[str, Tensor], problem: TrackingProblem, energies: dict[str, Energy],
                   iterations: int) -> None:
        idx = torch.as_tensor(index, device=self.device)
        batch = self._frame_batch(index, stage.frames == "all", values, stage.photometric)
        leaves = {v: values[v][idx].detach().clone().requires_grad_(True) for v in frame_vars}
        optimisers = [o for o in (NamedAdam(leaves, stage.lr) if leaves else None, shared_opt) if o is not None]
        surface = None
        if stage.photometric and not (set(stage.variables) & GEOMETRY_VARIABLES):
            # texture/lighting only: the rasterized surface is the same at every step
            with torch.no_grad():
                surface = render_surface(problem, FitView(problem, self._values_at(values, idx), batch).params,
                                         values["focal"])
        for step in range(iterations):
            factor = _cosine(step, iterations)
            current: dict[str, Tensor] = {}
            for v in PER_FRAME_VARIABLES:
                current[v] = leaves[v] if v in leaves else values[v][idx]
            for v in SHARED_VARIABLES:
                current[v] = shared_leaves[v] if v in shared_leaves else values[v]
            view = FitView(problem, current, batch, surface)
            loss = sum((w * energies[name].weight * energies[name](view, batch)
                        for name, w in stage.energies.items() if w), start=torch.zeros((), device=self.device))
            for o in optimisers:
                o.zero_grad()
            loss.backward()
            for o in optimisers:
                o.step(factor)
            self._project(leaves, shared_leaves)
        for v, leaf in leaves.items():
            values[v] = values[v].index_copy(0, idx, leaf.detach())

    @staticmethod
    def _values_at(values: dict[str, Tensor], idx: Tensor) -> dict[str, Tensor]:
        """Every variable's current value for frames ``idx`` (shared ones as they are)."""
        return {v: (values[v][idx] if v in PER_FRAME_VARIABLES else values[v]) for v in values}

    @torch.no_grad()
    def _project(self, leaves: dict[str, Tensor], shared: dict[str, Tensor]) -> None:
        """Keep variables in their valid ranges after a step."""
        if self.expression_range is not None and "expression" in leaves:
            leaves["expression"].clamp_(*self.expression_range)
        if "albedo" in shared:
            shared["albedo"].clamp_(0.0, 1.0)

    def _propagate_from_keyframes(self, names: list[str], before: dict[str, Tensor],
                                  values: dict[str, Tensor]) -> None:
        """Spread the change a keyframe stage made on the keyframes to every frame (linear in time)."""
        keys = self.keyframes
        if len(keys) == 0:
            return
        frames = np.arange(self.n_frames)
        for name in names:
            delta = (values[name] - before[name])[torch.as_tensor(keys, device=self.device)].detach().cpu().numpy()
            filled = np.stack([np.interp(frames, keys, delta[:, c]) for c in range(delta.shape[1])], 1)
            on_key = np.zeros(self.n_frames, bool)
            on_key[keys] = True
            updated = before[name] + self._tensor(filled)
            values[name] = torch.where(self._tensor(on_key)[:, None] > 0, values[name], updated)

    # ------------------------------------------------------------------ results
    def _result(self, state: dict[str, Any], problem: TrackingProblem) -> TrackingResult:
        v = {k: t.detach() for k, t in state["variables"].items()}
        params = FaceParams(shape=v["shape"].reshape(1, -1).expand(self.n_frames, -1).contiguous(),
                            expression=v["expression"], jaw_pose=v["jaw_pose"], neck_pose=v["neck_pose"],
                            eye_pose=v["eye_pose"], rotation=v["rotation"], translation=v["translation"])
        camera = problem.camera(v["focal"]).detach()
        shared = {"shape": v["shape"].cpu(), "focal_px": float(torch.exp(v["focal"])), "sh": v["sh"].cpu(),
                  "albedo": v["albedo"].cpu(), "distance": float(state["distance"])}
        return TrackingResult(params=params.to("cpu"), camera=camera.to("cpu"), shared=shared,
                              stage_seconds=dict(state["stage_seconds"]), stage_frames=dict(state["stage_frames"]),
                              skipped=list(state["skipped"]), resumed=self.resumed)
