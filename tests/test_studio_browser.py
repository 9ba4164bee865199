"""The studio in a real headless Chromium (Debian's, driven by Playwright): the whole job on the demo clips.

Add media, extract two face sets, drop three faces from the grid (gone from the face set on disk), train a
few iterations and watch the preview appear, change the merge settings on one frame and see the swapped
image change, render the video, and read "synthetic" on the outputs page. Screenshots of each page go to
$FACETWIN_STUDIO_SCREENSHOTS (the README's come from here) or the test's folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from studio_server import CHROMIUM, CHROMIUM_ARGS, StudioProcess

from facetwin.faceset import FaceSet

pytestmark = pytest.mark.slow  # it trains a model and converts a clip


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} missing: make test installs Debian's chromium (apt-get install chromium)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FACETWIN_STUDIO_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_for_job_done(page, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    """On a job page: wait until the live status says done (failing with the log otherwise)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = page.get_attribute("#job-state", "data-state")
        if state == "done":
            return
        if state in ("failed", "cancelled", "interrupted"):
            raise AssertionError(f"job {state}:\n{page.inner_text('#log')}")
        page.wait_for_timeout(500)
    raise AssertionError(f"job not done after {timeout_s} s:\n{page.inner_text('#log')}")


def test_the_whole_job_in_a_browser(browser, short_clips: dict[str, Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    screenshots = shots(tmp_path)
    project = tmp_path / "project"
    with StudioProcess(project) as studio:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(120_000)
        page.goto(studio.url)
        assert page.title().startswith("Project")

        # a bad request says why, in one line, on the page
        page.fill("input[name=faceset]", "X")
        page.click("#extract-form button[type=submit]")
        page.wait_for_selector("#messages .error:has-text('pick at least one media file')")

        # add media: upload both clips; each passes the content gate
        page.set_input_files("input[type=file]", [str(short_clips["a"]), str(short_clips["b"])])
        page.click("form.upload button[type=submit]")
        page.wait_for_selector("text=media/franck_6s.mp4: passed the content gate")
        page.wait_for_selector("text=media/cap12_6s.mp4: passed the content gate")
        assert (project / "media" / "franck_6s.mp4").read_bytes() == short_clips["a"].read_bytes()

        # extract A and B (every 3rd frame keeps it quick)
        for media, name in (("media/franck_6s.mp4", "A"), ("media/cap12_6s.mp4", "B")):
            page.goto(studio.url)
            page.check(f"input[name=media][value='{media}']")
            page.fill("input[name=faceset]", name)
            page.fill("input[name=every]", "3")
            page.fill("input[name=max_faces]", "1")
            page.click("#extract-form button[type=submit]")
            page.wait_for_url("**/jobs/*")
            wait_for_job_done(page, 300)
        page.screenshot(path=str(screenshots / "studio_job.png"))

        # the face set grid: drop three faces
        page.goto(studio.url + "facesets/A")
        before = int(page.inner_text("#total"))
        with FaceSet(project / "facesets" / "A") as store:
            assert len(store.entries()) == before > 10
        picked = [page.get_attribute(f"input.pick >> nth={i}", "value") for i in (1, 4, 7)]
        for i in (1, 4, 7):
            page.click(f"label.face >> nth={i}")
        assert page.inner_text("#picked") == "3"
        page.wait_for_function("Array.from(document.querySelectorAll('.face img')).every(i => i.complete && i.naturalWidth > 0)")
        page.screenshot(path=str(screenshots / "studio_faceset.png"))
        page.click("#drop")
        page.wait_for_selector("#grid-note:has-text('dropped 3 faces')")
        assert int(page.inner_text("#total")) == before - 3
        with FaceSet(project / "facesets" / "A") as store:
            names = {e.filename for e in store.entries()}
        assert len(names) == before - 3 and not names & set(picked), "gone from the face set on disk"
        assert not any((project / "facesets" / "A" / "faces" / name).exists() for name in picked)

        # train a few iterations; the preview appears on the training page
        page.goto(studio.url + "train")
        page.fill("#train-form input[name=model]", "AtoB")
        page.select_option("#train-form select[name=faceset_a]", "A")
        page.select_option("#train-form select[name=faceset_b]", "B")
        page.select_option("#train-form select[name=architecture]", "lightweight")
        page.fill("#train-form input[name=iterations]", "4")
        page.fill("#train-form input[name=batch_size]", "4")
        page.fill("#train-form input[name=preview_every]", "2")
        page.fill("#train-form input[name=save_every]", "2")
        page.click("#train-form button[type=submit]")
        page.wait_for_url("**/jobs/*")
        deadline = time.monotonic() + 300
        while page.goto(studio.url + "models/AtoB").status != 200:  # the model folder exists once training starts
            assert time.monotonic() < deadline, "training never created its model folder"
            page.wait_for_timeout(1000)
        preview = page.wait_for_selector("img#preview", timeout=300_000)
        page.wait_for_function("document.querySelector('img#preview').naturalWidth > 0")
        assert preview.is_visible()
        page.wait_for_selector("#live-status:not(:has(.state-running))", timeout=300_000)
        page.screenshot(path=str(screenshots / "studio_training.png"), full_page=True)

        # merge: one frame, two settings, two different swapped images
        page.goto(studio.url + "merge?model=AtoB&media=media/franck_6s.mp4")
        page.fill("#frame", "20")
        page.dispatch_event("#frame", "input")
        page.wait_for_selector("img#swapped[src*='frame=20']")
        page.wait_for_function("document.querySelector('img#swapped').complete && document.querySelector('img#swapped').naturalWidth > 0")
        first_src = page.get_attribute("img#swapped", "src")
        first = page.locator("img#swapped").screenshot()
        page.fill("#feather", "30")
        page.select_option("#colour", "none")
        page.wait_for_function(f"document.querySelector('img#swapped').getAttribute('src') !== {first_src!r}")
        page.wait_for_function("document.querySelector('img#swapped').complete && document.querySelector('img#swapped').naturalWidth > 0")
        assert "feather=30" in (page.get_attribute("img#swapped", "src") or "")
        second = page.locator("img#swapped").screenshot()
        assert first != second, "the swapped frame changed with the settings"
        page.screenshot(path=str(screenshots / "studio_merge.png"), full_page=True)

        # render the whole video with those settings, then the outputs page says it is synthetic
        page.click("#render")
        page.wait_for_url("**/jobs/*")
        wait_for_job_done(page, 600)
        page.goto(studio.url + "outputs")
        verdict = page.wait_for_selector("article.output .big")
        assert "synthetic" in verdict.inner_text()
        assert page.locator("article.output video").count() == 1
        page.screenshot(path=str(screenshots / "studio_outputs.png"), full_page=True)
        outputs = list((project / "outputs").glob("*.mp4"))
        assert len(outputs) == 1 and "feather" not in outputs[0].name

        page.goto(studio.url)
        page.screenshot(path=str(screenshots / "studio_project.png"), full_page=True)
        page.close()
