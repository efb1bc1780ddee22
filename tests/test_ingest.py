"""Ingest: the synthetic capture written in each published layout (capture/export) comes back,
through ingest, as a talkhead-layout sequence with the same cameras, frames and pixels (within
codec tolerance), depth within 0.05 mm and colours within 2 levels; frames are picked by
timestamp; videos of unequal length are trimmed with a logged count; distortion is removed;
bad videos are refused naming the file; a rerun skips what is done."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkhead.capture import export, layout, layouts
from talkhead.capture.calibration import read_camera_params, write_camera_params
from talkhead.capture.readers import (
    read_alpha,
    read_images,
    read_landmarks,
    read_precomputed_depth,
)
from talkhead.capture.sequence import open_sequence_dir
from talkhead.errors import CaptureError
from talkhead.io import read_image, save_image
from talkhead.preprocess import colour, ingest, undistort, video
from talkhead.preprocess.ingest import ingest_sequence


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.fixture(scope="module")
def studio(tiny_studio):
    return tiny_studio.open()


@pytest.fixture(scope="module")
def depth_maps(studio):
    """Known depth per (frame, camera): smooth, 0.8-1.2 m, with a masked corner."""
    rng = np.random.default_rng(1)
    out = {}
    v, u = np.mgrid[: studio.height, : studio.width]
    for t in studio.frame_ids:
        for s in studio.serials:
            d = 1.0 + 0.2 * np.sin(u / 7.0 + rng.uniform()) * np.cos(v / 9.0)
            d[:6, :6] = 0.0
            out[t, s] = d.astype(np.float64)
    return out


@pytest.fixture(scope="module")
def colour_matrices(studio):
    return export.example_colour_matrices(studio.serials, seed=3)


def _open(result):
    return open_sequence_dir(result.sequence_dir, result.calibration)


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


def test_v1_round_trip_pixels_depth_colours(studio, depth_maps, colour_matrices, tmp_path):
    affine = {s: np.hstack([m, np.full((3, 1), -0.01)]) for s, m in colour_matrices.items()}
    export.export_nersemble_v1(
        studio, tmp_path / "v1", colour=affine, depth=lambda t, s: depth_maps[t, s]
    )
    res = ingest_sequence(
        tmp_path / "v1", studio.subject, studio.sequence, tmp_path / "out", progress=False
    )
    assert res.layout == "nersemble_v1"
    assert res.sequence_dir == layout.sequence_dir(
        tmp_path / "out", studio.subject, studio.sequence
    )
    assert res.calibration == res.sequence_dir / "camera_params.json"
    seq = _open(res)
    assert seq.serials == studio.serials and seq.frame_ids == studio.frame_ids
    assert seq.fps == studio.fps and seq.image_size == studio.image_size
    assert seq.has_alpha and seq.has_precomputed_depth and not seq.has_landmarks
    for s in studio.serials:
        np.testing.assert_allclose(seq.cameras[s].K, studio.cameras[s].K)
        np.testing.assert_allclose(seq.cameras[s].world_2_cam, studio.cameras[s].world_2_cam)
        assert seq.cameras[s].distortion is None
    for t in studio.frame_ids:
        # colours: the matrices' inverse was applied on export, ingest applies them
        diff = np.abs(read_images(seq, t).astype(int) - read_images(studio, t).astype(int))
        assert diff.max() <= 2
        np.testing.assert_allclose(read_alpha(seq, t), read_alpha(studio, t), atol=0.5 / 255)
        d = read_precomputed_depth(seq, t)
        for c, s in enumerate(studio.serials):
            ref = depth_maps[t, s]
            assert np.all(d[c][ref == 0] == 0)
            assert np.abs(d[c][ref > 0] - ref[ref > 0]).max() < 0.05e-3


def test_v1_colours_are_off_without_colour_calibration(studio, colour_matrices, tmp_path):
    export.export_nersemble_v1(studio, tmp_path / "v1", colour=colour_matrices)
    res = ingest_sequence(
        tmp_path / "v1",
        studio.subject,
        studio.sequence,
        tmp_path / "out",
        colour_calibration=False,
        progress=False,
    )
    t = studio.frame_ids[0]
    diff = np.abs(read_images(_open(res), t).astype(int) - read_images(studio, t).astype(int))
    assert diff.max() > 5  # the test above would notice colours not being applied


def test_v2_round_trip_within_codec_tolerance(studio, colour_matrices, tmp_path, caplog):
    export.export_nersemble_v2(studio, tmp_path / "v2", subject="018", colour=colour_matrices)
    with caplog.at_level(logging.INFO, logger="talkhead"):
        res = ingest_sequence(
            tmp_path / "v2", "018", studio.sequence, tmp_path / "out", progress=False
        )
    assert "nersemble_v2" in caplog.text
    seq = _open(res)
    assert seq.serials == studio.serials
    assert seq.frame_ids == tuple(range(studio.n_frames)) and seq.fps == studio.fps
    assert not (seq.has_alpha or seq.has_landmarks or seq.has_segmentation)
    assert seq.audio_path is None
    for t_out, t in enumerate(studio.frame_ids):
        got, ref = read_images(seq, t_out), read_images(studio, t)
        assert psnr(got, ref) > 30
        # colours restored: no channel is off on average by more than 2 levels
        bias = (got.astype(float) - ref.astype(float)).mean(axis=(1, 2))
        assert np.abs(bias).max() < 2.0
    # background plates ingested beside the frames, colour-corrected like them
    assert seq.has_background
    t = studio.frame_ids[0]
    images, alpha = read_images(studio, t), read_alpha(studio, t)
    for c, s in enumerate(studio.serials):
        plate = read_image(seq.background_path(s))
        assert plate.shape == (studio.height, studio.width, 3)
        bg = alpha[c] < 0.5
        assert np.abs(plate[bg].astype(float) - images[c][bg]).mean() < 4.0


def test_benchmark_round_trip_images_and_mattes(studio, tmp_path):
    export.export_nersemble_benchmark(studio, tmp_path / "bm")
    res = ingest_sequence(
        tmp_path / "bm", studio.subject, studio.sequence, tmp_path / "out", progress=False
    )
    assert res.layout == "nersemble_benchmark"
    seq = _open(res)
    assert seq.has_alpha
    for t_out, t in enumerate(studio.frame_ids):
        assert psnr(read_images(seq, t_out), read_images(studio, t)) > 30
        assert np.abs(read_alpha(seq, t_out) - read_alpha(studio, t)).mean() < 0.01


def test_talkhead_tree_ingests_with_landmarks_and_audio(tiny_studio, studio, tmp_path):
    res = ingest_sequence(
        tiny_studio.capture_root,
        studio.subject,
        studio.sequence,
        tmp_path / "out",
        downscale=2,
        progress=False,
    )
    seq = _open(res)
    assert seq.image_size == (studio.width // 2, studio.height // 2)
    assert seq.has_landmarks and seq.has_segmentation and seq.audio_path is not None
    lm, ref = read_landmarks(seq), read_landmarks(studio)
    # pixel centres at integers: u' = (u + 0.5) / 2 - 0.5
    np.testing.assert_allclose(lm[..., :2], (ref[..., :2] + 0.5) / 2 - 0.5, atol=1e-4)
    # the scaled intrinsics project a point where the scaled image has it
    X = np.array([[0.02, -0.03, 0.05]])
    for s in studio.serials:
        uv, _ = studio.cameras[s].project(X)
        uv2, _ = seq.cameras[s].project(X)
        np.testing.assert_allclose(uv2, (uv + 0.5) / 2 - 0.5, atol=1e-9)


# --------------------------------------------------------------------------------------------
# Frames by timestamp, lengths, gaps, single frames
# --------------------------------------------------------------------------------------------


def test_pick_frames_is_nearest_by_timestamp() -> None:
    src = [(i / 73.0, i) for i in range(73)]  # one second at 73 fps
    got = dict(video.pick_frames(iter(src), 25.0))
    assert list(got) == list(range(25))
    assert [got[t] for t in range(25)] == [round(t * 73 / 25) for t in range(25)]
    assert [i for _, i in video.pick_frames(iter(src), None)] == list(range(73))
    # variable frame rate: times, not counts, decide; the first frame is time zero. Targets
    # 0, .04, .08, .12, .16, .20, .24 s; the last frame (0.2 s) stands for half the last
    # interval (0.045 s) after it.
    vfr = [(10.0, "a"), (10.03, "b"), (10.1, "c"), (10.11, "d"), (10.2, "e")]
    picked = [p for _, p in video.pick_frames(iter(vfr), 25.0)]
    assert picked == ["a", "b", "c", "d", "e", "e", "e"]


def test_variable_frame_rate_video_frames_by_timestamp(tmp_path: Path) -> None:
    times = [0.0, 0.03, 0.1, 0.11, 0.2]
    frames = [np.full((16, 16, 3), 40 * i + 20, np.uint8) for i in range(len(times))]
    p = tmp_path / "vfr.mp4"
    export.write_video(p, frames, 25.0, times=times, crf=0)
    got = []
    video.decode_video(p, lambda t, img: got.append(int(round(img.mean()))), fps=25.0)
    levels = [40 * i + 20 for i in range(len(times))]
    picked = [int(np.argmin([abs(g - lv) for lv in levels])) for g in got]
    assert picked == [0, 1, 2, 3, 4, 4, 4]


def test_unequal_videos_are_trimmed_with_a_logged_count(studio, tmp_path, caplog):
    root = tmp_path / "v2"
    seq_dir = export.export_nersemble_v2(studio, root, backgrounds={})
    short = studio.serials[1]
    frames = [read_images(studio, t, [short])[0] for t in studio.frame_ids[:-1]]
    export.write_video(layouts.video_path(seq_dir, short), frames, studio.fps)
    with caplog.at_level(logging.WARNING, logger="talkhead"):
        res = ingest_sequence(
            root, studio.subject, studio.sequence, tmp_path / "out", progress=False
        )
    assert res.n_frames == studio.n_frames - 1
    assert res.dropped == {s: 1 for s in studio.serials if s != short}
    assert "trimmed to the common span of 2 frames" in caplog.text
    seq = _open(res)
    assert seq.frame_ids == (0, 1)
    meta = json.loads(layout.sequence_file(res.sequence_dir).read_text())
    assert meta["ingest"]["dropped"] == res.dropped


def test_frame_ids_with_gaps_are_kept(studio, tmp_path):
    name = "EXP-3-cheeks+nose"  # NeRSemble's sequence names hold + and -
    seq_dir = export.export_nersemble_v1(studio, tmp_path / "v1", subject="017", sequence=name)
    shutil.rmtree(layouts.v1_frame_dir(seq_dir, studio.frame_ids[1]))
    res = ingest_sequence(tmp_path / "v1", "017", name, tmp_path / "out", progress=False)
    assert res.sequence_dir == layout.sequence_dir(tmp_path / "out", "017", name)
    seq = _open(res)
    assert seq.frame_ids == (studio.frame_ids[0], studio.frame_ids[2])
    t = studio.frame_ids[2]
    np.testing.assert_array_equal(read_images(seq, t), read_images(studio, t))


def test_single_frame_video(studio, tmp_path):
    seq_dir = export.export_nersemble_v2(studio, tmp_path / "v2", backgrounds={})
    for s in studio.serials:
        frame = read_images(studio, studio.frame_ids[0], [s])[0]
        export.write_video(layouts.video_path(seq_dir, s), [frame], studio.fps)
    res = ingest_sequence(
        tmp_path / "v2", studio.subject, studio.sequence, tmp_path / "out", fps=25.0, progress=False
    )
    seq = _open(res)
    assert seq.frame_ids == (0,)
    assert psnr(read_images(seq, 0), read_images(studio, studio.frame_ids[0])) > 30


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_corrupt_video_is_refused_naming_the_file(studio, tmp_path):
    seq_dir = export.export_nersemble_v2(studio, tmp_path / "v2", backgrounds={})
    bad = layouts.video_path(seq_dir, studio.serials[2])
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(CaptureError, match=rf"{bad.name}: unreadable video|{bad.name}: video"):
        ingest_sequence(
            tmp_path / "v2", studio.subject, studio.sequence, tmp_path / "out", progress=False
        )
    # a truncated video: its header is fine, its frames are not all there
    good = layouts.video_path(seq_dir, studio.serials[0])
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(CaptureError, match=bad.name):
        ingest_sequence(
            tmp_path / "v2", studio.subject, studio.sequence, tmp_path / "out", progress=False
        )
    assert not layout.sequence_file(
        layout.sequence_dir(tmp_path / "out", studio.subject, studio.sequence)
    ).exists()


def test_video_size_must_match_the_calibration(studio, tmp_path):
    export.export_nersemble_v2(studio, tmp_path / "v2", backgrounds={})
    calib = layouts.kit_calibration_path(layout.subject_dir(tmp_path / "v2", studio.subject))
    cams = read_camera_params(calib)
    write_camera_params(
        calib, [replace(c, width=2 * studio.width, height=2 * studio.height) for c in cams.values()]
    )
    with pytest.raises(CaptureError, match=r"images are 64x80 but the calibration says 128x160"):
        ingest_sequence(
            tmp_path / "v2", studio.subject, studio.sequence, tmp_path / "out", progress=False
        )


def test_unknown_camera_is_refused(studio, tmp_path):
    export.export_nersemble_v1(studio, tmp_path / "v1")
    with pytest.raises(CaptureError, match="no images of camera"):
        ingest_sequence(
            tmp_path / "v1",
            studio.subject,
            studio.sequence,
            tmp_path / "out",
            serials=["999"],
            progress=False,
        )


# --------------------------------------------------------------------------------------------
# Undistortion, colour, rerun
# --------------------------------------------------------------------------------------------


def test_distortion_applied_then_removed_brings_pixels_back(tiny_studio, studio, tmp_path):
    root = tmp_path / "capture"
    shutil.copytree(tiny_studio.capture_root, root)
    seq_dir = layout.sequence_dir(root, studio.subject, studio.sequence)
    # barrel distortion moving the image corners by about 3 pixels (the rig's lenses are long)
    K = studio.cameras[studio.serials[0]].K
    r = np.hypot(studio.width / 2, studio.height / 2) / K[0, 0]
    dist = np.array([-3.0 / (K[0, 0] * r**3), 0.0, 0.002, -0.001, 0.0])
    cams = [replace(studio.cameras[s], distortion=dist) for s in studio.serials]
    write_camera_params(layout.calibration_path(layout.subject_dir(root, studio.subject)), cams)
    # a smooth pattern (bilinear resampling keeps it) shifted by the distortion
    v, u = np.mgrid[: studio.height, : studio.width].astype(np.float64)
    ref = np.stack(
        [128 + 100 * np.sin(u / 5.0), 128 + 100 * np.cos(v / 6.0), 128 + 60 * np.sin((u + v) / 7)],
        axis=-1,
    ).astype(np.uint8)
    for t in studio.frame_ids:
        for cam in cams:
            save_image(layout.image_path(seq_dir, t, cam.serial), undistort.distort_image(ref, cam))
    lm_ref = read_landmarks(studio)
    for c, cam in enumerate(cams):
        lm = lm_ref[c].copy()
        rays = np.concatenate([lm[..., :2].reshape(-1, 2), np.ones((lm[..., 0].size, 1))], -1)
        rays = rays @ np.linalg.inv(cam.K).T
        uv, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), cam.K, cam.distortion)
        lm[..., :2] = uv.reshape(lm.shape[0], 68, 2)
        np.save(layout.landmarks_path(seq_dir, cam.serial), lm)
    res = ingest_sequence(root, studio.subject, studio.sequence, tmp_path / "out", progress=False)
    seq = _open(res)
    inner = (slice(6, -6), slice(6, -6))
    for t in studio.frame_ids:
        got = read_images(seq, t).astype(float)
        raw = np.stack(
            [read_image(layout.image_path(seq_dir, t, s)) for s in studio.serials]
        ).astype(float)
        err = np.abs(got - ref)[:, inner[0], inner[1]].mean()
        err_raw = np.abs(raw - ref)[:, inner[0], inner[1]].mean()
        assert err < 1.5 and err < err_raw / 5
    for s in studio.serials:
        assert seq.cameras[s].distortion is None
        np.testing.assert_allclose(seq.cameras[s].K, studio.cameras[s].K)
    # landmarks move with the pixels: the distorted ones come back to where they were
    assert np.abs(read_landmarks(seq)[..., :2] - lm_ref[..., :2]).max() < 0.02


def test_colour_functions_restore_within_two_levels(colour_matrices, studio) -> None:
    img = read_images(studio, studio.frame_ids[0])[0]
    for m in colour_matrices.values():
        back = colour.apply_cheung2004(export.inverse_cheung3(img, m), m)
        assert np.abs(back.astype(int) - img.astype(int)).max() <= 2
        aff = np.hstack([m, np.full((3, 1), 0.02)])
        back = colour.apply_affine(export.inverse_affine(img, aff), aff)
        assert np.abs(back.astype(int) - img.astype(int)).max() <= 2
    # a 10-term Cheung-2004 matrix goes through colour-science's expansion: identity on the
    # linear terms leaves the image as it is
    m10 = np.zeros((3, 10))
    m10[:, :3] = np.eye(3)
    back = colour.apply_cheung2004(img, m10)
    assert np.abs(back.astype(int) - img.astype(int)).max() <= 1


def test_rerun_skips_what_is_done(studio, tmp_path, caplog):
    export.export_nersemble_v2(studio, tmp_path / "v2", backgrounds={})
    args = (tmp_path / "v2", studio.subject, studio.sequence, tmp_path / "out")
    first = ingest_sequence(*args, progress=False)
    img = layout.image_path(first.sequence_dir, 0, studio.serials[0])
    mtime = img.stat().st_mtime_ns
    again = ingest_sequence(*args, progress=False)
    assert again.skipped and not first.skipped and img.stat().st_mtime_ns == mtime
    # other settings: done again
    other = ingest_sequence(*args, downscale=2, progress=False)
    assert not other.skipped and _open(other).image_size == (32, 40)
    # an interrupted run resumes: cameras marked done are not decoded again
    shutil.rmtree(other.sequence_dir)
    stage = other.sequence_dir.with_name(f".{studio.sequence}{ingest.STAGING_SUFFIX}")
    calls = []
    real = video.decode_video

    def fail_on_last(path, sink, *a, **k):
        calls.append(Path(path).name)
        if Path(path).name == f"cam_{studio.serials[-1]}.mp4":
            raise CaptureError(f"{path}: interrupted")
        return real(path, sink, *a, **k)

    mp = pytest.MonkeyPatch()
    mp.setattr(video, "decode_video", fail_on_last)
    with pytest.raises(CaptureError, match="interrupted"):
        ingest_sequence(*args, progress=False, workers=1)
    mp.undo()
    assert stage.is_dir() and not other.sequence_dir.exists()
    with caplog.at_level(logging.INFO, logger="talkhead"):
        done = ingest_sequence(*args, progress=False, workers=1)
    assert f"{len(studio.serials) - 1} of {len(studio.serials)} cameras already done" in caplog.text
    assert not stage.exists() and _open(done).frame_ids == tuple(range(studio.n_frames))


def test_calibration_in_centimetres_stops_before_decoding(studio, tmp_path, monkeypatch):
    export.export_nersemble_v2(studio, tmp_path / "v2", backgrounds={})
    calib = layouts.kit_calibration_path(layout.subject_dir(tmp_path / "v2", studio.subject))
    cams = read_camera_params(calib)
    scaled = []
    for c in cams.values():
        T = c.world_2_cam.copy()
        T[:3, 3] *= 100.0
        scaled.append(replace(c, world_2_cam=T))
    write_camera_params(calib, scaled)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a video was decoded")

    monkeypatch.setattr(ingest, "decode_videos", no_decoding)
    with pytest.raises(CaptureError) as info:
        ingest_sequence(
            tmp_path / "v2", studio.subject, studio.sequence, tmp_path / "out", progress=False
        )
    msg = str(info.value)
    assert msg.startswith(f"{calib}:")
    assert "calibration_units" in msg and "results" not in msg
    assert not layout.sequence_dir(tmp_path / "out", studio.subject, studio.sequence).exists()
