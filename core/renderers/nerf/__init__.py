"""The NeRF core every NeRF variant stands on (pure PyTorch; no CUDA extension, no NeRF package).

* :mod:`.rays` — rays from the tracked camera and head pose into the canonical head space; the head's box;
* :mod:`.sampling` — stratified samples, the occupancy grid (from the tracked meshes), hierarchical resampling;
* :mod:`.volume` — volume rendering with transmittance (and a slow reference);
* :mod:`.encodings` — frequency encoding, dense multi-resolution tri-planes, a vectorised hash grid, tri-plane hashing;
* :mod:`.fields` — conditioned MLP fields, the attention-gated field;
* :mod:`.composite` — the plate without the old head (push-pull fill) and the chin-neck gap measure;
* :mod:`.head` — :class:`~.head.HeadNeRF`, the shared renderer: masks from the tracked mesh, ray batches for
  training, chunked whole-frame rendering with bounded memory, compositing over the plate.
"""
