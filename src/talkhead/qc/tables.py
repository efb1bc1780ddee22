"""The FaceTalk supplement's Tables 1-3 as report pages: our figures, read from the evaluation
files, beside the supplement's for reference.

- Table 1 (methods x metrics): one row per method of the supplement's Table 1 that talkhead
  trains (FaceFormer-style baseline, MeshTalk, Ours (Flame), Ours (w/o diffusion), Ours (full)),
  from ``results/models/<model>/evaluation.json``, and a row of the ground-truth fits (the
  floor a model is compared to); the supplement's LSE-D, FIQA and VQA beside them.
- Table 2 (expression fitting with and without the temporal loss): per sequence and their mean,
  the FLAME fit (``results/flame/<s>/<q>/evaluation.json``: ``jitter_*`` and, for the fit without
  temporal smoothing, ``unsmoothed_jitter_*``) and the NPHM fit
  (``results/nphm/<s>/<q>/evaluation.json``: top-level figures, and those without the temporal
  Huber loss in a ``without_temporal`` sub-dict or, in older files, prefixed ``unsmoothed_``);
  the supplement's two rows beside them.
- Table 3 (the five timestep injections): lip sync and diversity of the models
  ``facetalk_<variant>``, the supplement's figures beside them.

Each page is one self-contained HTML file (inline CSS, no scripts, no external resource) with a
caption saying what differs from the paper, and the definition and unit of every figure (from
the evaluation files' ``definitions``). A method, sequence or figure that is missing is shown
as missing, never as 0. The reference figures are those of the FaceTalk supplement
(``facetalk_supplement.txt``, section A Tables 1-3, section C for the metrics).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..io import PathLike, atomic_path

__all__ = [
    "INJECTIONS",
    "SUPPLEMENT_TABLE1",
    "SUPPLEMENT_TABLE2",
    "SUPPLEMENT_TABLE3",
    "TABLE1_METHODS",
    "TABLE1_METRICS",
    "STATIC_FRACTION",
    "TABLE1_READING",
    "TABLE2_FIGURES",
    "fmt_value",
    "motion_ratio",
    "ordering_note",
    "read_evaluation",
    "static_note",
    "table1_html",
    "table2_html",
    "table2_rows",
    "table3_html",
    "write_page",
]

SOURCE = "FaceTalk supplement"

SUPPLEMENT_TABLE1: dict[str, dict[str, float]] = {
    "FaceFormer": {"lse_d": 12.1391, "fiqa": 38.64, "vqa": 0.4206},
    "CodeTalker": {"lse_d": 11.8442, "fiqa": 39.44, "vqa": 0.4218},
    "Imitator": {"lse_d": 11.7402, "fiqa": 37.83, "vqa": 0.4492},
    "FaceDiffuser": {"lse_d": 12.7644, "fiqa": 37.65, "vqa": 0.3826},
    "Ours (Flame)": {"lse_d": 11.6839, "fiqa": 38.53, "vqa": 0.4868},
    "Ours (w/o diffusion)": {"lse_d": 11.3217, "fiqa": 42.81, "vqa": 0.5469},
    "Ours (Full)": {"lse_d": 11.2737, "fiqa": 45.75, "vqa": 0.6145},
}
"""FaceTalk supplement, Table 1 (methods trained on their dataset; the baselines and Ours (Flame)
on FLAME fits, the last two on NPHM fits): LSE-D (lower is better), FIQA and VQA (higher)."""

SUPPLEMENT_TABLE2: dict[str, dict[str, float]] = {
    "w/o temporal loss": {"jitter_mae": 0.01422, "jitter_rmse": 0.01978, "lse_d": 10.9221},
    "w/ temporal loss": {"jitter_mae": 0.00248, "jitter_rmse": 0.00623, "lse_d": 10.5478},
}
"""FaceTalk supplement, Table 2 (NPHM expression fitting of real captures): MAE and RMSE between
adjacent frames' expression codes, LSE-D."""

SUPPLEMENT_TABLE3: dict[str, dict[str, float]] = {
    "input": {"lse_d": 12.029, "diversity": 0.006},
    "scale_shift": {"lse_d": 11.9575, "diversity": 0.204},
    "squeeze_excite": {"lse_d": 11.7586, "diversity": 0.029},
    "dot_product": {"lse_d": 12.83, "diversity": 2.009e-7},
    "film": {"lse_d": 11.2737, "diversity": 0.340},
}
"""FaceTalk supplement, Table 3 (timestep injection ablation, NPHM space): LSE-D and diversity
(eq. 2)."""

