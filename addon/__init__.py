"""emodub for Blender: emotion-controllable dubbing in the Video Sequence Editor.

Runs inside Blender's own Python: it never imports torch or the engine (``core``). It starts the
engine as a subprocess and talks to it through the job protocol (``protocol.py``, a copy of
``core/jobs/protocol.py`` made by build.py).
"""

from __future__ import annotations

import bpy


class EMODUB_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    engine_command: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Engine command",
        description="A Python with emodub installed, or the emodub executable (found on PATH when empty)",
        default="",
        subtype="FILE_PATH",
    )

    def draw(self, context: bpy.types.Context) -> None:
        self.layout.prop(self, "engine_command")


classes = (EMODUB_AddonPreferences,)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
