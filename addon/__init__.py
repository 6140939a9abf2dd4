"""emodub for Blender: emotion-controllable dubbing in the Video Sequence Editor.

Runs inside Blender's own Python: it never imports torch or the engine (``core``). It starts the
engine as a subprocess and talks to it through the job protocol (``protocol.py``, a copy of
``core/jobs/protocol.py`` made by build.py).

Modules: ``properties`` (preferences, ``scene.emodub``), ``operators`` (jobs, the polling timer),
``panels`` (the sequencer's "Dubbing" tab) use ``bpy``; ``emotions``, ``engine``, ``jobspec``,
``placement``, ``workspace`` and ``compat`` do not (they are unit-tested without Blender), so this
file imports the Blender-side modules only when the add-on is registered.
"""

from __future__ import annotations


def register() -> None:
    from . import operators, panels, properties

    properties.register()
    operators.register()
    panels.register()


def unregister() -> None:
    from . import operators, panels, properties

    panels.unregister()
    operators.unregister()
    properties.unregister()
