"""The studio's speed where a person waits: the face grid of a 5,000-face set, and the merge preview.

Prints JSON. Against the real ``facetwin studio`` (a subprocess) in Debian's headless Chromium:

- grid: first contentful paint of the face set page of a 5,000-face set (page 1 of 240 faces), and when
  every thumbnail on screen has loaded; cold (thumbnails not made yet) and warm (made, and a fresh
  browser context so none is in the browser's cache); plus the server's time for the page's HTML.
  The set is 5,000 rows made from real faces of cap12 (each crop hard-linked under new frame numbers).
- merge: one frame of cap13 at 400x300 and of the same frames padded to 1280x720: the first preview of
  a frame (decode, detect, mesh, model, blend, watermark), and the round trip after a settings change
  as the page does it (change event -> htmx fragment -> swapped JPEG loaded), median of ``--changes``.
  Server-Timing splits the server's part.

    .venv/bin/python bench/studio.py [--faces 5000] [--changes 7]

It trains a throwaway ``lightweight`` model for a few iterations first: timing does not depend on how well
it is trained.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from facetwin.demo_data import ensure_demo_clips
from facetwin.extract import extract
from facetwin.options import ExtractOptions, RunOptions, TrainConfig
from facetwin.studio.project import Project
from facetwin.train.trainer import train

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]  # fmt: skip


def big_faceset(source: Path, target: Path, faces: int) -> None:
    """A face set of ``faces`` rows: the real rows of ``source`` repeated under new frame numbers, crops hard-linked."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("cache"))
    db = sqlite3.connect(target / "faceset.db", isolation_level=None)
    columns = [r[1] for r in db.execute("PRAGMA table_info(faces)") if r[1] != "id"]
    rows = db.execute(f"SELECT {', '.join(columns)} FROM faces").fetchall()
    at = {name: i for i, name in enumerate(columns)}
    db.execute("BEGIN")
    made, copy = len(rows), 1
    while made < faces:
        for row in rows:
            if made >= faces:
                break
            new = list(row)
            new[at["frame_index"]] = row[at["frame_index"]] + 100_000 * copy
            new[at["filename"]] = f"{row[at['source_id']]:04d}_{new[at['frame_index']]:07d}_{row[at['face_index']]}.png"
            os.link(target / "faces" / row[at["filename"]], target / "faces" / new[at["filename"]])
            db.execute(f"INSERT INTO faces ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", new)
            made += 1
        copy += 1
    db.execute("COMMIT")
    db.close()


def clip(source: Path, target: Path, size: tuple[int, int], frames: int) -> Path:
    """The first ``frames`` frames of ``source``, scaled to fit ``size`` and padded to it (H.264)."""
    import cv2

    with av.open(str(source)) as container, av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i, frame in enumerate(container.decode(video=0)):
            if i == frames:
                break
            rgb = frame.to_ndarray(format="rgb24")
            scale = min(size[0] / rgb.shape[1], size[1] / rgb.shape[0])
            scaled = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_CUBIC)
            canvas = np.zeros((size[1], size[0], 3), np.uint8)
            y, x = (size[1] - scaled.shape[0]) // 2, (size[0] - scaled.shape[1]) // 2
            canvas[y : y + scaled.shape[0], x : x + scaled.shape[1]] = scaled
            video = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            video.pts, video.time_base = i, Fraction(1, 25)
            for packet in stream.encode(video):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return target


