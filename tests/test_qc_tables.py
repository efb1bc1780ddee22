"""The report's Tables 1-3 (talkhead.qc.tables): what is drawn where, missing shown as missing,
the supplement's figures beside ours."""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser

import pytest

from talkhead.qc import tables


class Cells(HTMLParser):
    """``{row: {col: (text, class)}}`` of a page's ``data-row`` / ``data-col`` cells, the
    ``data-flag`` marks of each row (``{row: {flag: title}}``), and every tag seen (to check
    the page names no external resource)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, tuple[str, str]]] = {}
        self.flags: dict[str, dict[str, str]] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._row: str | None = None
        self._col: tuple[str, str] | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "tr" and "data-row" in a:
            self._row = a["data-row"]
            self.rows[self._row] = {}
        elif tag == "span" and self._row is not None and "data-flag" in a:
            self.flags.setdefault(self._row, {})[a["data-flag"]] = a.get("title") or ""
        elif tag == "td" and self._row is not None and "data-col" in a:
            self._col = (a["data-col"], a.get("class") or "")
            self._text = ""

    def handle_data(self, data):
        if self._col is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "td" and self._col is not None:
            self.rows[self._row][self._col[0]] = (self._text.strip(), self._col[1])
            self._col = None
        elif tag == "tr":
            self._row = None


def parse(page: str) -> Cells:
    p = Cells()
    p.feed(page)
    return p


def evaluation(
    model, label, lve, diversity=0.1, lse_d=None, variant=None, jitter=0.01, true_jitter=0.004
):
    """An evaluation.json as the evaluate rules write it (the contract of the model tables)."""
    return {
        "model": model,
        "label": label,
        "space": "flame_vertices",
        "variant": variant,
        "split": "test",
        "samples": 4,
        "sequences": ["syn001/SEN-00"],
        "metrics": {
            "lve_mm": lve,
            "lve_squared_mm2": lve * lve,
            "fdd_mm": 0.5,
            "diversity": diversity,
            "jitter_mae": jitter,
            "jitter_rmse": 2 * jitter,
            "av_offset_frames": 2,
            "av_correlation": 0.6,
            "lse_d": lse_d,
            "lse_c": None,
        },
        "definitions": {
            "lve_mm": "max over lip vertices of the L2 distance, mean over frames (mm)"
        },
        "ground_truth": {
            "jitter_mae": true_jitter,
            "jitter_rmse": 0.007,
            "av_offset_frames": 0,
            "av_correlation": 0.9,
        },
    }


def test_table1_puts_each_method_in_its_row_and_the_supplement_beside_it():
    evals = {
        "faceformer": evaluation("faceformer", "FaceFormer-style baseline", 3.25),
        "facetalk": evaluation("facetalk", "Ours (Flame)", 1.5, lse_d=9.75),
        "meshtalk": None,  # no evaluation.json
    }
    cells = parse(tables.table1_html(evals)).rows
    assert cells["FaceFormer-style baseline"]["lve_mm"][0] == "3.25"
    assert cells["FaceFormer-style baseline"]["lve_squared_mm2"][0] == "10.56"
    assert cells["Ours (Flame)"]["lve_mm"][0] == "1.5"
    assert cells["Ours (Flame)"]["lse_d"][0] == "9.75"
    assert cells["Ours (Flame)"]["av_offset_frames"][0] == "2"
    # the supplement's figures in the reference columns of the matching rows
    assert cells["FaceFormer-style baseline"]["ref:lse_d"][0] == "12.1391"
    assert cells["Ours (Flame)"]["ref:lse_d"][0] == "11.6839"
    assert cells["Ours (full)"]["ref:vqa"][0] == "0.6145"
    assert "not in the paper" in cells["MeshTalk"]["ref:none"][0]
    assert cells["CodeTalker"]["ref:lse_d"][0] == "11.8442"
    # the floor: the ground-truth fits' figures
    assert cells["ground-truth fits (floor)"]["av_correlation"][0] == "0.9"
    assert cells["ground-truth fits (floor)"]["lve_mm"][1] == "notmeasured"


def test_table1_shows_missing_methods_and_figures_as_missing_not_zero():
    evals = {"facetalk": evaluation("facetalk", "Ours (Flame)", 1.5, diversity=None)}
    cells = parse(tables.table1_html(evals)).rows
    for label in ("FaceFormer-style baseline", "MeshTalk", "Ours (full)"):
        for key, _ in tables.TABLE1_METRICS:
            text, cls = cells[label][key]
            assert (text, cls) == ("missing", "missing")
    assert cells["Ours (Flame)"]["diversity"] == ("not measured", "notmeasured")
    assert cells["Ours (Flame)"]["lse_c"] == ("not measured", "notmeasured")  # null
    empty = parse(tables.table1_html({})).rows
    assert all(text != "0" for row in empty.values() for text, _ in row.values())


def test_table1_definitions_from_the_evaluation_files_beside_the_figures():
    page = tables.table1_html({"f": evaluation("f", "Ours (Flame)", 1.0)})
    parsed = parse(page)
    headers = [a for t, a in parsed.tags if t == "th" and a.get("data-col") == "lve_mm"]
    assert headers and "max over lip vertices" in headers[0]["title"]
    assert "max over lip vertices of the L2 distance" in page.split("Definitions and units")[1]


def test_table1_says_how_to_read_the_signed_fdd():
    page = tables.table1_html({"f": evaluation("f", "Ours (Flame)", 1.0)})
    (header,) = [a for t, a in parse(page).tags if t == "th" and a.get("data-col") == "fdd_mm"]
    listed = html.unescape(page.split("data-def='fdd_mm'")[1].split("</dd>")[0])
    for text in (header["title"], listed):
        assert "closer to 0 is better" in text
        assert "positive: the prediction's upper face moves too little" in text
    # a metric without a sign says which way is better too
    (lve,) = [a for t, a in parse(page).tags if t == "th" and a.get("data-col") == "lve_mm"]
    assert lve["title"].endswith("lower is better")


def test_table1_flags_a_nearly_static_model_and_names_it_in_the_caption():
    evals = {
        # MeshTalk at demo scale: an almost motionless mouth
        "meshtalk": evaluation("meshtalk", "MeshTalk", 3.0, jitter=0.003, true_jitter=0.18),
        "faceformer": evaluation(
            "faceformer", "FaceFormer-style baseline", 3.0, jitter=0.18, true_jitter=0.18
        ),
        # just above the threshold (0.04 / 0.18 = 22 %): not flagged
        "facetalk": evaluation("facetalk", "Ours (Flame)", 3.0, jitter=0.04, true_jitter=0.18),
        # just below (0.035 / 0.18 = 19 %): flagged
        "regression": evaluation(
            "regression", "Ours (w/o diffusion)", 3.0, jitter=0.035, true_jitter=0.18
        ),
    }
    page = tables.table1_html(evals)
    flags = parse(page).flags
    assert set(flags) == {"MeshTalk", "Ours (w/o diffusion)"}
    assert "1.7 % of the ground-truth fits' (0.18)" in flags["MeshTalk"]["static"]
    caption = html.unescape(page.split("<caption>")[1].split("</caption>")[0])
    assert "nearly static: MeshTalk, Ours (w/o diffusion) (criterion: jitter MAE" in caption
    assert "below 20 % of the ground-truth fits' on the same audio" in caption
    assert tables.motion_ratio(evals["meshtalk"]) == pytest.approx(0.003 / 0.18)
    # nothing to compare with: no flag, no ratio
    assert tables.motion_ratio({"metrics": {"jitter_mae": 0.0}, "ground_truth": {}}) is None
    assert tables.motion_ratio({"metrics": {"jitter_mae": 0.0}}) is None
    none = tables.table1_html({"f": evaluation("f", "Ours (Flame)", 1.0)})
    assert not parse(none).flags and "Nearly static (⚠): none (criterion" in html.unescape(none)


def test_table1_unknown_label_gets_its_own_row_and_nan_is_not_a_number():
    ev = evaluation("x", "Something else", float("nan"))
    cells = parse(tables.table1_html({"x": ev})).rows
    assert cells["Something else"]["lve_mm"] == ("not measured", "notmeasured")


def flame_eval(mae, rmse, u_mae, u_rmse):
    return {
        "jitter_mae": mae,
        "jitter_rmse": rmse,
        "face_vertex_error_mm": 1.25,
        "unsmoothed_jitter_mae": u_mae,
        "unsmoothed_jitter_rmse": u_rmse,
        "unsmoothed_face_vertex_error_mm": 1.5,
    }


def test_table2_rows_per_sequence_and_mean_with_and_without_the_temporal_loss():
    flame = {
        "syn000/SEN-00": flame_eval(0.002, 0.004, 0.02, 0.03),
        "syn000/SEN-01": flame_eval(0.004, 0.006, 0.01, 0.02),
        "syn001/SEN-00": None,
    }
    nphm = {
        "syn000/SEN-00": {
            "jitter_mae": 0.001,
            "jitter_rmse": 0.002,
            "chamfer_l1_mm": 0.8,
            "without_temporal": {"jitter_mae": 0.005, "jitter_rmse": 0.009, "chamfer_l1_mm": 0.7},
        },
        # an older file: the fit without the loss prefixed unsmoothed_
        "syn000/SEN-01": {"jitter_mae": 0.003, "unsmoothed_jitter_mae": 0.006},
    }
    cells = parse(tables.table2_html(flame, nphm)).rows
    row = cells["FLAME:syn000/SEN-00"]
    assert row["with:jitter_mae"][0] == "0.002"
    assert row["without:jitter_mae"][0] == "0.02"
    assert row["ratio:jitter_mae"][0] == "10.00x"
    assert cells["FLAME:mean"]["with:jitter_mae"][0] == "0.003"  # mean of the two present
    assert cells["FLAME:mean"]["without:jitter_rmse"][0] == "0.025"
    missing = cells["FLAME:syn001/SEN-00"]
    assert missing["without:chamfer_l1_mm"] == ("-", "na")
    assert all(
        missing[k] == ("missing", "missing")
        for k in missing
        if k not in ("lse_d", "without:chamfer_l1_mm", "with:chamfer_l1_mm")
    )
    assert len(missing) == 10
    assert cells["NPHM:syn000/SEN-00"]["without:jitter_mae"][0] == "0.005"
    assert cells["NPHM:syn000/SEN-01"]["without:jitter_mae"][0] == "0.006"
    assert cells["NPHM:syn000/SEN-01"]["with:jitter_rmse"][1] == "notmeasured"
    assert cells["NPHM:mean"]["with:jitter_mae"][0] == "0.002"
    # the supplement's rows, each figure in its own side
    ref = cells["ref:w/o temporal loss"]
    assert ref["ref:without:jitter_mae"][0] == "0.01422"
    assert ref["ref:with:jitter_mae"][0] == "-"
    assert ref["ref:lse_d"][0] == "10.9221"
    assert ref["ref:ratio:jitter_mae"][0] == "5.73x"  # 0.01422 / 0.00248
    assert cells["ref:w/ temporal loss"]["ref:with:jitter_rmse"][0] == "0.00623"


def test_table2_keeps_chamfer_and_vertex_error_in_their_own_columns():
    flame = {"s/q": flame_eval(0.002, 0.004, 0.02, 0.03)}
    nphm = {"s/q": {"jitter_mae": 0.001, "chamfer_l1_mm": 0.8, "unsmoothed_chamfer_l1_mm": 0.7}}
    page = tables.table2_html(flame, nphm)
    cells = parse(page).rows
    for fit, mine, other, values in (
        ("NPHM", "chamfer_l1_mm", "face_vertex_error_mm", ("0.7", "0.8")),
        ("FLAME", "face_vertex_error_mm", "chamfer_l1_mm", ("1.5", "1.25")),
    ):
        for row in (f"{fit}:s/q", f"{fit}:mean"):
            assert (cells[row][f"without:{mine}"][0], cells[row][f"with:{mine}"][0]) == values
            assert cells[row][f"without:{other}"] == ("-", "na")
            assert cells[row][f"with:{other}"] == ("-", "na")
    headers = {
        a["data-col"]: a["title"]
        for t, a in parse(page).tags
        if t == "th" and a.get("data-col", "").startswith("with:")
    }
    assert "chamfer-L1" in headers["with:chamfer_l1_mm"]
    assert headers["with:chamfer_l1_mm"].endswith("NPHM rows only")
    assert "vertices" in headers["with:face_vertex_error_mm"]
    assert headers["with:face_vertex_error_mm"].endswith("FLAME rows only")


def test_table2_without_an_nphm_stage_has_flame_rows_only_and_says_so():
    page = tables.table2_html({"s/q": flame_eval(0.1, 0.2, 0.3, 0.4)}, None)
    rows = parse(page).rows
    assert not any(r.startswith("NPHM:") for r in rows)
    assert "no NPHM stage" in page


def test_table3_rows_per_injection_and_the_ordering_note():
    evals = {
        "input": evaluation("facetalk_input", "input", 1.0, diversity=0.02, variant="input"),
        "dot_product": evaluation("facetalk_dot_product", "dot_product", 1.0, diversity=0.5),
        "film": evaluation("facetalk_film", "film", 1.0, diversity=0.3, lse_d=8.5),
        "scale_shift": None,
    }
    page = tables.table3_html(evals)
    cells = parse(page).rows
    assert cells["film"]["diversity"][0] == "0.3"
    assert cells["film"]["lse_d"][0] == "8.5"
    assert cells["film"]["ref:diversity"][0] == "0.34"
    assert cells["dot_product"]["ref:diversity"][0] == "2.009e-07"
    assert cells["input"]["av_correlation"][0] == "0.6"
    assert cells["scale_shift"]["diversity"] == ("missing", "missing")
    assert cells["squeeze_excite"]["lse_d"] == ("missing", "missing")
    assert "not reproduced" in page and "NOT above dot-product attention" in page
    note = tables.ordering_note({"film": 0.3, "input": 0.02, "dot_product": 0.01})
    assert note.startswith("Supplement's ordering (FiLM most diverse) reproduced")
    assert "not fully checked" in tables.ordering_note({"film": 0.3, "input": 0.1})
    assert "missing" in tables.ordering_note({"film": 0.3})


def test_table3_without_variants_keeps_the_supplement_and_says_why():
    page = tables.table3_html({}, note="No injection variant was trained in this run.")
    cells = parse(page).rows
    assert set(cells) == {"input", "scale_shift", "squeeze_excite", "dot_product", "film"}
    assert all(cells[v]["diversity"] == ("missing", "missing") for v in cells)
    assert cells["film"]["ref:diversity"][0] == "0.34"
    caption = html.unescape(page.split("<caption>")[1].split("</caption>")[0])
    assert caption.startswith("No injection variant was trained in this run. ")
    assert "Ordering not checked" in caption


@pytest.mark.parametrize("which", [1, 2, 3])
def test_pages_are_self_contained_and_say_what_differs(which):
    page = {
        1: lambda: tables.table1_html({"f": evaluation("f", "Ours (Flame)", 1.0)}),
        2: lambda: tables.table2_html({"s/q": flame_eval(0.1, 0.2, 0.3, 0.4)}),
        3: lambda: tables.table3_html({}),
    }[which]()
    parsed = parse(page)
    for tag, attrs in parsed.tags:
        assert tag not in ("script", "link", "img", "iframe"), tag
        for key in ("src", "href"):
            assert key not in attrs, (tag, attrs)
    assert "synthetic studio" in page and "own NPHM" in page and "demo-scale" in page
    text = html.unescape(page)
    assert f"FaceTalk supplement Table {which}" in text or f"supplement's Table {which}" in text


def test_read_evaluation_is_defensive(tmp_path):
    assert tables.read_evaluation(tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert tables.read_evaluation(tmp_path / "bad.json") is None
    (tmp_path / "list.json").write_text("[1, 2]")
    assert tables.read_evaluation(tmp_path / "list.json") is None
    (tmp_path / "ok.json").write_text(json.dumps({"label": "MeshTalk"}))
    assert tables.read_evaluation(tmp_path / "ok.json") == {"label": "MeshTalk"}
    out = tables.write_page("<p>x</p>", tmp_path / "t.html")
    assert out.read_text(encoding="utf-8") == "<p>x</p>"


def test_table1_ours_full_has_its_surface_error_and_its_own_floor_row():
    flame = evaluation("facetalk", "Ours (Flame)", 1.2, jitter=0.02, true_jitter=0.03)
    full = evaluation("facetalk_nphm", "Ours (full)", 0.0, jitter=0.5, true_jitter=0.7)
    full["space"] = "nphm_expression"
    full["metrics"].update(lve_mm=None, lve_squared_mm2=None, lip_surface_error_mm=2.5)
    full["ground_truth"]["lip_surface_error_mm"] = 1.5
    full["definitions"] = {"jitter_mae": "mean |x[t+1] - x[t]|; NPHM code units per frame"}
    flame["definitions"]["lip_surface_error_mm"] = "null: a model of FLAME vertices"
    full["definitions"]["lip_surface_error_mm"] = "true lip vertices to the surface; mm"
    page = tables.table1_html({"facetalk": flame, "facetalk_nphm": full})
    cells = parse(page).rows
    assert cells["Ours (full)"]["lip_surface_error_mm"][0] == "2.5"
    assert cells["Ours (full)"]["lve_mm"][1] == "notmeasured"
    assert cells["Ours (Flame)"]["lve_mm"][0] == "1.2"
    # one floor per space: the FLAME fits' jitter in mm, the NPHM fits' in code units
    assert cells["ground-truth fits (floor)"]["jitter_mae"][0] == "0.03"
    assert cells["ground-truth NPHM fits (floor)"]["jitter_mae"][0] == "0.7"
    assert cells["ground-truth NPHM fits (floor)"]["lip_surface_error_mm"][0] == "1.5"
    # the header's definition is the one that defines the figure, not a model's "null: ..."
    text = html.unescape(page)
    assert "true lip vertices to the surface; mm" in text.split("Definitions and units")[1]
    assert "NPHM code units per frame" in text  # the NPHM row's own jitter unit, in its cells
