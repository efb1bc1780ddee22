"""``talkhead export-capture``: the synthetic capture written in a published NeRSemble layout,
recognised as that layout, carrying only what that kit ships, and ingested back with its plates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkhead.capture import layout, layouts
from talkhead.cli import main
from talkhead.io import read_image


def _export(tiny_studio, out: Path, *extra: str) -> int:
    return main(
        [
            "export-capture",
            str(tiny_studio.capture_root),
            tiny_studio.subject,
            tiny_studio.sequence,
            str(out),
            *extra,
        ]
    )


@pytest.mark.parametrize("name", ["nersemble_v1", "nersemble_v2", "nersemble_benchmark"])
def test_export_writes_a_tree_detected_as_that_layout(tiny_studio, tmp_path, capsys, name):
    assert _export(tiny_studio, tmp_path, "--layout", name, "--as-subject", "018") == 0
    lines = capsys.readouterr().out.splitlines()
    kinds = [line.split(":")[0] for line in lines[1:]]
    assert kinds[:4] == ["cameras", "frames", "videos", "plates"]
    seq = tiny_studio.open()
    assert lines[1].startswith(f"cameras: {seq.n_cameras} ")
    assert layouts.detect_layout(tmp_path, "018", seq.sequence) == name
    src = layouts.open_source(tmp_path, "018", seq.sequence)
    assert list(src.serials) == seq.serials
    videos = sorted(tmp_path.rglob("*.mp4"))
    if name == "nersemble_v1":
        assert src.frame_ids == seq.frame_ids and not videos
        assert lines[2].startswith(f"frames: {seq.n_frames} x {seq.n_cameras} images")
        assert len(src.colour) == seq.n_cameras  # example matrices by default
    else:
        n_videos = seq.n_cameras * (2 if name == "nersemble_benchmark" else 1)
        assert len(videos) == n_videos and lines[3].startswith(f"videos: {n_videos} ")
        assert lines[2].startswith(f"frames: {seq.n_frames} at 25 fps")
    if name == "nersemble_v2":
        assert lines[4].startswith(f"plates: {seq.n_cameras} (the sequence's own")
        assert all(src.background_path(s) is not None for s in seq.serials)
    else:
        assert lines[4] == "plates: none"


def test_v2_ships_no_products_and_its_plates_come_back_through_ingest(tiny_studio, tmp_path):
    from talkhead.preprocess.ingest import ingest_sequence

    kit = tmp_path / "kit"
    assert _export(tiny_studio, kit, "--layout", "nersemble_v2", "--as-subject", "018") == 0
    seq = tiny_studio.open()
    files = [p for p in kit.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} == {".json", ".mp4", ".jpg"}
    assert not [p for p in files if "alpha" in p.name or "landmark" in str(p) or "seg" in p.name]
    seq_dir = layout.sequence_dir(kit, "018", seq.sequence)
    assert {p.name for p in seq_dir.iterdir()} == {"images"}  # no mattes, landmarks, audio
    ingest_sequence(kit, "018", seq.sequence, tmp_path / "ingested", progress=False)
    back = layout.sequence_dir(tmp_path / "ingested", "018", seq.sequence)
    for s in seq.serials:
        plate = read_image(layout.background_path(back, s)).astype(int)
        own = read_image(seq.background_path(s)).astype(int)
        # colour calibration undone (no bias), JPEG's error on a noisy plate only
        assert abs((plate - own).mean()) < 0.5 and np.abs(plate - own).mean() < 3.0


def test_errors_exit_1_with_one_line(tiny_studio, tmp_path, capsys):
    seq = tiny_studio.open()
    bad = [
        (["--layout", "nersemble_benchmark", "--colour-matrices", "example"], "no colour"),
        (["--layout", "nersemble_v1", "--as-subject", seq.subject], "over the sequence itself"),
    ]
    for extra, why in bad:
        out = tiny_studio.capture_root if "--as-subject" in extra else tmp_path / "x"
        assert _export(tiny_studio, out, *extra) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and why in err
    missing = [
        "export-capture",
        str(tiny_studio.capture_root),
        seq.subject,
        "SEN-99",
        str(tmp_path),
    ]
    assert main([*missing, "--layout", "nersemble_v2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SEN-99: sequence folder is missing" in err
    kit = tmp_path / "kit"
    assert _export(tiny_studio, kit, "--layout", "nersemble_v2") == 0
    capsys.readouterr()
    again = ["export-capture", str(kit), seq.subject, seq.sequence, str(tmp_path / "y")]
    assert main([*again, "--layout", "nersemble_v1"]) == 1
    assert "a nersemble_v2 capture; export-capture reads talkhead trees" in capsys.readouterr().err