INJECTIONS: tuple[tuple[str, str], ...] = (
    ("input", "Input"),
    ("scale_shift", "Scale-Shift"),
    ("squeeze_excite", "SqueezeExcite"),
    ("dot_product", "Dot Prod. Attention"),
    ("film", "FiLM"),
)
"""Table 3's rows: (variant as in ``models.facetalk.variant``, the supplement's row name)."""

TABLE1_METHODS: tuple[tuple[str, str | None], ...] = (
    ("FaceFormer-style baseline", "FaceFormer"),
    ("MeshTalk", None),
    ("Ours (Flame)", "Ours (Flame)"),
    ("Ours (w/o diffusion)", "Ours (w/o diffusion)"),
    ("Ours (full)", "Ours (Full)"),
)
"""Table 1's rows: (the ``label`` of an evaluation.json, the supplement's row or None: MeshTalk
is not in it, "incompatible with the FLAME topology" (supplement, section A))."""

TABLE1_METRICS: tuple[tuple[str, str], ...] = (
    ("lve_mm", "LVE (mm)"),
    ("lve_squared_mm2", "LVE squared (mm²)"),
    ("lip_surface_error_mm", "lip surface error (mm)"),
    ("fdd_mm", "FDD (mm)"),
    ("diversity", "diversity (code units)"),
    ("lse_d", "LSE-D"),
    ("lse_c", "LSE-C"),
    ("av_offset_frames", "AV offset (frames)"),
    ("av_correlation", "AV correlation"),
    ("jitter_mae", "jitter MAE"),
    ("jitter_rmse", "jitter RMSE"),
)
"""Table 1's columns of our figures: (key in ``metrics``, header)."""

TABLE1_READING: dict[str, tuple[str, str]] = {
    "lve_mm": ("↓", "lower is better"),
    "lve_squared_mm2": ("↓", "lower is better"),
    "lip_surface_error_mm": (
        "↓",
        "lower is better; models of NPHM codes only (their stated equivalent of the LVE), the "
        "ground-truth NPHM fits' row is the floor",
    ),
    "fdd_mm": (
        "→0",
        "signed (truth minus prediction): closer to 0 is better; positive: the prediction's "
        "upper face moves too little (less than the truth's), negative: too much",
    ),
    "diversity": ("", "higher: the samples drawn for the same audio differ more"),
    "lse_d": ("↓", "lower is better"),
    "lse_c": ("↑", "higher is better"),
    "av_offset_frames": ("", "closer to the ground-truth fits' row (0: in step) is better"),
    "av_correlation": ("↑", "higher is better; the ground-truth fits' row is the reference"),
    "jitter_mae": (
        "",
        "closer to the ground-truth fits' row is better: far below it, a nearly static "
        "output; far above, a jittery one",
    ),
    "jitter_rmse": ("", "closer to the ground-truth fits' row is better"),
}
"""How to read Table 1's columns: (the mark shown in the header, the sentence added to the
column's definition in its tooltip and the definitions list)."""

STATIC_FRACTION = 0.2
"""A model is flagged nearly static when its prediction's frame-to-frame motion (``metrics``
``jitter_mae``) is below this fraction of the ground-truth fits' (``ground_truth``
``jitter_mae`` of the same evaluation file: the same test audio, the same space)."""

_GROUND_TRUTH_ROW = "ground-truth fits (floor)"
_GROUND_TRUTH_NPHM_ROW = "ground-truth NPHM fits (floor)"

_FALLBACK_DEFINITIONS = {
    "jitter_mae": "mean absolute change of the expression codes between adjacent frames "
    "(code units; FaceTalk supplement, Table 2)",
    "jitter_rmse": "root-mean-square change of the expression codes between adjacent frames "
    "(code units; FaceTalk supplement, Table 2)",
    "chamfer_l1_mm": "chamfer-L1 of the fitted meshes against the true ones over the face "
    "region (mm)",
    "face_vertex_error_mm": "mean distance of the fitted FLAME face vertices from the true ones "
    "(mm)",
    "fscore_5mm": "F-score of the fitted surface against the true one at 5 mm (0-1)",
}
"""Definitions of Table 2's figures (the fitting stages' evaluation files carry none)."""

_CSS = (
    "body{font-family:sans-serif;font-size:13px;margin:12px;color:#222}"
    "table{border-collapse:collapse;margin-bottom:10px}"
    "th,td{border:1px solid #bbb;padding:3px 7px;text-align:right}"
    "th.row,td.row{text-align:left}"
    "thead th{background:#eee}"
    "td.ref,th.ref{background:#f4f1e8;color:#555}"
    "td.missing{color:#b00;font-style:italic}"
    "td.notmeasured{color:#888}"
    "td.na{color:#888;background:#f6f6f6}"
    "span.static{color:#b00;font-weight:normal;font-size:90%}"
    "tr.mean td,tr.mean th{font-weight:bold}"
    "caption{caption-side:top;text-align:left;max-width:70em;padding-bottom:6px}"
    "dl{max-width:70em}dt{font-weight:bold;margin-top:4px}dd{margin-left:1.5em}"
    "p.note{max-width:70em}"
)

