"""The "Dubbing" tab in the sequencer's sidebar (N panel)."""

from __future__ import annotations

import bpy

from .emotions import EMOTIONS
from .operators import JOBS


class _DubbingPanel:
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Dubbing"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and hasattr(context.scene, "emodub")


class EMODUB_PT_dubbing(_DubbingPanel, bpy.types.Panel):
    bl_idname = "EMODUB_PT_dubbing"
    bl_label = "Emotion Dubbing"

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.emodub
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        col = layout.column(align=True)
        col.prop(settings, "actor", icon="USER")
        col.prop(settings, "shot", icon="SEQUENCE")
        col.prop(settings, "renderer")
        row = layout.row(align=True)
        row.prop(settings, "source_strip", icon="FILE_MOVIE")
        row.operator("emodub.pick_active_strip", text="", icon="EYEDROPPER").target = "SOURCE"
        row = layout.row(align=True)
        row.prop(settings, "sound_strip", icon="SOUND")
        row.operator("emodub.pick_active_strip", text="", icon="EYEDROPPER").target = "SOUND"
        layout.prop(settings, "audio_file")
        layout.prop(settings, "output_channel")
        col = layout.column(align=True)
        col.prop(settings, "delivery_format")
        col.prop(settings, "matte")
        layout.prop(settings, "emotion_source")
        row = layout.row(align=True)
        row.prop(settings, "max_faces")
        row.prop(settings, "face_id")
        row.operator("emodub.pick_face", text="", icon="EYEDROPPER")
        col = layout.column(align=True)
        col.use_property_split = False
        footage = layout.box()
        footage.label(text="Actor Footage", icon="USER")
        row = footage.row(align=True)
        row.prop(settings, "footage_emotion", text="")
        row.prop(settings, "footage_intensity")
        footage.prop(settings, "footage_sentence")
        footage.operator("emodub.import_footage", icon="IMPORT")
        consent = footage.column(align=True)
        consent.prop(settings, "consent_by")
        consent.prop(settings, "consent_scope")
        consent.prop(settings, "consent_document")
        footage.operator("emodub.record_consent", icon="CHECKMARK")
        row = col.row(align=True)
        row.operator("emodub.prepare_shot", icon="TRACKING")
        row.operator("emodub.train_actor", icon="MOD_ARMATURE")
        row = col.row(align=True)
        row.operator("emodub.preview_frame", icon="RESTRICT_VIEW_OFF")
        row.operator("emodub.render_dub", icon="RENDER_ANIMATION")
        box = layout.box()
        box.label(text="Batch", icon="SEQ_STRIP_DUPLICATE")
        box.prop(settings, "batch_languages")
        box.operator("emodub.dub_selected", icon="RENDER_ANIMATION")
        draw_status(layout, settings)


def draw_status(layout: bpy.types.UILayout, settings: bpy.types.PropertyGroup) -> None:
    """Progress bar and Cancel while a job runs; the last status, error, hint and report link."""
    box = layout.box()
    if settings.job_running:
        box.progress(factor=settings.progress, type="BAR", text=settings.status_text or "running...")
        box.operator("emodub.cancel_job", icon="CANCEL")
    elif settings.status_text:
        box.label(text=settings.status_text, icon="INFO")
    if settings.last_error:
        col = box.column(align=True)
        col.alert = True
        col.label(text=settings.last_error, icon="ERROR")
        if settings.last_hint:
            col.label(text=f"Hint: {settings.last_hint}")
    if settings.last_report:
        box.operator("emodub.open_report", icon="TEXT").filepath = settings.last_report


class EMODUB_PT_emotions(_DubbingPanel, bpy.types.Panel):
    bl_idname = "EMODUB_PT_emotions"
    bl_label = "Emotions"
    bl_parent_id = "EMODUB_PT_dubbing"

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.emodub
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = True  # the keyframe buttons beside each slider
        col = layout.column(align=True)
        for name in EMOTIONS:
            col.prop(settings, name, slider=True)
        box = layout.box()
        box.label(text="Preset over the selected strip")
        box.prop(settings, "preset_emotion")
        box.prop(settings, "preset_peak", slider=True)
        row = box.row(align=True)
        for preset, text in (("RAMP_IN", "Ramp In"), ("PULSE", "Pulse"), ("RAMP_OUT", "Ramp Out")):
            op = row.operator("emodub.emotion_preset", text=text)
            op.preset, op.emotion, op.peak = preset, settings.preset_emotion, settings.preset_peak


class EMODUB_PT_training(_DubbingPanel, bpy.types.Panel):
    bl_idname = "EMODUB_PT_training"
    bl_label = "Training"
    bl_parent_id = "EMODUB_PT_dubbing"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.emodub
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        col = layout.column(align=True)
        col.prop(settings, "a2e_iterations")
        col.prop(settings, "renderer_iterations")
        col.prop(settings, "track_iterations")
        layout.operator("emodub.train_actor", icon="MOD_ARMATURE")


class EMODUB_PT_jobs(_DubbingPanel, bpy.types.Panel):
    bl_idname = "EMODUB_PT_jobs"
    bl_label = "Engine Jobs"
    bl_parent_id = "EMODUB_PT_dubbing"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        jobs = JOBS.jobs()
        if not jobs:
            layout.label(text="No jobs yet")
            return
        for job in reversed(jobs):
            state = job.state
            box = layout.box()
            row = box.row()
            row.label(text=job.label, icon="PLAY" if not state.finished else "CHECKMARK")
            if not state.finished:
                row.operator("emodub.cancel_job", text="", icon="CANCEL").job_id = job.id
                box.progress(factor=state.fraction, type="BAR", text=state.text)
            else:
                box.label(text=state.text)


classes = (EMODUB_PT_dubbing, EMODUB_PT_emotions, EMODUB_PT_training, EMODUB_PT_jobs)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
