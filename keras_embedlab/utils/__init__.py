"""Helpers with no home of their own: argument checks shared by the layers
and `vectors/` (no Keras import)."""