MISSING = "missing"
NOT_MEASURED = "not measured"


# ---- reading --------------------------------------------------------------------------------


def read_evaluation(path: PathLike) -> dict[str, Any] | None:
    """An ``evaluation.json`` as a dict, or None when it is missing, unreadable or not a JSON
    object (the table then shows the method or sequence as missing)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _number(value: Any) -> float | None:
    """A finite float, or None (missing, null, text, NaN or infinite)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt_value(value: float | None, key: str = "") -> str:
    """A figure as text: integers for ``*_frames``, else 4 significant digits (small values in
    scientific notation)."""
    if value is None:
        return NOT_MEASURED
    if key.endswith("_frames"):
        return f"{value:.0f}"
    return f"{value:.4g}"


# ---- HTML pieces ----------------------------------------------------------------------------


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _cell(value: float | None, key: str, definition: str = "", missing: bool = False) -> str:
    """A ``<td>`` of our figure: the number, ``missing`` (no evaluation file) or ``not
    measured`` (the file has no finite figure)."""
    title = f" title='{_esc(definition)}'" if definition else ""
    if missing:
        return f"<td class='missing' data-col='{_esc(key)}'{title}>{MISSING}</td>"
    if value is None:
        return f"<td class='notmeasured' data-col='{_esc(key)}'{title}>{NOT_MEASURED}</td>"
    return f"<td data-col='{_esc(key)}'{title}>{_esc(fmt_value(value, key))}</td>"


def _ref_cell(value: float | None, key: str) -> str:
    """A ``<td>`` of the supplement's figure (``-`` where it has none)."""
    text = "-" if value is None else f"{value:g}"
    return f"<td class='ref' data-col='ref:{_esc(key)}'>{_esc(text)}</td>"


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style></head><body>\n"
        f"<h2>{_esc(title)}</h2>\n{body}\n</body></html>\n"
    )


def _definitions_list(definitions: Mapping[str, str], headers: Sequence[tuple[str, str]]) -> str:
    items = []
    for key, header in headers:
        text = definitions.get(key) or "no definition given in the evaluation files"
        items.append(
            f"<dt data-def='{_esc(key)}'>{_esc(header)} <code>{_esc(key)}</code></dt>"
            f"<dd>{_esc(text)}</dd>"
        )
    return "<h3>Definitions and units</h3>\n<dl>" + "".join(items) + "</dl>"


def _definitions(evaluations: Sequence[Mapping[str, Any] | None]) -> dict[str, str]:
    """Metric definitions of the evaluation files: per key the first file's that defines the
    figure, else the first file's (a ``null: ...`` one says why a model has no such figure)."""
    out: dict[str, str] = {}
    for data in evaluations:
        defs = data.get("definitions") if data else None
        if isinstance(defs, Mapping):
            for key, text in defs.items():
                if not isinstance(text, str):
                    continue
                if key not in out or (out[key].startswith("null") and not text.startswith("null")):
                    out[str(key)] = text
    return out


def write_page(page: str, path: PathLike) -> Path:
    """An HTML page written atomically (UTF-8); returns the path."""
    path = Path(path)
    with atomic_path(path, suffix=".html") as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return path


_DIFFERS = (
    "What differs from the paper: ours come from talkhead's synthetic studio (a procedural head "
    "in FLAME's format, synthesised speech), not NeRSemble's real captures; the models are "
    "demo-scale (a few hundred training steps on a handful of sequences, smaller decoders), and "
    "NPHM codes come from talkhead's own NPHM, trained on the synthetic head's family, so code "
    "values (jitter, diversity) live in another space than the paper's. Compare orderings and "
    "ratios, not values."
)


def _model_name(name: str, data: Mapping[str, Any]) -> str:
    """The model's name with its output space (``facetalk (nphm_expression)``)."""
    space = data.get("space")
    return f"{name} ({space})" if space else name


# ---- Table 1 --------------------------------------------------------------------------------


def motion_ratio(data: Mapping[str, Any] | None) -> float | None:
    """The prediction's frame-to-frame motion over the ground-truth fits' on the same audio:
    ``metrics.jitter_mae / ground_truth.jitter_mae`` of one evaluation.json (both in the
    model's space: mm of vertex coordinates or code units). None when either is missing or
    not finite, or the truth does not move."""
    if not data:
        return None
    metrics, truth = data.get("metrics"), data.get("ground_truth")
    if not isinstance(metrics, Mapping) or not isinstance(truth, Mapping):
        return None
    pred, true = _number(metrics.get("jitter_mae")), _number(truth.get("jitter_mae"))
    if pred is None or true is None or true <= 0:
        return None
    return pred / true


