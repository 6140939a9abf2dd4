"""Renderers: one contract, many variants (READ's neural texture, the NeRF family).

* :mod:`.spec` / :mod:`.catalog` — which variants exist, their options and presets, an actor's trained
  ones (standard library only: ``emodub renderers`` and the front-ends read these without torch);
* :mod:`.base` — :class:`~.base.RendererBatch` in, :class:`~.base.RenderOutput` out, :class:`~.base.Renderer`;
* :mod:`.registry` — :func:`~.registry.register_renderer`, :func:`~.registry.build`, :func:`~.registry.load`
  and the checkpoint format;
* :mod:`.data`, :mod:`.train`, :mod:`.evaluate`, :mod:`.losses`, :mod:`.jobs` — shared by every variant;
* :mod:`.nerf` — the NeRF core (rays, sampling, encodings, volume rendering) the NeRF variants stand on;
* one folder per variant: :mod:`.neural_texture`, :mod:`.lipnerf`, :mod:`.triplane`.

Adding a renderer means adding one folder with ``variant.py``, ``config.py`` and ``model.py``.
"""
