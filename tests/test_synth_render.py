"""Ray-cast renderer and procedural textures of the synthetic studio, on analytic shapes."""

from __future__ import annotations

import numpy as np
import pytest

from talkhead.capture.masks import LAPA_LABELS
from talkhead.geometry.cameras import (
    Camera,
    intrinsics_from_fov,
    look_at,
    pixel_grid,
    ring_rig,
    unproject,
)
from talkhead.synth import texture as tx
from talkhead.synth.render import (
    RenderScene,
    Surface,
    box_mesh,
    prerender_backdrop,
    project_landmarks,
    render_view,
    render_views,
    uv_sphere,
    vertex_labels_from_masks,
    visible_points,
)

CENTER = np.array([0.012, -0.021, 0.008])
RADIUS = 0.09


@pytest.fixture(scope="module")
def sphere():
    v, f = uv_sphere(RADIUS, 64, 128, center=CENTER)
    return v, f


@pytest.fixture(scope="module")
def cams():
    return ring_rig(3, 96, 120, 22.0, radius=0.9, yaw_span_deg=90.0)


def _plane_distance(points, v, f, face_ids):
    tri = v[f[face_ids]]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return np.abs(((points - tri[:, 0]) * n).sum(1))


def _inside_triangle(points, v, f, face_ids, tol=1e-6):
    tri = v[f[face_ids]]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    bv = (d11 * d20 - d01 * d21) / den
    bw = (d00 * d21 - d01 * d20) / den
    return (bv >= -tol) & (bw >= -tol) & (bv + bw <= 1 + tol)


def test_depth_backprojects_onto_mesh_and_normals_match(sphere, cams):
    v, f = sphere
    scene = RenderScene([Surface(v, f, (0.8, 0.6, 0.5))])
    for cam in cams:
        out = render_view(scene, cam, supersample=1)
        d = out["depth"]
        m = d > 0
        assert m.sum() > 500
        # back-project with the package's camera model
        P = unproject(pixel_grid(cam.width, cam.height)[m], d[m], cam.K, cam.world_2_cam)
        fid = out["face_ids"][m]
        assert (fid >= 0).all() and (out["face_ids"][~m] == -1).all()
        assert _plane_distance(P, v, f, fid).max() < 1e-4
        assert _inside_triangle(P, v, f, fid, tol=1e-4).all()
        r = np.linalg.norm(P - CENTER, axis=1)
        assert r.max() < RADIUS + 1e-5 and r.min() > RADIUS * 0.998
        # normals: camera frame, unit, facing the camera, equal to the analytic ones
        n_cam = out["normal"][m]
        assert np.allclose(np.linalg.norm(n_cam, axis=1), 1.0, atol=1e-5)
        pc = P @ cam.R.T + cam.t  # camera-frame points = view rays
        assert ((n_cam * pc).sum(1) < 0).mean() > 0.99
        n_world = n_cam @ cam.R
        analytic = (P - CENTER) / r[:, None]
        ang = np.degrees(np.arccos(np.clip((n_world * analytic).sum(1), -1, 1)))
        assert ang.max() < 1.0
        assert (out["normal"][~m] == 0).all()


def test_alpha_is_exact_coverage_of_a_box_front_face():
    W, H = 80, 64
    K = intrinsics_from_fov(W, H, 30.0)
    cam = Camera("0", K, look_at((0, 0, 1.0), (0, 0, 0)), W, H)
    size = np.array([0.2137, 0.1311, 0.1])
    v, f, _ = box_mesh(size)
    scene = RenderScene([Surface(v, f, (0.5, 0.5, 0.5), smooth=False)])
    out = render_view(scene, cam, supersample=2, adaptive=False)
    assert np.array_equal(render_view(scene, cam, supersample=2)["alpha"], out["alpha"])
    # analytic footprint of the front face (z = +0.05) in pixels
    hx, hy = size[:2] / 2
    z = 1.0 - size[2] / 2
    u0, u1 = K[0, 2] - K[0, 0] * hx / z, K[0, 2] + K[0, 0] * hx / z
    v0, v1 = K[1, 2] - K[1, 1] * hy / z, K[1, 2] + K[1, 1] * hy / z
    uv = pixel_grid(W, H)
    expected = np.zeros((H, W))
    for ox in (-0.25, 0.25):
        for oy in (-0.25, 0.25):
            x, y = uv[..., 0] + ox, uv[..., 1] + oy
            expected += ((x > u0) & (x < u1) & (y > v0) & (y < v1)) / 4
    assert 0 < expected.mean() < 1 and ((expected > 0) & (expected < 1)).any()
    assert np.array_equal(out["alpha"], np.rint(expected * 255).astype(np.uint8))
    # the depth of a fronto-parallel face is constant and exact; flat normal is +z world
    m = out["depth"] > 0
    assert np.allclose(out["depth"][m], z, atol=1e-6)
    assert np.allclose(out["normal"][m], [0, 0, -1], atol=1e-6)