def start_studio(project: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "facetwin", "studio", str(project), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = re.search(r"open (http://\S+)", line)
            if match:
                found.append(match.group(1))
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(180):
        process.kill()
        raise RuntimeError("studio did not start")
    return process, found[0]


def grid_timings(browser, url: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url + "facesets/big", wait_until="commit")
    page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0")
    fcp = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")
    page.wait_for_function("""Array.from(document.querySelectorAll('.face img')).filter(i => {
        const r = i.getBoundingClientRect(); return r.top < innerHeight; }).every(i => i.complete && i.naturalWidth > 0)""",
                           timeout=300_000)  # fmt: skip
    on_screen = page.evaluate("performance.now()")
    tiles = page.evaluate("document.querySelectorAll('.face').length")
    context.close()
    return {"first_contentful_paint_ms": round(fcp, 1), "thumbnails_on_screen_loaded_ms": round(on_screen, 1), "tiles_in_page": tiles}


def html_ms(url: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        urllib.request.urlopen(url + "facesets/big", timeout=120).read()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def merge_timings(browser, url: str, media: str, changes: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(url + f"merge?model=M&media={media}")
    t0 = time.perf_counter()
    page.fill("#frame", "12")
    page.dispatch_event("#frame", "input")
    page.wait_for_selector("img#swapped[src*='frame=12']", timeout=300_000)
    page.wait_for_function("document.querySelector('img#swapped').complete && document.querySelector('img#swapped').naturalWidth > 0",
                           timeout=300_000)  # fmt: skip
    first = (time.perf_counter() - t0) * 1000
    size = page.evaluate("[document.querySelector('img#swapped').naturalWidth, document.querySelector('img#swapped').naturalHeight]")
    round_trips, server = [], []
    for i in range(changes):
        feather = 8 + i * 3
        elapsed = page.evaluate("""(feather) => new Promise(resolve => {
            const start = performance.now();
            document.body.addEventListener('htmx:afterSwap', function swapped() {
                document.body.removeEventListener('htmx:afterSwap', swapped);
                const img = document.querySelector('img#swapped');
                const done = () => resolve(performance.now() - start);
                if (img.complete && img.naturalWidth > 0) done(); else img.addEventListener('load', done, {once: true});
            });
            const input = document.querySelector('#feather');
            input.value = feather;
            input.dispatchEvent(new Event('change', {bubbles: true}));
        })""", feather)  # fmt: skip
        round_trips.append(elapsed)
        entry = page.evaluate("""performance.getEntriesByType('resource').filter(e => e.name.includes('/merge/swapped.jpg')).pop()
            .serverTiming.map(t => [t.name, t.duration])""")  # fmt: skip
        server.append(dict(entry))
    page.close()
    return {
        "frame_size": size, "first_preview_ms": round(first, 1),
        "settings_change_round_trip_ms": {"median": round(statistics.median(round_trips), 1), "max": round(max(round_trips), 1),
                                          "runs": [round(t, 1) for t in round_trips]},
        "server_ms_median": {k: round(statistics.median(s[k] for s in server), 1) for k in server[0]},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=7)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    clips = ensure_demo_clips()
    with tempfile.TemporaryDirectory(prefix="facetwin-bench-studio-") as scratch_name:
        scratch = Path(scratch_name)
        project = Project.open(scratch / "project")
        extract([clips.franck], project.faceset("A"), ExtractOptions(every=20, max_faces=1))
        extract([clips.cap12], project.faceset("B"), ExtractOptions(every=10, max_faces=1))
        big_faceset(project.faceset("B"), project.faceset("big"), args.faces)
        config = TrainConfig(str(project.faceset("A")), str(project.faceset("B")), model="lightweight", batch_size=4)
        train(project.model("M"), config, RunOptions(iterations=2, save_every=2, preview_every=10**6, workers=0))
        small = clip(clips.cap13, project.media_dir / "cap13_400x300.mp4", (400, 300), 40)
        large = clip(clips.cap13, project.media_dir / "cap13_1280x720.mp4", (1280, 720), 40)
        process, url = start_studio(project.root)
        try:
            for media in (small, large):  # the content gate checks each file once, before any page offers it
                data = f"path={project.relative(media)}".encode()
                request = urllib.request.Request(url + "media/add", data=data, method="POST")
                assert b"passed" in urllib.request.urlopen(request, timeout=300).read()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                cold = grid_timings(browser, url)
                warm = grid_timings(browser, url)
                result = {
                    "grid": {"faces": args.faces, "page_html_ms_median": html_ms(url), "cold": cold, "warm": warm},
                    "merge": {name: merge_timings(browser, url, project.relative(media), args.changes)
                              for name, media in (("400x300", small), ("1280x720", large))},
                    "cpu_cores": os.cpu_count(),
                }  # fmt: skip
                browser.close()
        finally:
            process.terminate()
            process.wait(60)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
