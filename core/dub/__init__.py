"""Dubbing: new audio + emotion curves -> the shot re-rendered with matching lips and emotion."""
