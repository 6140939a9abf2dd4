"""The ``landmarks`` job kind: (re)compute ``landmarks.npz`` and ``crop.json`` of an ingested clip or shot
(``emodub landmarks --workspace W --actor A --clip C`` or ``--shot S``)."""

from __future__ import annotations

from typing import Any

from core.jobs.context import JobContext, JobFailed
from core.jobs.registry import Arg, job_kind


@job_kind("landmarks", help="detect face landmarks and the stable square crop of an ingested clip or shot",
          args=[Arg("--actor", default=None, help="actor of the clip"),
                Arg("--clip", default=None, help="clip name"),
                Arg("--shot", default=None, help="or: a shot to be dubbed"),
                Arg("--max-gap", type=int, default=5, dest="max_gap",
                    help="longest run of faceless frames to interpolate (default 5); longer runs are "
                         "flagged"),
                Arg("--crop-size", type=int, default=256, dest="crop_size",
                    help="side of the stable square face crop (default 256)"),
                Arg("--detector", default="mediapipe", choices=["mediapipe", "ground_truth"],
                    help="mediapipe (real footage), or the ground-truth landmarks of a synthetic clip"),
                Arg("--noise-px", type=float, default=0.0, dest="noise_px",
                    help="with --detector ground_truth: Gaussian noise added to the landmarks (px)")])
def run_landmarks(ctx: JobContext) -> dict[str, Any]:
    from core.landmarks.crop import CropConfig
    from core.landmarks.stage import run_stage, track_warnings
    from core.landmarks.track import LandmarkConfig, NoFaceError
    from core.workspace import LockBusy, WorkspaceError

    p = ctx.params
    ws = ctx.workspace
    actor, clip, shot = p.get("actor"), p.get("clip"), p.get("shot")
    try:
        if shot and not actor and not clip:
            record, folder, label = ws.shot(shot), ws.shot_dir(shot), f"shot {shot}"
        elif actor and clip and not shot:
            record, folder, label = ws.clip(actor, clip), ws.clip_dir(actor, clip), f"clip {actor}/{clip}"
        else:
            raise JobFailed("give --actor and --clip, or --shot", code="bad_params")
    except WorkspaceError as exc:
        raise JobFailed(str(exc), hint=exc.hint, code="not_found") from None
    video = ws.root / record["video"]
    if not video.exists():
        raise JobFailed(f"{label}: its video {video} is missing", hint="ingest it again", code="not_found")
    if p.get("detector", "mediapipe") == "ground_truth":
        import numpy as np

        from core.landmarks.detector import GroundTruthDetector

        truth = folder / "ground_truth" / "landmarks.npz"
        if not truth.exists():
            raise JobFailed(f"{label} has no ground-truth landmarks ({truth})", code="no_detector",
                            hint="--detector ground_truth is for synthetic clips; use mediapipe for footage")
        with np.load(truth) as data:
            detector = GroundTruthDetector(data["lmk68"], noise_px=float(p.get("noise_px") or 0.0))
    else:
        try:
            from core.landmarks.detector import MediaPipeDetector

            detector = MediaPipeDetector()
        except ImportError as exc:
            raise JobFailed(str(exc), code="no_detector") from None
    config = LandmarkConfig(max_gap=int(p.get("max_gap") if p.get("max_gap") is not None else 5))
    crop_config = CropConfig(out_size=int(p.get("crop_size") or 256))
    lock_name = f"landmarks/shot/{shot}" if shot else f"landmarks/{actor}/{clip}"
    try:
        with ws.lock(lock_name):
            track, crop = run_stage(folder, video, detector, landmark_config=config, crop_config=crop_config,
                                    reporter=ctx, total=int(record.get("frames") or 0))
            fps = float(record.get("fps") or 25.0)
            warnings = track_warnings(track, fps)
            summary = track.summary(fps)
            stats = {k: summary[k] for k in ("detection_rate", "interpolated", "flagged", "mean_confidence",
                                             "detector")}
            rel = folder.relative_to(ws.root).as_posix()
            fields = {"stages": {**record.get("stages", {}), "landmarks": True},
                      "landmarks": f"{rel}/landmarks.npz", "crop": f"{rel}/crop.json",
                      "landmark_stats": stats}
            if shot:
                ws.update_shot(shot, **fields)
            else:
                ws.update_clip(actor, clip, **fields)
    except LockBusy as exc:
        raise JobFailed(str(exc), hint="wait for the other job to finish", code="busy") from None
    except NoFaceError as exc:
        raise JobFailed(f"{label}: {exc.message}", hint=exc.hint, code="no_face") from None
    finally:
        detector.close()
    for message in warnings:
        ctx.log(message, "warning")
    ctx.artifact(folder / "landmarks.npz", "landmarks")
    ctx.artifact(folder / "crop.json", "crop")
    return {"landmarks": str(folder / "landmarks.npz"), "crop": str(folder / "crop.json"),
            "frames": len(track), "detection_rate": summary["detection_rate"],
            "flagged_frames": summary["flagged"],
            "crop_box": [crop.x0, crop.y0, crop.size], "warnings": warnings}
