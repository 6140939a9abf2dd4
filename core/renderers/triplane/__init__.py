"""The tri-plane hash NeRF with blink embedding and the dynamic landmark transformer (Zhang et al., "Audio-Driven
Talking Face Generation with Blink Embedding and Hash Grid Landmarks Encoding"; ``--renderer triplane``): the
fast NeRF of the family."""
