"""The audio-conditioned neural-texture renderer (READ Avatars §3.3)."""
