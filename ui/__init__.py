"""emodub studio: the PySide6 desktop app. Qt lives here only; the engine runs as a subprocess."""