def test_point_on_mesh_projects_where_its_ray_hits(sphere, cams):
    v, f = sphere
    scene = RenderScene([Surface(v, f)])
    rng = np.random.default_rng(1)
    cam = cams[1]
    fid = rng.integers(0, len(f), 400)
    w = rng.dirichlet([1, 1, 1], 400)
    P = np.einsum("nk,nkd->nd", w, v[f[fid]])
    vis = visible_points(scene, cam, P)
    view = cam.center - P
    cos = ((P - CENTER) * view).sum(1) / RADIUS / np.linalg.norm(view, axis=1)
    clear = np.abs(cos) > 0.1  # away from the silhouette
    assert vis.any() and np.array_equal(vis[clear], cos[clear] > 0)
    sel = vis & clear
    uv, z = cam.project(P[sel])
    rays = np.concatenate([uv, np.ones((len(uv), 1))], 1) @ np.linalg.inv(cam.K).T @ cam.R
    hits = scene.cast(cam.center, rays)
    hit_points = cam.center + hits.t[:, None] * rays
    assert np.abs(hit_points - P[sel]).max() < 2e-6
    assert np.array_equal(hits.prim, fid[sel])
    assert np.allclose(hits.t, z, atol=1e-6)  # t is z-depth with these rays


def test_labels_follow_vertex_masks(sphere, cams):
    v, f = sphere
    rel = v - CENTER
    masks = {
        "face": np.arange(len(v)),
        "upper_lip": np.flatnonzero(rel[:, 1] > 0.02),
        "lower_lip": np.flatnonzero(rel[:, 1] < -0.02),
        "neck": np.flatnonzero(rel[:, 0] > 0.05),
    }
    labels = vertex_labels_from_masks(masks, len(v))
    assert labels.dtype == np.uint8 and labels.shape == (len(v),)
    assert (labels[masks["neck"]] == 0).all()
    scene = RenderScene([Surface(v, f, labels=labels)])
    cam = cams[1]
    out = render_view(scene, cam, supersample=1)
    m = out["depth"] > 0
    P = unproject(pixel_grid(cam.width, cam.height)[m], out["depth"][m], cam.K, cam.world_2_cam)
    lab = out["labels"][m]
    y, x = (P - CENTER)[:, 1], (P - CENTER)[:, 0]
    clear = np.abs(np.abs(y) - 0.02) > 0.005
    clear &= np.abs(x - 0.05) > 0.005
    exp = np.where(
        x > 0.05,
        0,
        np.where(
            y > 0.02, LAPA_LABELS["upper_lip"], np.where(y < -0.02, LAPA_LABELS["lower_lip"], 1)
        ),
    )
    assert np.array_equal(lab[clear], exp[clear])
    assert (out["labels"][~m] == 0).all()


def test_shading_is_view_independent_and_background_stays_out_of_alpha_and_depth(sphere, cams):
    v, f = sphere
    grid = tx.bake_texels(
        v,
        f,
        lambda p, fid, b: np.repeat(tx.fbm3(p, 60.0, 5, octaves=2)[:, None], 3, 1),
        resolution=3,
    )
    wv, wf, wuv = box_mesh((3.0, 3.0, 0.05), center=(0, 0, -1.0))
    wall = Surface(
        wv, wf, tx.ImageTexture(tx.backdrop_image(3, size=64), wuv / 0.5, wf), smooth=False
    )
    scene = RenderScene([Surface(v, f, grid), wall])
    out = render_views(scene, cams[:2], supersample=1)
    assert (out["alpha"] > 0).sum() == (out["depth"] > 0).sum()
    assert ((out["rgb"].sum(-1) > 0) & (out["alpha"] == 0)).mean() > 0.5  # backdrop visible
    assert (out["depth"] < 1.4).all()
    # a surface point seen by both cameras has the same colour in both
    a, b = cams[0], cams[1]
    m = out["depth"][0] > 0
    P = unproject(pixel_grid(a.width, a.height)[m], out["depth"][0][m], a.K, a.world_2_cam)
    uv, z = b.project(P)
    ui, vi = np.rint(uv).astype(int).T
    ok = (ui >= 0) & (ui < b.width) & (vi >= 0) & (vi < b.height)
    ok[ok] &= np.abs(out["depth"][1][vi[ok], ui[ok]] - z[ok]) < 2e-3
    ok &= np.abs(uv - np.rint(uv)).max(1) < 0.1  # nearly on a pixel centre of b
    assert ok.sum() > 20
    ca = out["rgb"][0][m][ok].astype(float)
    cb = out["rgb"][1][vi[ok], ui[ok]].astype(float)
    assert np.median(np.abs(ca - cb)) <= 3.0


