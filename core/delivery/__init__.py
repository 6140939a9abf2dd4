"""Studio delivery of a dub: formats, the plate at full precision, the exact paste, mattes, provenance.

A dub goes back into a film's conform, so what it writes must be deliverable:

* **Formats** (:data:`core.delivery.formats.FORMATS`): the H.264 review file (``h264``, the default: what
  every player, the app and Blender read), ProRes 422 HQ and ProRes 4444 in MOV with PCM audio at the dub
  audio's own rate and depth (``prores422hq``, ``prores4444``), and image sequences: 16-bit PNG (``png16``)
  and OpenEXR (``exr``, 32-bit float, written by OpenCV's OpenEXR codec). Whatever the format, the dub also
  writes the H.264 review file (the app and the add-on show and place that one).
* **The plate** (:mod:`core.delivery.plate`): a delivery is composited over the *source* plate (the file that
  was ingested, decoded once at its own precision: 8-bit sources as ``rgb24``, 10-16 bit sources as
  ``rgb48le``), at its full resolution, not over the H.264 working copy. That needs the working copy's frames
  to be the source's frames (a shot keeps its own rate and frames at ingest); otherwise (a resampled or
  variable-rate shot, a moved source, a synthetic shot) the working copy is the plate and the report says so.
* **Exactness** (:func:`core.delivery.composite.composite`): the renderer's face is blended into the plate only
  where the paste matte is above zero; every other pixel is copied from the decoded plate untouched (no round
  trip through float). The matte is quantised to 16 bits before it is used, so the matte that is written is
  exactly the weight that was used. PNG 16-bit and EXR keep every plate pixel outside the matte bit-exact
  (an 8-bit plate value ``v`` is stored as ``257 v`` in 16-bit PNG and ``v / 255`` as a float in EXR: both
  exact and reversible); ProRes and H.264 are lossy codecs and do not.
* **Mattes** (``--matte``): ``sequence`` writes the paste matte (the feathered face region per frame, full
  resolution) as a 16-bit greyscale PNG sequence; ``alpha`` puts it into the alpha channel of a ``prores4444``,
  ``png16`` or ``exr`` output.
* **Timing**: the output has the shot's exact frame rate (``24000/1001``...) and the source's timecode
  (MOV/MP4 timecode track; the sidecar JSON of a sequence).
* **Provenance** (:mod:`core.delivery.provenance`): the engine version, the actor, the actor's consent record
  and the sha256 of the models used go into the report and into the output's metadata (MOV/MP4 tags; a
  sidecar JSON beside an image sequence).
"""

from .formats import FORMATS, MATTES, DeliveryFormat, get_format

__all__ = ["FORMATS", "MATTES", "DeliveryFormat", "get_format"]
