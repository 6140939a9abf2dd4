"""The delivery formats a dub can write (``emodub dub --format NAME``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryFormat:
    """One output format.

    Attributes:
        name: what ``--format`` takes.
        description: one line for people (the CLI help, the app and the add-on lists).
        sequence: an image sequence (a folder of numbered files) rather than one movie file.
        ext: the movie file's extension, or each image's.
        codec: the :class:`~core.io.video.VideoWriter` codec of a movie format.
        lossless: every plate pixel outside the matte is written bit-exact.
        alpha: the paste matte can go into its alpha channel (``--matte alpha``).
    """

    name: str
    description: str
    sequence: bool
    ext: str
    codec: str | None = None
    lossless: bool = False
    alpha: bool = False


FORMATS: dict[str, DeliveryFormat] = {f.name: f for f in (
    DeliveryFormat("h264", "H.264 review file (MP4, yuv420p, AAC audio)", False, ".mp4", "h264"),
    DeliveryFormat("prores422hq", "ProRes 422 HQ (MOV, 10-bit 4:2:2, PCM audio)", False, ".mov", "prores422hq"),
    DeliveryFormat("prores4444", "ProRes 4444 (MOV, 10-bit 4:4:4, optional matte alpha, PCM audio)", False, ".mov",
                   "prores4444", alpha=True),
    DeliveryFormat("png16", "16-bit PNG image sequence (lossless; WAV and JSON sidecars)", True, ".png",
                   lossless=True, alpha=True),
    DeliveryFormat("exr", "OpenEXR image sequence (32-bit float code values, lossless; WAV and JSON sidecars)", True,
                   ".exr", lossless=True, alpha=True),
)}
DEFAULT_FORMAT = "h264"
# --matte: none, a separate 16-bit greyscale PNG sequence, or the alpha channel of the output
MATTES = ("none", "sequence", "alpha")
# The first frame number of an image sequence (the usual VFX convention).
SEQUENCE_START = 1001


def get_format(name: str) -> DeliveryFormat:
    """The format called ``name``.

    Raises:
        ValueError: no such format (the message lists them).
    """
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown delivery format {name!r}; formats: {', '.join(FORMATS)}") from None


def check_matte(fmt: DeliveryFormat, matte: str) -> None:
    """Refuse a matte the format cannot carry (``alpha`` in H.264 or ProRes 422).

    Raises:
        ValueError: a sentence naming the formats that can.
    """
    if matte not in MATTES:
        raise ValueError(f"--matte must be one of {', '.join(MATTES)}, got {matte!r}")
    if matte == "alpha" and not fmt.alpha:
        able = ", ".join(f.name for f in FORMATS.values() if f.alpha)
        raise ValueError(f"{fmt.name} has no alpha channel for the matte; use --matte sequence, or a format with "
                         f"alpha ({able})")
