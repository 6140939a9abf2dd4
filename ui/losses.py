"""Loss histories of a training job, without Qt, built from its protocol events.

Training jobs report losses two ways (the contract with the engine's trainers):
* ``progress`` events whose ``message`` holds ``name value`` pairs (``"g_l1 0.132 d 0.48"``,
  ``"loss=0.01, lr=1e-4"``); the step is the event's ``done``;
* ``artifact`` events of kind ``"losses"``: a JSON file ``{"step": [...], "<name>": [...]}`` holding the
  whole history so far, which replaces what the messages gave (it is the engine's own record).
``artifact`` events of kind ``"image"`` are sample images; the view shows the latest.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.jobs import protocol as P

_WORD = r"[A-Za-z_][A-Za-z0-9_./-]*"
# A name is the run of words right before a number: "L1 0.12", "val L1 0.3", "jaw r 0.45", "d=1e-2".
# The name ends at a space, "=" or ":" ("clip_3" is a name, not "clip_" and 3).
_PAIR = re.compile(rf"((?:{_WORD}[ \t]+)*{_WORD})(?:\s*[=:]\s*|\s+)([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
# Numbers in messages that are not losses.
NOT_LOSSES = frozenset({"step", "steps", "epoch", "iter", "it", "lr", "eta", "frame", "frames", "batch"})
MAX_POINTS = 20000  # per series; older points are thinned by half when exceeded


def parse_loss_message(message: str) -> dict[str, float]:
    """``name value`` pairs of a progress message (step counters and learning rate left out)."""
    out: dict[str, float] = {}
    for name, text in _PAIR.findall(message):
        if name.lower() in NOT_LOSSES or name.split()[-1].lower() in NOT_LOSSES:
            continue
        value = float(text)
        if math.isfinite(value):
            out[name] = value
    return out


@dataclass
class LossHistory:
    """Per-loss series of (step, value)."""

    series: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    latest_image: str | None = None
    from_file: bool = False
    skipped: list[str] = field(default_factory=list)

    def add(self, step: float, values: dict[str, float]) -> None:
        for name, value in values.items():
            steps, vals = self.series.setdefault(name, ([], []))
            if steps and step <= steps[-1]:
                continue  # repeated progress at the same step (e.g. a stage restart): keep the first
            steps.append(float(step))
            vals.append(float(value))
            if len(steps) > MAX_POINTS:
                del steps[::2], vals[::2]

    def load_file(self, path: str | Path) -> None:
        """Replace the series by a ``losses.json`` file's content: ``step`` plus one list per loss of the
        same length; a list of another length is plotted against ``<prefix>_step`` when the file has
        one (e.g. ``val_l1`` against ``val_step``) and skipped otherwise (listed in :attr:`skipped`).

        Raises:
            ValueError: not a JSON object with a ``step`` list.
        """
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("step"), list):
            raise ValueError(f"{path}: a losses file needs a 'step' list and one list per loss")
        series: dict[str, tuple[list[float], list[float]]] = {}
        self.skipped = []
        for name, values in data.items():
            if name == "step" or name.endswith("_step") or not isinstance(values, list):
                continue
            steps = data["step"]
            if len(values) != len(steps):
                steps = data.get(f"{name.split('_')[0]}_step")
                if not isinstance(steps, list) or len(steps) != len(values):
                    self.skipped.append(name)
                    continue
            pairs = [
                (float(s), float(v))
                for s, v in zip(steps, values, strict=True)
                if isinstance(v, int | float) and math.isfinite(float(v))
            ]
            series[name] = ([p[0] for p in pairs], [p[1] for p in pairs])
        self.series = series
        self.from_file = True

    def feed(self, event: P.Event) -> bool:
        """Take one event of the training job; ``True`` if the history or image changed."""
        if isinstance(event, P.Progress):
            if self.from_file:
                return False  # the losses file is authoritative once seen
            values = parse_loss_message(event.message)
            if values:
                self.add(event.done, values)
                return True
        elif isinstance(event, P.Artifact):
            if event.kind == "losses":
                self.load_file(event.path)
                return True
            if event.kind == "image":
                self.latest_image = event.path
                return True
        return False