def _static_mark(data: Mapping[str, Any]) -> str:
    """The nearly-static mark of a Table-1 row (empty when the model moves enough)."""
    ratio = motion_ratio(data)
    if ratio is None or ratio >= STATIC_FRACTION:
        return ""
    pred = _number(data["metrics"]["jitter_mae"])
    true = _number(data["ground_truth"]["jitter_mae"])
    tip = (
        f"nearly static: the prediction's frame-to-frame motion (jitter MAE {pred:.3g}) is "
        f"{100 * ratio:.2g} % of the ground-truth fits' ({true:.3g}) on the same audio, below "
        f"{100 * STATIC_FRACTION:.0f} %; its lip and FDD figures describe an almost still face"
    )
    return f" <span class='static' data-flag='static' title='{_esc(tip)}'>⚠ nearly static</span>"


def table1_html(evaluations: Mapping[str, Mapping[str, Any] | None], title: str = "") -> str:
    """Table 1: methods x metrics, our figures beside the supplement's.

    Args:
        evaluations: ``{model name: evaluation.json as a dict, or None when missing}``. A
            model's row is the one of its ``label`` (:data:`TABLE1_METHODS`); evaluations
            with another label get rows of their own after them. Rows whose label no
            evaluation carries show every figure as ``missing``. The ground-truth rows take
            the ``ground_truth`` figures of the first evaluation of each ``space`` (the FLAME
            fits' for models of FLAME, the NPHM fits' for models of NPHM codes: jitter is in
            mm of vertex coordinates or in code units, as each row's definitions say).
        title: the page's heading (default: "Table 1").

    Returns:
        The page. Rows carry ``data-row`` (the label), cells ``data-col`` (the metric key,
        ``ref:<key>`` for the supplement's); missing cells have class ``missing``, figures
        that are null or absent class ``notmeasured``. Headers carry how to read the column
        (:data:`TABLE1_READING`: a mark, and a sentence in the tooltip and the definitions);
        a nearly static model (:func:`motion_ratio` below :data:`STATIC_FRACTION`) gets a
        ``⚠ nearly static`` mark (``data-flag='static'``, its figures in the tooltip) in its
        method cell, and the caption names the models flagged (:func:`static_note`).
    """
    by_label: dict[str, tuple[str, Mapping[str, Any]]] = {}
    extra: list[tuple[str, str, Mapping[str, Any]]] = []
    known = {label for label, _ in TABLE1_METHODS}
    for name, data in evaluations.items():
        if not data:
            continue
        label = str(data.get("label") or name)
        if label in known and label not in by_label:
            by_label[label] = (name, data)
        else:
            extra.append((label, name, data))
    present = [d for d in evaluations.values() if d]
    definitions = _definitions(present)
    read = {
        k: "; ".join(
            t
            for t in (
                definitions.get(k) or "no definition given in the evaluation files",
                TABLE1_READING.get(k, ("", ""))[1],
            )
            if t
        )
        for k, _ in TABLE1_METRICS
    }

    def header(key: str, text: str) -> str:
        mark = TABLE1_READING.get(key, ("", ""))[0]
        return text + (f" {mark}" if mark else "")

    head = (
        "<tr><th class='row' rowspan='2'>method</th><th class='row' rowspan='2'>model</th>"
        f"<th colspan='{len(TABLE1_METRICS)}'>ours (definitions below)</th>"
        f"<th class='ref' colspan='3'>{SOURCE}, Table 1</th></tr><tr>"
        + "".join(
            f"<th data-col='{_esc(k)}' title='{_esc(read[k])}'>{_esc(header(k, h))}</th>"
            for k, h in TABLE1_METRICS
        )
        + "<th class='ref'>LSE-D</th><th class='ref'>FIQA</th><th class='ref'>VQA</th></tr>"
    )

    def metric_cells(data: Mapping[str, Any] | None, source: str = "metrics") -> str:
        metrics = data.get(source) if data else None
        metrics = metrics if isinstance(metrics, Mapping) else {}
        own = _definitions([data]) if data else {}  # the row's own units (mm or code units)
        return "".join(
            _cell(
                _number(metrics.get(k)),
                k,
                own.get(k) or definitions.get(k, ""),
                missing=data is None,
            )
            for k, _ in TABLE1_METRICS
        )

    def ref_cells(paper: str | None) -> str:
        ref = SUPPLEMENT_TABLE1.get(paper or "", {})
        if not ref:
            return "<td class='ref' colspan='3' data-col='ref:none'>not in the paper's table</td>"
        return "".join(_ref_cell(ref.get(k), k) for k in ("lse_d", "fiqa", "vqa"))

    rows = []
    static: list[str] = []

    def method_cell(label: str, data: Mapping[str, Any] | None) -> str:
        mark = _static_mark(data) if data else ""
        if mark:
            static.append(label)
        return f"<th class='row'>{_esc(label)}{mark}</th>"

    for label, paper in TABLE1_METHODS:
        name, data = by_label.get(label, ("", None))
        model = _esc(_model_name(name, data)) if data else "no evaluation.json"
        rows.append(
            f"<tr data-row='{_esc(label)}'>{method_cell(label, data)}"
            f"<td class='row'>{model}</td>{metric_cells(data)}{ref_cells(paper)}</tr>"
        )
    for label, name, data in extra:
        rows.append(
            f"<tr data-row='{_esc(label)}'>{method_cell(label, data)}"
            f"<td class='row'>{_esc(_model_name(name, data))}</td>{metric_cells(data)}"
            f"{ref_cells(None)}</tr>"
        )
    truths: dict[str, Mapping[str, Any]] = {}
    for d in present:
        if isinstance(d.get("ground_truth"), Mapping):
            truths.setdefault(str(d.get("space") or "flame_vertices"), d)
    for space, truth in truths.items() or [("flame_vertices", None)]:
        label = _GROUND_TRUTH_ROW if space != "nphm_expression" else _GROUND_TRUTH_NPHM_ROW
        rows.append(
            f"<tr data-row='{label}'><th class='row'>{label}</th>"
            f"<td class='row'>dataset</td>{metric_cells(truth, 'ground_truth')}"
            "<td class='ref' colspan='3' data-col='ref:none'>-</td></tr>"
        )
    for paper in ("CodeTalker", "Imitator", "FaceDiffuser"):
        rows.append(
            f"<tr data-row='{paper}' class='refonly'><th class='row'>{paper}</th>"
            "<td class='row'>not trained here</td>"
            + "".join(f"<td class='notmeasured' data-col='{k}'>-</td>" for k, _ in TABLE1_METRICS)
            + ref_cells(paper)
            + "</tr>"
        )
    split = next((d.get("split") for d in present if d.get("split")), "test")
    samples = next((d.get("samples") for d in present if d.get("samples")), None)
    caption = (
        f"Methods x metrics on the {split} split"
        + (f" ({samples} samples per test audio for diversity)" if samples else "")
        + f". Right: the {SOURCE}'s Table 1 (LSE-D lower is better; FIQA, VQA higher; their "
        "baselines and Ours (Flame) trained on FLAME fits, the last two on NPHM fits). "
        "FIQA and VQA (image and video quality of photorealistic renders) are not measured "
        "here. 'missing': the method has no evaluation file in this run; 'not measured': the "
        "file has no figure (e.g. LSE-D without SyncNet weights). Ours: ↓ lower is better, "
        "↑ higher, →0 closer to 0 (FDD is signed: positive when the prediction's upper face "
        "moves too little); jitter and AV offset are best close to the ground-truth fits' row. "
        + static_note(static)
        + " "
        + _DIFFERS
    )
    body = (
        f"<table id='table1'>\n<caption>{_esc(caption)}</caption>\n<thead>{head}</thead>\n"
        "<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>\n"
        + _definitions_list(read, TABLE1_METRICS)
    )
    return _page(title or "Table 1: methods x metrics", body)


