"""NeRF-AD: a NeRF conditioned on an identity face and an audio face split by action-unit attention."""
