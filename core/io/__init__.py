"""Video and audio I/O through the ffmpeg bundled with imageio-ffmpeg (streaming, atomic writes)."""

from .audio import extract_audio, load_wav, resample, write_wav
from .ffmpeg import MediaError, ffmpeg_exe, fps_fraction
from .video import VideoInfo, VideoWriter, iter_frames, probe, read_frame, write_video

__all__ = [
    "MediaError", "VideoInfo", "VideoWriter", "extract_audio", "ffmpeg_exe", "fps_fraction", "iter_frames",
    "load_wav", "probe", "read_frame", "resample", "write_video", "write_wav",
]