def static_note(labels: Sequence[str]) -> str:
    """The caption's sentence on nearly static models (:data:`STATIC_FRACTION`), naming
    ``labels`` (those flagged) or saying none is."""
    rule = (
        f"jitter MAE, the frame-to-frame motion, below {100 * STATIC_FRACTION:.0f} % of the "
        "ground-truth fits' on the same audio"
    )
    if not labels:
        return f"Nearly static (⚠): none (criterion: {rule})."
    return (
        f"⚠ nearly static: {', '.join(labels)} (criterion: {rule}); such an output is an "
        "almost still face, so its lip and FDD figures do not measure lip motion."
    )


# ---- Table 2 --------------------------------------------------------------------------------

TABLE2_FIGURES: tuple[tuple[str, str], ...] = (
    ("jitter_mae", "MAE"),
    ("jitter_rmse", "RMSE"),
    ("chamfer_l1_mm", "chamfer-L1 (mm), NPHM"),
    ("face_vertex_error_mm", "vertex error (mm), FLAME"),
)
"""Table 2's figures, each with and without the temporal loss (key in the fitting stage's
evaluation.json, header). The geometry errors differ per fit: chamfer-L1 of the NPHM fit's
surface, mean vertex error of the FLAME fit's face; each has its own column, not applicable
(``-``) in the other fit's rows."""
_GEOMETRY_FIT = {"chamfer_l1_mm": "NPHM", "face_vertex_error_mm": "FLAME"}
"""The geometry figures of :data:`TABLE2_FIGURES` and the fit (``fit`` of a row) each applies
to."""