def test_sensor_noise_and_gain():
    v, f = uv_sphere(0.1, 24, 48)
    scene = RenderScene([Surface(v, f, (0.5, 0.5, 0.5))])
    cam = ring_rig(1, 48, 40, 25.0)[0]
    clean = render_view(scene, cam, supersample=1)["rgb"].astype(float)
    noisy = render_view(scene, cam, supersample=1, noise_sigma=4.0, rng=np.random.default_rng(0))[
        "rgb"
    ].astype(float)
    inside = (clean > 10) & (clean < 245)
    assert 3.0 < np.std((noisy - clean)[inside]) < 5.0
    bright = render_view(scene, cam, supersample=1, gain=1.2)["rgb"].astype(float)
    assert np.allclose(bright[inside & (clean < 200)], 1.2 * clean[inside & (clean < 200)], atol=1)


def test_landmarks_project_exactly_and_occluded_ones_get_zero_confidence(sphere, cams):
    v, f = sphere
    scene = RenderScene([Surface(v, f)])
    rng = np.random.default_rng(0)
    fid = rng.integers(0, len(f), (2, 68))
    w = rng.dirichlet([1, 1, 1], (2, 68))
    lm = np.einsum("tlk,tlkd->tld", w, v[f[fid]])
    out = project_landmarks(lm, cams, [scene, scene])
    assert out.shape == (3, 2, 68, 3) and out.dtype == np.float32
    for c, cam in enumerate(cams):
        uv, _ = cam.project(lm)
        view = cam.center - lm
        cos = ((lm - CENTER) * view).sum(-1) / RADIUS / np.linalg.norm(view, axis=-1)
        vis = out[c, ..., 2] > 0
        clear = np.abs(cos) > 0.1
        assert np.array_equal(vis[clear], cos[clear] > 0)
        assert (out[c, ..., 2][vis] >= 0.75).all()
        assert np.abs(out[c, ..., :2][vis] - uv[vis]).max() < 0.01
    # noise and outliers have the requested statistics
    big = np.repeat(lm, 50, axis=0)
    noisy = project_landmarks(
        big,
        cams[:1],
        scene,
        np.random.default_rng(1),
        noise_px=1.5,
        outlier_prob=0.05,
        outlier_px=30.0,
    )
    uv, _ = cams[0].project(big)
    vis = noisy[0, ..., 2] > 0
    err = np.linalg.norm(noisy[0, ..., :2] - uv, axis=-1)[vis]
    assert 0.03 < (err > 10).mean() < 0.07
    assert 1.3 < np.sqrt(np.mean(err[err < 10] ** 2) / 2) < 1.7
    # a detector that hallucinates occluded points reports them with low confidence
    g = project_landmarks(big, cams[:1], scene, np.random.default_rng(2), occluded_guess_prob=1.0)
    occ = ~vis
    assert (g[0, ..., 2][occ] > 0).all() and (g[0, ..., 2][occ] <= 0.3).all()


