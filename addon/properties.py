"""The add-on's preferences and the per-scene dubbing settings (``scene.emodub``).

The seven emotion sliders are ordinary animatable float properties: keyframing one (the dot next to
the slider, or I over it) makes an F-curve ``emodub.<emotion>`` on the scene's action, which shows in
the Dope Sheet, the Graph Editor and the timeline like any keyframe. That F-curve is the emotion's
intensity curve; Render Dub samples it once per frame.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import compat, jobspec
from . import renderers as renderer_catalog
from . import workspace as workspace_info
from .emotions import EMOTIONS
from .jobspec import DEVICES

EMOTION_ITEMS = [(name, name.capitalize(), f"Intensity of {name}") for name in EMOTIONS]
# Numbered, so that a saved choice keeps its meaning when the list the engine offers is shorter.
DEVICE_ITEMS = [("auto", "Auto", "CUDA when the engine finds a GPU, else CPU", "", 0),
                ("cpu", "CPU", "Always run on the CPU", "", 1),
                ("cuda", "CUDA", "Run on the NVIDIA GPU", "", 2)]
assert [i[0] for i in DEVICE_ITEMS] == list(DEVICES)
_DEVICE_ITEMS: dict[str, Any] = {"items": DEVICE_ITEMS}  # the list Blender was last given (kept alive)


def _device_items(prefs: Any, _context: Any) -> list[tuple[str, str, str, str, int]]:
    """The devices the engine offers, from the last Check Engine (all three before any check)."""
    offered = [d for d in str(getattr(prefs, "engine_devices", "")).split(",") if d]
    items = [item for item in DEVICE_ITEMS if not offered or item[0] in offered]
    _DEVICE_ITEMS["items"] = items
    return items
# Blender keeps only borrowed references to enum item strings: the last list handed out must stay alive.
_RENDERER_ITEMS: dict[str, Any] = {"key": None, "items": [(renderer_catalog.BEST, "Actor's Best", "")]}


def preferences(context: bpy.types.Context | None = None) -> EMODUB_AddonPreferences | None:
    """The add-on's preferences (``None`` while it is not enabled)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def workspace_path(context: bpy.types.Context | None = None) -> str:
    prefs = preferences(context)
    return bpy.path.abspath(prefs.workspace) if prefs is not None and prefs.workspace else ""


def _matching(names: list[str], edit_text: str) -> list[str]:
    text = (edit_text or "").lower()
    return [n for n in names if text in n.lower()]


def _search_actors(_self: bpy.types.PropertyGroup, context: bpy.types.Context, edit_text: str) -> list[str]:
    return _matching(workspace_info.list_actors(workspace_path(context)), edit_text)


def _search_shots(_self: bpy.types.PropertyGroup, context: bpy.types.Context, edit_text: str) -> list[str]:
    return _matching(workspace_info.list_shots(workspace_path(context)), edit_text)


def _strip_names(context: bpy.types.Context, kind: str) -> list[str]:
    editor = context.scene.sequence_editor if context.scene else None
    return sorted(s.name for s in compat.strips_of_type(editor, kind))


def engine_catalog(context: bpy.types.Context | None = None) -> renderer_catalog.RendererCatalog:
    """The engine's renderer variants (cached per engine command; Check Engine refreshes them)."""
    from .engine import parse_env_text, resolve_engine

    prefs = preferences(context)
    if prefs is None:
        return renderer_catalog.RendererCatalog(error="the emodub add-on is not enabled")
    setting = prefs.engine_command.strip()
    if setting.startswith("//"):
        setting = bpy.path.abspath(setting)
    return renderer_catalog.CACHE.for_setting(setting, prefs.engine_env,
                                              lambda s, e: (resolve_engine(s), parse_env_text(e)))


def _renderer_items(settings: bpy.types.PropertyGroup, context: bpy.types.Context | None) -> list[Any]:
    catalog = engine_catalog(context)
    root = workspace_path(context)
    trained = renderer_catalog.trained_variants(root, settings.actor, catalog.legacy) if root else {}
    key = (catalog.names, catalog.default, tuple((k, tuple(v)) for k, v in sorted(trained.items())))
    if key != _RENDERER_ITEMS["key"]:
        _RENDERER_ITEMS["key"] = key
        _RENDERER_ITEMS["items"] = renderer_catalog.enum_items(catalog, trained)
    return _RENDERER_ITEMS["items"]


def _search_movie_strips(_self: bpy.types.PropertyGroup, context: bpy.types.Context,
                         edit_text: str) -> list[str]:
    return _matching(_strip_names(context, "MOVIE"), edit_text)


def _search_sound_strips(_self: bpy.types.PropertyGroup, context: bpy.types.Context,
                         edit_text: str) -> list[str]:
    return _matching(_strip_names(context, "SOUND"), edit_text)


