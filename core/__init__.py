"""emodub engine: emotion-controllable visual dubbing. Plain Python + PyTorch; never imports bpy or Qt."""

__version__ = "0.1.0"
