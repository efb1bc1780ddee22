"""Portable multi-view stereo in torch (the ``torch`` depth backend)."""