class EMODUB_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    engine_command: StringProperty(  # type: ignore[valid-type]
        name="Engine Command",
        description=("A Python with emodub installed, or the emodub program; empty: the emodub program found on "
                     "the system PATH"),
        default="", subtype="FILE_PATH")
    engine_env: StringProperty(  # type: ignore[valid-type]
        name="Engine Environment",
        description="Extra environment variables for the engine, KEY=VALUE separated by ';' "
                    "(e.g. PYTHONPATH=/src/emodub;OMP_NUM_THREADS=4)",
        default="")
    workspace: StringProperty(  # type: ignore[valid-type]
        name="Workspace", description="The emodub workspace folder (actors, shots, models, renders)",
        default="", subtype="DIR_PATH")
    device: EnumProperty(  # type: ignore[valid-type]
        name="Device", items=_device_items, default=0,
        description="Where the engine runs its models (Check Engine lists what it offers: CUDA only with a GPU)")
    engine_devices: StringProperty(name="Engine Devices", default="")  # type: ignore[valid-type]
    warm_preview: BoolProperty(  # type: ignore[valid-type]
        name="Keep a Preview Engine Warm", default=True,
        description=("Previews run in an engine that stays loaded between them (seconds faster). It stops when "
                     "the add-on is disabled, when Blender quits, or after 10 minutes without a preview"))
    engine_check_summary: StringProperty(name="Engine Check", default="")  # type: ignore[valid-type]
    engine_check_details: StringProperty(name="Engine Check Details", default="")  # type: ignore[valid-type]
    engine_check_ok: BoolProperty(name="Engine OK", default=False)  # type: ignore[valid-type]

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "engine_command")
        layout.prop(self, "engine_env")
        row = layout.row(align=True)
        row.prop(self, "workspace")
        row.operator("emodub.create_workspace", text="", icon="NEWFOLDER")
        layout.prop(self, "device")
        layout.prop(self, "warm_preview")
        row = layout.row()
        row.operator("emodub.check_engine", icon="CHECKMARK")
        if self.engine_check_summary:
            box = layout.box()
            box.alert = not self.engine_check_ok
            box.label(text=self.engine_check_summary, icon="INFO" if self.engine_check_ok else "ERROR")
            for line in self.engine_check_details.splitlines():
                box.label(text=line)


def _emotion_slider(name: str) -> FloatProperty:
    return FloatProperty(name=name.capitalize(), description=f"Intensity of {name} (0: none, 1: full); "
                         "keyframe it to make an intensity curve", min=0.0, max=1.0, default=0.0,
                         subtype="FACTOR", options={"ANIMATABLE"})


def _status(name: str, description: str) -> StringProperty:
    return StringProperty(name=name, description=description, default="", options=set())


