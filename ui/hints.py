"""What the app tells its user to do about an engine error, in its own menus and buttons.

The engine's hints are written for its command line (``emodub shot prepare ...``, ``--face 1``); the app maps error
codes (and the job kind where a code means different things) to what to click here. Qt-free;
:func:`core.jobs.protocol.hint_in_own_words` applies the table.
"""

from __future__ import annotations

WORDS: dict[str, str] = {
    "no_consent": "record the actor's consent (Jobs > Record actor consent…), then render again",
    "missing_input@train.actor": "import the actor's footage first (File > Import footage…, as an actor clip)",
    "missing_input@dub": "import the shot (File > Import footage…, as a shot) and train the actor (Jobs > Train…) "
                         "first",
    "missing_input@preview": "import the shot (File > Import footage…, as a shot) and train the actor "
                             "(Jobs > Train…) first",
    "missing_input": "import the footage and train the actor first (File > Import footage…, Jobs > Train…)",
    "not_found@track": "import the actor's footage first (File > Import footage…)",
    "not_found": "import the footage first (File > Import footage…)",
    "not_tracked": "import the shot again (File > Import footage…, as a shot): it was not tracked",
    "no_data": "import the actor's footage first (File > Import footage…); Jobs > Train… tracks it",
    "no_model": "train the actor first (Jobs > Train…)",
    "incompatible_checkpoint": "train the actor again with this emodub (Jobs > Train…)",
    "face_choice": "the shot shows several faces: choose one with Pick on a frame… in the Render dub dialog",
    "no_face": "the footage shows no face the engine can follow: import another take",
    "no_workspace": "open or create a workspace (File > Open workspace… / New workspace…)",
    "bad_workspace": "open a valid workspace (File > Open workspace…) or create one (File > New workspace…)",
    "busy": "wait for the running job to finish, or cancel it in the Jobs panel",
    "exists": "choose another name in the dialog, or open the existing one",
    "bad_audio": "choose another dub audio file (Dub audio…)",
    "silent_audio": "the dub audio is silent: choose another file (Dub audio…)",
    "no_audio_stream": "the movie has no sound: import a take with the actor's voice",
    "not_media": "choose a movie file the app can play",
    "too_short": "import a longer take (a few seconds at least)",
    "no_ffmpeg": "run Jobs > Run engine self-test, and check the engine's Python in File > Settings…",
    "missing_dependency": "check the engine's Python in File > Settings… (the Python the engine is installed in)",
    "unknown_kind": "update emodub (the engine) to the app's release",
    "bad_spec": "update the app and the engine together",
    "bad_params": "check the values in the dialog (the message says which one)",
    "*": "the job's log in the Jobs panel has the details",
}
