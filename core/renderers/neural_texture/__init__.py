"""The audio-conditioned neural-texture renderer (READ Avatars §3.3): a SIREN neural texture on the tracked
mesh's UVs, decoded by a UNet over the plate's background (``--renderer neural_texture``)."""
