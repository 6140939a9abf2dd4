"""Whether each operator can run now, and if not, the reason Blender shows on its greyed-out button.

Pure Python (no ``bpy``): the operators gather :class:`SceneFacts` from the context and their ``poll()`` asks the
function here, so the reasons are unit-tested without Blender. A poll looks only at what the scene shows (strips,
names, a running job); what needs the engine or the workspace (is the shot prepared? is the engine there?) is
checked when the button is pressed, with a message and a hint.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SceneFacts:
    """What the polls look at.

    Attributes:
        has_sequencer: the scene has a sequence editor.
        source_type: the type of the source strip (the chosen one, else the active strip); ``None`` when there is
            none, ``"MISSING"`` when the chosen name matches no strip.
        active_type: the active strip's type (``None``: no active strip).
        actor: the chosen actor's name.
        has_dub_audio: a dub sound strip or audio file is chosen, or sound strips are selected.
        selected_movies: selected movie strips.
        languages: the Dub Languages text.
        jobs_running: engine jobs of this scene that have not finished.
        last_report: the last job's report path.
        consent_filled: the Consent fields (consented by, scope, signed document) are all filled in.
        workspace_set: a workspace folder is set in the preferences.
    """

    has_sequencer: bool = True
    source_type: str | None = None
    active_type: str | None = None
    actor: str = ""
    has_dub_audio: bool = False
    selected_movies: int = 0
    languages: str = ""
    jobs_running: int = 0
    last_report: str = ""
    consent_filled: bool = False
    workspace_set: bool = False


def _source(facts: SceneFacts) -> str | None:
    if not facts.has_sequencer:
        return "Add the movie strip to dub to the sequencer"
    if facts.source_type == "MISSING":
        return "The chosen source strip no longer exists: pick it again"
    if facts.source_type is None:
        return "Choose the source movie strip (or make it the active strip)"
    if facts.source_type != "MOVIE":
        return "The source strip must be a movie strip"
    return None


def prepare_shot(facts: SceneFacts) -> str | None:
    return _source(facts)


def train_actor(facts: SceneFacts) -> str | None:
    return None if facts.actor.strip() else "Choose the actor to train"


def render_dub(facts: SceneFacts) -> str | None:
    if not facts.actor.strip():
        return "Choose the trained actor"
    reason = _source(facts)
    if reason:
        return reason
    return None if facts.has_dub_audio else "Choose the dub sound strip or audio file (or select sound strips)"


def pick_face(facts: SceneFacts) -> str | None:
    return _source(facts)


def dub_selected(facts: SceneFacts) -> str | None:
    if not facts.has_sequencer or not facts.selected_movies:
        return "Select the movie strips to dub"
    if not facts.actor.strip():
        return "Choose the trained actor"
    return None if facts.languages.strip() else "Set the dub languages first (e.g. de:5, fr:6)"


def import_footage(facts: SceneFacts) -> str | None:
    if not facts.has_sequencer or not facts.selected_movies:
        return "Select the movie strips of the actor's footage"
    return None if facts.actor.strip() else "Type the actor's name in Actor"


def record_consent(facts: SceneFacts) -> str | None:
    if not facts.actor.strip():
        return "Type the actor's name in Actor"
    return None if facts.consent_filled else "Fill in Consented By, Scope and Signed Document"


def create_workspace(facts: SceneFacts) -> str | None:
    return None if facts.workspace_set else "Type the folder of the new workspace in Workspace"


def cancel_job(facts: SceneFacts) -> str | None:
    return None if facts.jobs_running else "No emodub job is running"


def emotion_preset(facts: SceneFacts) -> str | None:
    return None if facts.active_type is not None else "Select the strip whose range the preset covers"


def pick_active_strip(facts: SceneFacts) -> str | None:
    return None if facts.active_type in ("MOVIE", "SOUND") else "Make the movie or sound strip to use the active strip"


def open_report(facts: SceneFacts) -> str | None:
    return None if facts.last_report else "No report yet: render a dub first"
