"""Mix sound strips into one WAV file with Blender's own audio library (``aud``, Audaspace).

Used when the dub audio cannot be sent as one window of one file: several selected sound strips, or a
strip that starts after the movie strip (the dub needs leading silence). The plan (which part of
which file goes where) comes from :func:`.jobspec.mixdown_plan`; this module only renders it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .jobspec import JobInputError, MixPiece

MIX_RATE = 48000
MIX_CHANNELS = 2


def write_mixdown(pieces: Sequence[MixPiece], total_s: float, out_path: str, rate: int = MIX_RATE,
                  channels: int = MIX_CHANNELS) -> str:
    """Render ``pieces`` into a ``total_s`` seconds long 16-bit WAV at ``out_path`` (written to a
    temporary name first, then renamed). Returns ``out_path``.

    Raises:
        JobInputError: no audio support in this Blender build, or a file that cannot be read.
    """
    try:
        import aud
    except ImportError:
        raise JobInputError("this Blender build has no audio support (no 'aud' module) to mix sound strips",
                            hint="pick a single dub sound strip that starts with the movie strip, "
                                 "or set an audio file") from None
    for piece in pieces:
        if not os.path.isfile(piece.path):
            raise JobInputError(f"the sound file {piece.path} does not exist",
                                hint="relink the sound strip's file (or unpack it if it is packed)")
    mix = aud.Sound.silence(rate).rechannel(channels).limit(0.0, total_s)
    for piece in pieces:
        part = aud.Sound.file(piece.path).rechannel(channels).resample(rate, False)
        part = part.limit(piece.file_start_s, piece.file_start_s + piece.duration_s)
        if abs(piece.volume - 1.0) > 1e-6:
            part = part.volume(piece.volume)
        mix = mix.mix(part.delay(piece.delay_s))
    mix = mix.limit(0.0, total_s)
    directory = os.path.dirname(out_path)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(out_path)}.tmp.wav")
    mix.write(tmp, rate, channels, aud.FORMAT_S16, aud.CONTAINER_WAV, aud.CODEC_PCM)
    os.replace(tmp, out_path)
    return out_path
