"""Where a sequence's products are: the sequence folder or one of its overlays.

A sequence (talkhead layout, :mod:`talkhead.capture.layout`) may come with *overlays*: further
sequence folders in the same layout holding products it lacks (mattes, 2D landmarks, facial
segmentation, audio made by the preprocess stage). A product is taken from the sequence folder
when it holds it, else from the first overlay holding it; a product named in ``replace`` is
taken from the overlays first (e.g. MediaPipe landmarks replacing a capture's own), then from
the sequence. The reader (:mod:`talkhead.capture.sequence`) and the validator
(:mod:`talkhead.capture.validate`) look products up through :func:`resolve_products`, so they
agree on every file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from . import layout
from .readers import find_audio

__all__ = ["PRODUCTS", "check_product_names", "find_products", "has_product", "resolve_products"]

#: Products a sequence folder or an overlay may hold.
PRODUCTS = ("images", "alpha", "segmentation", "depth", "landmarks", "audio", "background")


def check_product_names(names: Iterable[str], what: str = "product") -> tuple[str, ...]:
    """``names`` as a tuple, each one of :data:`PRODUCTS`.

    Raises:
        ValueError: an unknown name (a programming error).
    """
    out = tuple(names)
    for name in out:
        if name not in PRODUCTS:
            raise ValueError(f"unknown {what} {name!r}; expected one of {PRODUCTS}")
    return out


def has_product(folder: Path, name: str, t: int) -> bool:
    """Whether sequence folder ``folder`` holds product ``name`` (judged on frame id ``t``).

    Raises:
        ValueError: ``name`` is not one of :data:`PRODUCTS`.
    """
    if name == "images":
        return layout.images_dir(folder, t).is_dir()
    if name in layout.MAP_FILES:
        return layout.map_dir(folder, t, name).is_dir()
    if name == "landmarks":
        lmk_dir = layout.landmarks_dir(folder)
        return lmk_dir.is_dir() and any(lmk_dir.glob("cam_*.npy"))
    if name == "audio":
        return find_audio(folder) is not None
    if name == "background":
        bg = layout.background_dir(folder)
        return bg.is_dir() and any(bg.glob("cam_*"))
    raise ValueError(f"unknown product {name!r}; expected one of {PRODUCTS}")


def find_products(folders: Sequence[Path], t: int) -> dict[str, Path]:
    """``{product: first folder of folders holding it}`` for each product of :data:`PRODUCTS`
    (judged on frame id ``t``); products no folder holds are left out."""
    found: dict[str, Path] = {}
    for name in PRODUCTS:
        for folder in folders:
            if has_product(folder, name, t):
                found[name] = folder
                break
    return found


def resolve_products(
    own: Mapping[str, Path],
    overlays: Sequence[Path],
    t: int,
    replace: Sequence[str] = (),
) -> dict[str, Path]:
    """``{product: folder}``: the sequence's own products (``own``), then the overlays' for
    products it lacks; products in ``replace`` come from the first overlay holding them, and
    from the sequence only when no overlay does.

    Args:
        own: the products the sequence holds itself (:func:`find_products` of its folder, or
            what a layout read in place holds).
        overlays: overlay sequence folders, searched in order.
        t: frame id the overlays are judged on.
        replace: products taken from the overlays first.

    Raises:
        ValueError: a name in ``replace`` is not one of :data:`PRODUCTS`.
    """
    replace = check_product_names(replace, "product to replace")
    found = dict(own)
    for name, folder in find_products(overlays, t).items():
        if name in replace or name not in found:
            found[name] = folder
    return {name: found[name] for name in PRODUCTS if name in found}
