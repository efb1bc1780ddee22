"""The Snakemake report opens in a real browser: headless Chromium loads it and every embedded
figure, video and table page loads (images decode to a size, videos have a duration and a
first frame, table pages hold a table), with no uncaught error.

Snakemake's self-contained report (``--report report.html``) is one page whose script holds
``var results = {<path>: {"mime_type", "data_uri", ...}}``: every item is a ``data:`` URI that
the report's viewer puts into an ``<img>``, ``<video>`` or ``<iframe>``. The check does the
same for each item in the page itself, driven through the DevTools protocol over a pipe
(``--remote-debugging-pipe``: JSON messages ended by NUL on file descriptors 3 and 4; no
WebSocket client needed). Without Chromium the tests skip (``scripts/setup.sh`` installs
Debian's ``chromium`` when run as root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _chromium() -> str | None:
    """The chromium binary, if there is one that runs (Ubuntu's apt package is a wrapper of a
    snap that may not)."""
    path = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )
    if path is None:
        return None
    try:
        res = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if res.returncode == 0 and "Chromium" in res.stdout else None


CHROMIUM = _chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium (scripts/setup.sh installs Debian's chromium when run as root)",
)

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
)

# Loads every item of the report's `results` the way its viewer shows it; resolves to
# [{name, mime, ok, detail}].
CHECK_ITEMS = r"""
(async () => {
  const timeout = (ms, what) => new Promise((_, no) => setTimeout(() => no(what), ms));
  const items = (typeof results === "object" && results) ? results : {};
  const out = [];
  for (const [key, item] of Object.entries(items)) {
    const mime = item.mime_type || "", uri = item.data_uri || "";
    const row = {name: key, mime, ok: false, detail: ""};
    try {
      if (!uri.startsWith("data:")) throw "no embedded data";
      if (mime.startsWith("image/")) {
        const img = new Image();
        img.src = uri;
        await Promise.race([img.decode(), timeout(20000, "image load timed out")]);
        row.ok = img.naturalWidth > 0 && img.naturalHeight > 0;
        row.detail = `${img.naturalWidth}x${img.naturalHeight}`;
      } else if (mime.startsWith("video/")) {
        const v = document.createElement("video");
        v.muted = true; v.preload = "auto";
        const loaded = new Promise((yes, no) => {
          v.onloadeddata = yes;
          v.onerror = () => no("video error " + (v.error ? v.error.code : "?"));
        });
        v.src = uri;
        document.body.appendChild(v);
        await Promise.race([loaded, timeout(30000, "video load timed out")]);
        row.ok = v.readyState >= 2 && v.duration > 0 && v.videoWidth > 0;
        row.detail = `duration ${v.duration} s, ${v.videoWidth}x${v.videoHeight}, ` +
                     `readyState ${v.readyState}`;
        v.remove();
      } else if (mime === "text/html") {
        const text = await (await fetch(uri)).text();
        const doc = new DOMParser().parseFromString(text, "text/html");
        const external = [...doc.querySelectorAll("[src],[href]")]
          .map(e => e.getAttribute("src") || e.getAttribute("href"))
          .filter(u => u && !u.startsWith("data:") && !u.startsWith("#"));
        const tables = doc.querySelectorAll("table").length;
        row.ok = external.length === 0;
        row.detail = `${tables} table(s)` + (external.length ? `; external: ${external}` : "");
        row.tables = tables;
      } else {
        const blob = await (await fetch(uri)).blob();
        row.ok = blob.size > 0;
        row.detail = `${blob.size} bytes`;
      }
    } catch (e) {
      row.detail = String(e);
    }
    out.push(row);
  }
  return {items: out, text: document.body ? document.body.innerText.length : 0,
          hasResults: typeof results === "object"};
})()
"""


class Chromium:
    """Headless Chromium driven through the DevTools protocol over a pipe."""

    def __init__(self, profile: Path) -> None:
        r_in, w_in = os.pipe()  # we write commands, Chromium reads them on fd 3
        r_out, w_out = os.pipe()  # Chromium writes replies on fd 4
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=lambda: (os.dup2(r_in, 3), os.dup2(w_out, 4)) and None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(r_in)
        os.close(w_out)
        self.w, self.r = os.fdopen(w_in, "wb"), os.fdopen(r_out, "rb")
        self.next_id = 0
        self.events: list[dict] = []
        self._buffer = b""

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self.r.fileno(), 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.w.write(json.dumps(msg).encode() + b"\0")
        self.w.flush()
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.w.close()
        self.r.close()


def open_report(report: Path, profile: Path, timeout: float = 120.0) -> dict:
    """Open ``report`` in headless Chromium and load every item of it.

    Returns:
        ``{"items": [{name, mime, ok, detail}], "errors": [uncaught exceptions and console
        errors], "text": characters of text the page shows, "hasResults": bool}``.
    """
    browser = Chromium(profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Page", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": report.resolve().as_uri()}, session=session)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = browser.send(
                "Runtime.evaluate",
                {"expression": "document.readyState", "returnByValue": True},
                session=session,
            )["result"].get("value")
            if state == "complete":
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"{report}: not loaded after {timeout} s")
        time.sleep(1.0)  # the viewer renders after load
        res = browser.send(
            "Runtime.evaluate",
            {"expression": CHECK_ITEMS, "awaitPromise": True, "returnByValue": True},
            session=session,
        )
        if "exceptionDetails" in res:
            raise AssertionError(f"the check script failed: {res['exceptionDetails']}")
        out = res["result"]["value"]
        errors = []
        for ev in browser.events:
            if ev.get("method") == "Runtime.exceptionThrown":
                errors.append(ev["params"]["exceptionDetails"].get("text", "exception"))
            elif ev.get("method") == "Log.entryAdded" and ev["params"]["entry"]["level"] == "error":
                errors.append(ev["params"]["entry"].get("text", "error"))
            elif ev.get("method") == "Runtime.consoleAPICalled" and ev["params"]["type"] == "error":
                errors.append(str(ev["params"].get("args", "console error"))[:300])
        out["errors"] = errors
        return out
    finally:
        browser.close()


def failures(result: dict) -> list[str]:
    """The items that did not load, one line each, and the page's errors."""
    bad = [f"{i['name']} ({i['mime']}): {i['detail']}" for i in result["items"] if not i["ok"]]
    return bad + [f"page error: {e}" for e in result["errors"]]


