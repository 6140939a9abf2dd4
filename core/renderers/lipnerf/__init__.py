"""LipNeRF (Chatziagapi et al.): a dynamic NeRF conditioned on the tracked 3DMM expression and a learned
latent code per training frame (``--renderer lipnerf``)."""