def test_texture_is_deterministic_and_varies_with_canonical_position(sphere):
    v, f = sphere
    rng = np.random.default_rng(0)
    p = rng.normal(size=(2000, 3)) * 0.05
    for region in range(len(tx.REGIONS)):
        w = np.zeros((len(p), len(tx.REGIONS)))
        w[:, region] = 1
        a = tx.head_albedo(p, w, seed=3)
        assert a.shape == (2000, 3) and a.dtype == np.float32
        assert (a >= 0).all() and (a <= 1).all()
        assert np.array_equal(a, tx.head_albedo(p, w, seed=3))
        assert (a.std(axis=0) / a.mean(axis=0)).max() > 0.05  # a pattern, not a flat colour
        assert not np.allclose(a, tx.head_albedo(p + 0.003, w, seed=3), atol=1e-3)
    skin = np.zeros((len(p), len(tx.REGIONS)))
    skin[:, 0] = 1
    assert not np.allclose(tx.head_albedo(p, skin, 3), tx.head_albedo(p, skin, 4), atol=0.02)

    # baked texels reproduce the direct evaluation at grid points and are continuous
    def skin_fn(q, fid, b):
        return tx.head_albedo(q, np.tile(skin[0], (len(q), 1)), 3)

    grid = tx.bake_texels(v, f, skin_fn, 4)
    fids = np.arange(0, len(f), 97)
    bary = np.array([[0.25, 0.5]] * len(fids))
    pts = np.einsum("k,nkd->nd", [0.25, 0.25, 0.5], v[f[fids]])
    direct = skin_fn(pts, None, None)
    assert np.allclose(grid(fids, bary), direct, atol=1e-6)
    # the same point on an edge shared by two triangles gets the same colour from both
    e = {}
    for fi, tri in enumerate(f[:2000]):
        for k in range(3):
            key = tuple(sorted((tri[k], tri[(k + 1) % 3])))
            e.setdefault(key, []).append((fi, k))
    pairs = [val for val in e.values() if len(val) == 2][:200]
    cols = []
    for (fa, ka), (fb, kb) in pairs:
        out = []
        for fi, k in ((fa, ka), (fb, kb)):
            b3 = np.zeros(3)
            a_, b_ = f[fi][k], f[fi][(k + 1) % 3]
            b3[k], b3[(k + 1) % 3] = (0.3, 0.7) if a_ < b_ else (0.7, 0.3)
            out.append(grid(np.array([fi]), b3[None, 1:])[0])
        cols.append(out)
    cols = np.asarray(cols)
    assert np.allclose(cols[:, 0], cols[:, 1], atol=1e-5)


def test_iris_and_pupil_sit_on_the_eyeballs_forward_axis():
    v, f = uv_sphere(0.012, 24, 48, center=(0.03, 0.0, 0.0))
    masks = {"left_eyeball": np.arange(len(v))}
    eyes = tx.eye_frames_from_masks(v, masks)
    assert np.allclose(eyes[0].center, [0.03, 0, 0], atol=1e-4)
    w = tx.region_weights_from_masks(masks, len(v))
    assert np.allclose(w[:, tx.REGIONS.index("eyeball")], 1)
    dirs = np.array([[0, 0, 1.0], [0, 0.35, 0.9367], [1.0, 0, 0], [0, -1.0, 0]])
    pts = eyes[0].center + 0.012 * dirs
    col = tx.head_albedo(pts, np.tile(w[:1], (4, 1)), seed=1, eyes=eyes)
    lum = col.mean(1)
    assert lum[0] < 0.05  # pupil, black
    assert lum[2] > 0.6 and lum[3] > 0.6  # sclera, white
    assert 0.05 < lum[1] < lum[2]  # iris in between


def test_prerendered_backdrop_composites_like_one_scene(sphere, cams):
    v, f = sphere
    head = Surface(v, f, (0.8, 0.6, 0.5), labels=np.ones(len(v), np.uint8))
    wv, wf, wuv = box_mesh((3.0, 3.0, 0.05), center=(0, 0, -1.0))
    wall = Surface(
        wv, wf, tx.ImageTexture(tx.backdrop_image(3, size=64), wuv / 0.5, wf), smooth=False
    )
    bv, bf, _ = box_mesh((0.3, 0.1, 0.1), center=(0, -0.1, 0.05))  # occludes the sphere
    torso = Surface(bv, bf, (0.2, 0.3, 0.6))
    for cam in cams[:2]:
        for adaptive in (False, True):
            full = render_view(RenderScene([head, wall, torso]), cam, adaptive=adaptive)
            bd = prerender_backdrop(RenderScene([wall, torso]), cam)
            comp = render_view(RenderScene([head]), cam, adaptive=adaptive, backdrop=bd)
            for key in ("alpha", "depth", "normal", "labels", "face_ids"):
                assert np.array_equal(full[key], comp[key]), key
            diff = np.abs(full["rgb"].astype(int) - comp["rgb"].astype(int))
            assert diff.max() <= (1 if not adaptive else 255) and np.mean(diff > 1) < 0.01
            occluded = (full["alpha"] == 0) & (
                np.abs(full["rgb"].astype(float) - [51, 76, 153]).max(-1) < 60
            )
            assert occluded.any()  # the box hides part of the sphere
