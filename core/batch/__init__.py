"""Batches of dubs: a plan (shots x audio tracks x emotion passes x renderers) run locally or on a Ray cluster."""
