"""Settings of the FLAME model files (the ``flame`` config section)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import option

__all__ = ["FlameFilesConfig"]


@dataclass(frozen=True)
class FlameFilesConfig:
    """The FLAME model files; all empty: the synthetic head model built into resources/."""

    model: str = option(
        "", "A FLAME 2020/2023 generic_model.pkl (or .npz); empty: the synthetic head model."
    )
    landmark_embedding: str = option(
        "",
        "Landmark embedding (68 points): .npz (lmk_face_idx, lmk_b_coords) or "
        "landmark_embedding.npy; needed with model.",
    )
    masks: str = option("", "Region masks (FLAME_masks.pkl); needed with model.")

    SCHEMA_RULES: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"model": {"minLength": 1}}, "required": ["model"]},
        "then": {
            "properties": {"landmark_embedding": {"minLength": 1}, "masks": {"minLength": 1}},
            "required": ["landmark_embedding", "masks"],
        },
    }

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        if not self.model:
            return []
        return [
            (name, "must be set when model is set")
            for name in ("landmark_embedding", "masks")
            if not getattr(self, name)
        ]
