"""Baselines a user would pick instead of FaceTalk: a FaceFormer-style regression decoder."""

from .faceformer import FaceFormer, FaceFormerConfig, FaceFormerLayer, to_vertices

__all__ = ["FaceFormer", "FaceFormerConfig", "FaceFormerLayer", "to_vertices"]
