"""What the add-on tells its user to do about an engine error, in its own buttons and panels.

The engine's hints are written for its command line (``emodub shot prepare ...``, ``--face 1``); the add-on maps
error codes (and the job kind where a code means different things) to what to press in Blender. Pure Python (no
``bpy``); :func:`.protocol.hint_in_own_words` applies the table.
"""

from __future__ import annotations

WORDS: dict[str, str] = {
    "no_consent": "fill in Consent in the Actor Footage box and press Record Actor Consent, then render again",
    "missing_input@train.actor": "select the actor's movie strips and press Import Actor Footage first",
    "missing_input@dub": "press Prepare Shot for the source strip and Train Actor first",
    "missing_input@preview": "press Prepare Shot for the source strip and Train Actor first",
    "missing_input": "press Prepare Shot and Train Actor first",
    "not_found@track": "select the actor's movie strips and press Import Actor Footage first",
    "not_found": "press Import Actor Footage (or Prepare Shot) first",
    "not_tracked": "press Prepare Shot for the source strip first",
    "no_data": "select the actor's movie strips and press Import Actor Footage, then Train Actor (it tracks them)",
    "no_model": "press Train Actor first",
    "incompatible_checkpoint": "press Train Actor to train the actor again with this emodub",
    "face_choice": "the shot shows several faces: press Pick Face and click the face to dub (or set Face ID)",
    "no_face": "the strip shows no face the engine can follow: choose another strip",
    "no_workspace": "set the workspace folder in Preferences > Add-ons > emodub",
    "bad_workspace": "set a valid workspace folder in Preferences > Add-ons > emodub",
    "busy": "wait for the running job to finish, or cancel it in the Emotion Dubbing panel",
    "exists": "change the actor name or the strip, or remove the old one from the workspace",
    "bad_audio": "choose another dub sound strip or audio file",
    "silent_audio": "the dub audio is silent: choose another sound strip or audio file",
    "no_audio_stream": "the movie has no sound: choose a strip with the actor's voice",
    "not_media": "choose a movie strip whose file Blender can play",
    "too_short": "choose a longer strip (a few seconds at least)",
    "no_ffmpeg": "press Check Engine in Preferences > Add-ons > emodub",
    "missing_dependency": "press Check Engine in Preferences > Add-ons > emodub",
    "unknown_kind": "update emodub (the engine) to the add-on's release; Check Engine says which it is",
    "bad_spec": "update the add-on and the engine together; Check Engine says which versions they are",
    "bad_params": "check the Emotion Dubbing panel's settings (the message says which one)",
    "*": "open the engine log (the console prints its path) for the details",
}