# ---- the check itself, on a report made here ---------------------------------------------------

MINI_SNAKEFILE = """
rule all:
    input: "out/fig.png", "out/broken.png", "out/clip.mp4", "out/table.html"

rule make:
    output:
        fig=report("out/fig.png", category="A", labels={"figure": "fig"}),
        broken=report("out/broken.png", category="A", labels={"figure": "broken"}),
        clip=report("out/clip.mp4", category="A", labels={"figure": "clip"}),
        table=report("out/table.html", category="B", labels={"figure": "table"}),
    shell:
        "mkdir -p out && cp fig.png {output.fig} && cp broken.png {output.broken} && "
        "cp clip.mp4 {output.clip} && cp table.html {output.table}"
"""


@needs_chromium
def test_the_check_finds_what_does_not_load(tmp_path):
    """A report with a good and a corrupt image, a video and a table page: the corrupt image
    is the one failure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import trimesh

    from talkhead.qc.tables import table3_html
    from talkhead.training.render import Panel, render_panels, write_video

    work = tmp_path / "mini"
    work.mkdir()
    fig = plt.figure(figsize=(2, 1))
    fig.savefig(work / "fig.png")
    plt.close(fig)
    (work / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 10)
    mesh = trimesh.creation.icosphere(subdivisions=1, radius=0.1)
    verts = np.repeat(np.asarray(mesh.vertices, np.float32)[None], 12, axis=0)
    write_video(
        work / "clip.mp4",
        render_panels([Panel(verts, mesh.faces, "a"), Panel(verts, mesh.faces, "b")], 32),
        25.0,
        0.1 * np.sin(np.arange(8000) / 8.0),
        16000,
    )
    (work / "table.html").write_text(table3_html({}), encoding="utf-8")
    (work / "Snakefile").write_text(MINI_SNAKEFILE)
    snakemake = [sys.executable, "-m", "snakemake", "--cores", "1"]
    for args in ([], ["--report", "report.html"]):
        res = subprocess.run([*snakemake, *args], cwd=work, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-3000:]
    result = open_report(work / "report.html", tmp_path / "profile")
    assert result["hasResults"] and result["text"] > 0
    by_name = {i["name"]: i for i in result["items"]}
    assert set(by_name) == {"out/fig.png", "out/broken.png", "out/clip.mp4", "out/table.html"}
    assert [f.split(" ")[0] for f in failures(result)] == ["out/broken.png"]
    clip = by_name["out/clip.mp4"]["detail"]  # 12 frames at 25 fps, 0.5 s of sound
    assert 0.47 < float(clip.split()[1]) < 0.6 and "64x32" in clip, clip
    assert by_name["out/table.html"]["tables"] == 1


# ---- the workflow's report ---------------------------------------------------------------------


@pytest.mark.slow
@needs_chromium
def test_the_workflow_report_opens_in_chromium(tiny_run, tmp_path):
    """The tiny run's self-contained report: every QC figure, video and table page loads."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "1",
            "--report",
            "results/report.html",
            "--configfile",
            "config/tiny.yaml",
        ],
        cwd=tiny_run,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    result = open_report(tiny_run / "results/report.html", tmp_path / "profile", timeout=300)
    assert result["hasResults"] and result["text"] > 0
    assert not failures(result), "\n".join(failures(result))
    names = [i["name"] for i in result["items"]]
    # every model's video plays (the five of Table 1, FaceTalk on NPHM codes included)
    assert sum(n.endswith("held_out.mp4") for n in names) == 5
    assert sum(n.endswith(".png") for n in names) >= 10
    for item in result["items"]:
        if Path(item["name"]).name.startswith("table") and item["mime"] == "text/html":
            assert item["tables"] >= 1, item