class EMODUB_SceneSettings(bpy.types.PropertyGroup):
    """``scene.emodub``: what to dub with what, the emotion sliders, and the last job's status."""

    actor: StringProperty(  # type: ignore[valid-type]
        name="Actor", description="The trained actor (from the workspace) who plays in the shot",
        search=_search_actors, options=set())
    shot: StringProperty(  # type: ignore[valid-type]
        name="Shot",
        description="The prepared shot in the workspace; empty: named after the source strip's file",
        search=_search_shots, options=set())
    renderer: EnumProperty(  # type: ignore[valid-type]
        name="Renderer", items=_renderer_items, options=set(),
        description="The renderer variant to dub with (the list comes from the engine)")
    source_strip: StringProperty(  # type: ignore[valid-type]
        name="Source Strip", description="The movie strip to dub (empty: the active movie strip)",
        search=_search_movie_strips, options=set())
    sound_strip: StringProperty(  # type: ignore[valid-type]
        name="Dub Sound", description=("The sound strip with the new dialogue (empty: the audio file, "
                                       "else a mixdown of the selected sound strips)"),
        search=_search_sound_strips, options=set())
    audio_file: StringProperty(  # type: ignore[valid-type]
        name="Audio File", description="Dub audio from a file instead of a strip; it starts with the shot",
        default="", subtype="FILE_PATH", options=set())
    output_channel: IntProperty(  # type: ignore[valid-type]
        name="Output Channel",
        description="Channel of the rendered strip (0: the first free one above the source)",
        default=0, min=0, max=128, options=set())
    delivery_format: EnumProperty(  # type: ignore[valid-type]
        name="Delivery", items=jobspec.FORMATS, default="h264", options=set(),
        description="What the engine writes besides the H.264 review file that is added to the sequencer")
    matte: EnumProperty(  # type: ignore[valid-type]
        name="Matte", items=jobspec.MATTES, default="none", options=set(),
        description="Write the paste matte (the feathered face region per frame) for compositing")
    emotion_source: EnumProperty(  # type: ignore[valid-type]
        name="Emotions From", items=jobspec.EMOTION_SOURCES, default="auto", options=set(),
        description="Where the keyframed emotions' expressions come from")
    max_faces: IntProperty(  # type: ignore[valid-type]
        name="Faces", description="Faces Prepare Shot looks for (2 or more: each gets an id; pick one to dub)",
        default=1, min=1, max=8, options=set())
    face_id: IntProperty(  # type: ignore[valid-type]
        name="Face", description="The face to dub in a shot with several (-1: the only face); Pick Face sets it",
        default=-1, min=-1, max=63, options=set())
    footage_emotion: EnumProperty(  # type: ignore[valid-type]
        name="Footage Emotion", items=[("neutral", "Neutral", "The actor speaks without a particular emotion"),
                                       *EMOTION_ITEMS], default="neutral", options=set(),
        description="The emotion the actor plays in the footage Import Actor Footage brings in")
    footage_intensity: FloatProperty(  # type: ignore[valid-type]
        name="Intensity", min=0.05, max=1.0, default=1.0, subtype="FACTOR", options=set(),
        description="How strongly the actor plays that emotion in the footage")
    footage_sentence: StringProperty(  # type: ignore[valid-type]
        name="Sentence", default="", options=set(),
        description="What the footage says (an id or the words; optional). Takes of one sentence in different "
                    "emotions teach the jean renderer how the actor's emotions look apart from speech")
    a2e_iterations: IntProperty(  # type: ignore[valid-type]
        name="Expression Iterations", default=0, min=0, options=set(),
        description="Training steps of the audio-to-expression model (0: the engine's default)")
    renderer_iterations: IntProperty(  # type: ignore[valid-type]
        name="Renderer Iterations", default=0, min=0, options=set(),
        description="Training steps of the renderer (0: the engine's default)")
    track_iterations: FloatProperty(  # type: ignore[valid-type]
        name="Tracking Effort", default=1.0, min=0.05, max=4.0, options=set(),
        description="Tracking effort for footage not tracked yet (1: the default; less is faster and coarser)")
    consent_by: StringProperty(  # type: ignore[valid-type]
        name="Consented By", default="", options=set(),
        description="The person who consented to be dubbed (or their legal representative)")
    consent_scope: StringProperty(  # type: ignore[valid-type]
        name="Scope", default="", options=set(), description="What they consented to: productions, languages, uses")
    consent_document: StringProperty(  # type: ignore[valid-type]
        name="Signed Document", default="", options=set(),
        description="Where the signed consent is: a file, an archive reference or an e-signature id")
    batch_languages: StringProperty(  # type: ignore[valid-type]
        name="Dub Languages", default="", options=set(),
        description="For Dub All Selected Strips: each language and the channel of its sound strips, e.g. de:5, fr:6")

    angry: _emotion_slider("angry")  # type: ignore[valid-type]
    contempt: _emotion_slider("contempt")  # type: ignore[valid-type]
    disgusted: _emotion_slider("disgusted")  # type: ignore[valid-type]
    fear: _emotion_slider("fear")  # type: ignore[valid-type]
    happy: _emotion_slider("happy")  # type: ignore[valid-type]
    sad: _emotion_slider("sad")  # type: ignore[valid-type]
    surprised: _emotion_slider("surprised")  # type: ignore[valid-type]

    preset_emotion: EnumProperty(  # type: ignore[valid-type]
        name="Emotion", items=EMOTION_ITEMS, default="happy", options=set(),
        description="The emotion the preset buttons keyframe")
    preset_peak: FloatProperty(  # type: ignore[valid-type]
        name="Peak", min=0.0, max=1.0, default=1.0, subtype="FACTOR", options=set(),
        description="Highest intensity of the preset")

    job_id: _status("Job", "The last job started from this scene")  # type: ignore[valid-type]
    job_running: BoolProperty(name="Running", default=False, options=set())  # type: ignore[valid-type]
    progress: FloatProperty(  # type: ignore[valid-type]
        name="Progress", min=0.0, max=1.0, default=0.0, subtype="FACTOR", options=set())
    status_text: _status("Status", "What the engine is doing")  # type: ignore[valid-type]
    last_error: _status("Error", "The last job's error")  # type: ignore[valid-type]
    last_hint: _status("Hint", "What to do about the last error")  # type: ignore[valid-type]
    last_report: _status("Report", "The last job's report file")  # type: ignore[valid-type]
    last_output: _status("Output", "The last rendered video")  # type: ignore[valid-type]


classes = (EMODUB_AddonPreferences, EMODUB_SceneSettings)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.emodub = PointerProperty(type=EMODUB_SceneSettings)


def unregister() -> None:
    del bpy.types.Scene.emodub
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