def _applies(figure: str, fit: str) -> bool:
    """Whether a Table-2 figure is measured for a fit (``NPHM`` or ``FLAME``)."""
    return _GEOMETRY_FIT.get(figure, fit) == fit


def _fit_figures(data: Mapping[str, Any] | None, fit: str) -> dict[str, dict[str, float | None]]:
    """``{"with": {figure: value}, "without": {...}}`` of one fitting stage's evaluation
    (``fit``: ``FLAME`` or ``NPHM``); the figures of :data:`TABLE2_FIGURES` that apply to the
    fit, None where one is missing."""
    if not data:
        return {"with": {}, "without": {}}
    keys = [k for k, _ in TABLE2_FIGURES if _applies(k, fit)]
    sub = data.get("without_temporal")
    out: dict[str, dict[str, float | None]] = {"with": {}, "without": {}}
    for key in keys:
        out["with"][key] = _number(data.get(key))
        if isinstance(sub, Mapping):
            out["without"][key] = _number(sub.get(key))
        else:
            out["without"][key] = _number(data.get(f"unsmoothed_{key}"))
    return out


def table2_rows(
    flame: Mapping[str, Mapping[str, Any] | None],
    nphm: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> list[dict[str, Any]]:
    """Table 2's rows: per fitting stage (NPHM first, then FLAME), one row per sequence and a
    mean row.

    Args:
        flame: ``{"subject/sequence": the FLAME stage's evaluation.json or None}``.
        nphm: the same of the NPHM stage, or None when the run has no NPHM stage.

    Returns:
        ``[{"fit": "NPHM"|"FLAME", "sequence": name or "mean", "missing": bool, "with": {...},
        "without": {...}, "n": count}]`` (figures of :data:`TABLE2_FIGURES`, None where
        missing or not applicable to the fit; a mean over the sequences that have the figure,
        ``n`` of them).
    """
    rows: list[dict[str, Any]] = []
    for fit, evaluations in (("NPHM", nphm), ("FLAME", flame)):
        if evaluations is None:
            continue
        stage_rows = []
        for name, data in evaluations.items():
            figs = _fit_figures(data, fit)
            stage_rows.append({"fit": fit, "sequence": name, "missing": not data, **figs, "n": 1})
        mean: dict[str, Any] = {"fit": fit, "sequence": "mean", "missing": False, "n": 0}
        for side in ("with", "without"):
            mean[side] = {}
            for figure, _ in TABLE2_FIGURES:
                values = [r[side][figure] for r in stage_rows if r[side].get(figure) is not None]
                mean[side][figure] = sum(values) / len(values) if values else None
        mean["n"] = sum(not r["missing"] for r in stage_rows)
        mean["missing"] = mean["n"] == 0
        rows.extend([*stage_rows, mean])
    return rows


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def table2_html(
    flame: Mapping[str, Mapping[str, Any] | None],
    nphm: Mapping[str, Mapping[str, Any] | None] | None = None,
    title: str = "",
) -> str:
    """Table 2: fitting jitter (and geometry error) with and without the temporal loss, per
    sequence and mean, NPHM and FLAME fits, with the supplement's rows beside them.

    Args:
        flame, nphm: as :func:`table2_rows` (``nphm`` None: FLAME rows only, and the caption
            says the run has no NPHM stage).
        title: the page's heading.

    Returns:
        The page: rows ``data-row='<fit>:<sequence>'`` (``<fit>:mean`` for the means,
        ``ref:<supplement row>`` for the paper's), cells ``data-col='<with|without>:<figure>'``
        (figures of :data:`TABLE2_FIGURES`; a geometry figure of the other fit is ``-``, class
        ``na``) and ``ratio:jitter_mae`` (without ÷ with).
    """
    rows = table2_rows(flame, nphm)
    present = [d for d in (*flame.values(), *(nphm or {}).values()) if d]
    definitions = {**_FALLBACK_DEFINITIONS, **_definitions(present)}
    defs = {
        k: definitions[k] + (f"; {_GEOMETRY_FIT[k]} rows only" if k in _GEOMETRY_FIT else "")
        for k, _ in TABLE2_FIGURES
    }
    n = len(TABLE2_FIGURES)
    head1 = (
        "<tr><th class='row' rowspan='2'>fit</th><th class='row' rowspan='2'>sequence</th>"
        f"<th colspan='{n}'>w/o temporal loss</th><th colspan='{n}'>w/ temporal loss</th>"
        "<th rowspan='2' data-col='ratio:jitter_mae'>MAE w/o ÷ w/</th>"
        "<th class='ref' rowspan='2'>LSE-D</th></tr>"
    )
    sub = "".join(
        f"<th data-col='{side}:{k}' title='{_esc(defs[k])}'>{_esc(h)}</th>"
        for side in ("without", "with")
        for k, h in TABLE2_FIGURES
    )

    def not_applicable(key: str, fit: str) -> str:
        other = _GEOMETRY_FIT[key.split(":")[-1]]
        tip = f"not applicable: {other} fits only; {fit} rows have their own geometry column"
        return f"<td class='na' data-col='{_esc(key)}' title='{_esc(tip)}'>-</td>"

    body_rows = []
    for r in rows:
        cls = " class='mean'" if r["sequence"] == "mean" else ""
        name = r["sequence"] if r["sequence"] != "mean" else f"mean of {r['n']}"
        cells = "".join(
            _cell(r[side].get(k), f"{side}:{k}", defs[k], missing=r["missing"])
            if _applies(k, r["fit"])
            else not_applicable(f"{side}:{k}", r["fit"])
            for side in ("without", "with")
            for k, _ in TABLE2_FIGURES
        )
        ratio = _ratio(r["without"].get("jitter_mae"), r["with"].get("jitter_mae"))
        ratio_cell = (
            _cell(None, "ratio:jitter_mae", missing=True)
            if r["missing"]
            else (
                f"<td data-col='ratio:jitter_mae'>{ratio:.2f}x</td>"
                if ratio is not None
                else _cell(None, "ratio:jitter_mae")
            )
        )
        body_rows.append(
            f"<tr data-row='{_esc(r['fit'])}:{_esc(r['sequence'])}'{cls}>"
            f"<th class='row'>{_esc(r['fit'])}</th><td class='row'>{_esc(name)}</td>"
            f"{cells}{ratio_cell}<td class='notmeasured' data-col='lse_d'>{NOT_MEASURED}</td></tr>"
        )
    w_o, w = SUPPLEMENT_TABLE2["w/o temporal loss"], SUPPLEMENT_TABLE2["w/ temporal loss"]
    ref_ratio = w_o["jitter_mae"] / w["jitter_mae"]
    for label, ref in SUPPLEMENT_TABLE2.items():
        side = "without" if label.startswith("w/o") else "with"
        cells = []
        for s in ("without", "with"):
            for k, _ in TABLE2_FIGURES:
                value = ref.get(k) if s == side else None
                cells.append(_ref_cell(value, f"{s}:{k}"))
        body_rows.append(
            f"<tr data-row='ref:{_esc(label)}'><th class='row ref'>{SOURCE} Table 2</th>"
            f"<td class='row ref'>NPHM, real captures, {_esc(label)}</td>{''.join(cells)}"
            + (
                f"<td class='ref' data-col='ref:ratio:jitter_mae'>{ref_ratio:.2f}x</td>"
                if side == "without"
                else _ref_cell(None, "ratio:jitter_mae")
            )
            + f"{_ref_cell(ref['lse_d'], 'lse_d')}</tr>"
        )
    nphm_note = (
        ""
        if nphm is not None
        else " This run has no NPHM stage: FLAME rows only (the supplement's rows are NPHM fits)."
    )
    caption = (
        "Expression fitting with and without the temporal loss, per sequence and the mean over "
        "sequences (FLAME: temporal smoothing of expression and pose, supplement eqs. 11-12; "
        f"NPHM: the temporal Huber loss). Below: the {SOURCE}'s Table 2 (NPHM fits of real "
        f"captures; MAE ratio {ref_ratio:.2f}x). Jitter is in the units of each fit's codes "
        "(FLAME expression coefficients, NPHM expression codes): compare each fit's ratio, not "
        "values across fits or with the paper. Geometry: chamfer-L1 of the NPHM fit's surface "
        "and mean vertex error of the FLAME fit's face are different measures, each in its own "
        "column ('-': not applicable to the fit). LSE-D of the fits is not measured here. "
        "'missing': the sequence has no evaluation file in this run." + nphm_note + " " + _DIFFERS
    )
    body = (
        f"<table id='table2'>\n<caption>{_esc(caption)}</caption>\n<thead>{head1}<tr>{sub}</tr>"
        "</thead>\n<tbody>\n"
        + "\n".join(body_rows)
        + "\n</tbody></table>\n"
        + _definitions_list(defs, TABLE2_FIGURES)
    )
    return _page(title or "Table 2: expression fitting with and without the temporal loss", body)


# ---- Table 3 --------------------------------------------------------------------------------


def table3_html(
    evaluations: Mapping[str, Mapping[str, Any] | None], title: str = "", note: str = ""
) -> str:
    """Table 3: the five timestep injections, lip sync and diversity, beside the supplement's.

    Args:
        evaluations: ``{variant: evaluation.json of model facetalk_<variant>, or None}``
            (variants of :data:`INJECTIONS`; others are ignored).
        title: the page's heading.
        note: a sentence put at the head of the caption (e.g. why no variant was trained).

    Returns:
        The page: rows ``data-row='<variant>'``, cells ``data-col`` ``lse_d``,
        ``av_correlation``, ``diversity`` and ``ref:lse_d``, ``ref:diversity``. The caption
        says whether FiLM's diversity is above the input-addition and dot-product variants'
        (the supplement's ordering), and by how much.
    """
    present = [d for d in evaluations.values() if d]
    definitions = _definitions(present)
    cols = (("lse_d", "LSE-D"), ("av_correlation", "AV correlation"), ("diversity", "diversity"))
    head = (
        "<tr><th class='row' rowspan='2'>timestep injection</th>"
        "<th class='row' rowspan='2'>model</th><th colspan='3'>ours (definitions below)</th>"
        f"<th class='ref' colspan='2'>{SOURCE}, Table 3</th></tr><tr>"
        + "".join(
            f"<th data-col='{k}' title='{_esc(definitions.get(k, ''))}'>{h}</th>" for k, h in cols
        )
        + "<th class='ref'>LSE-D</th><th class='ref'>diversity</th></tr>"
    )
    rows = []
    diversity: dict[str, float | None] = {}
    for variant, paper in INJECTIONS:
        data = evaluations.get(variant)
        metrics = data.get("metrics") if data else None
        metrics = metrics if isinstance(metrics, Mapping) else {}
        diversity[variant] = _number(metrics.get("diversity")) if data else None
        cells = "".join(
            _cell(_number(metrics.get(k)), k, definitions.get(k, ""), missing=data is None)
            for k, _ in cols
        )
        ref = SUPPLEMENT_TABLE3[variant]
        model = _esc((data or {}).get("model") or f"facetalk_{variant}") if data else "-"
        rows.append(
            f"<tr data-row='{variant}'><th class='row'>{_esc(paper)}</th>"
            f"<td class='row'>{model}</td>{cells}"
            f"{_ref_cell(ref['lse_d'], 'lse_d')}{_ref_cell(ref['diversity'], 'diversity')}</tr>"
        )
    caption = (
        (note + " " if note else "")
        + "Timestep injection ablation (FaceTalk diffusion decoder, one model per injection). "
        "Lip sync: LSE-D where SyncNet weights were given, else the weight-free correlation of "
        "mouth opening and speech envelope (higher is better). Diversity: supplement eq. 2 over "
        f"the samples per test audio. Right: the {SOURCE}'s Table 3. "
        + ordering_note(diversity)
        + " "
        + _DIFFERS
    )
    body = (
        f"<table id='table3'>\n<caption>{_esc(caption)}</caption>\n<thead>{head}</thead>\n"
        "<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>\n"
        + _definitions_list(definitions, cols)
    )
    return _page(title or "Table 3: timestep injection", body)


def ordering_note(diversity: Mapping[str, float | None]) -> str:
    """Whether FiLM's diversity is above the input-addition and dot-product variants' (the
    supplement's Table 3 ordering), with the figures; says which are missing."""
    film = diversity.get("film")
    others = {"input": "input addition", "dot_product": "dot-product attention"}
    if film is None:
        return "Ordering not checked: FiLM's diversity is missing."
    parts = []
    for key, name in others.items():
        v = diversity.get(key)
        if v is None:
            parts.append(f"not compared with {name} (missing)")
        elif film > v:
            parts.append(f"above {name} ({film:.4g} vs {v:.4g}, +{film - v:.3g})")
        else:
            parts.append(f"NOT above {name} ({film:.4g} vs {v:.4g}, {film - v:+.3g})")
    if any(p.startswith("NOT") for p in parts):
        verdict = "not reproduced"
    elif any(p.endswith("(missing)") for p in parts):
        verdict = "not fully checked"
    else:
        verdict = "reproduced"
    return (
        f"Supplement's ordering (FiLM most diverse) {verdict}: FiLM's diversity ({film:.4g}) "
        + ("; ".join(parts) + ".")
    )
