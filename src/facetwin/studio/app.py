"""The studio's web app: ``create_app`` builds it for one project folder (no module-level state).

Starlette routes render Jinja2 pages; htmx (vendored in static/) swaps fragments in place, and server-sent
events push job progress and the training page's live panel. Long work runs as jobs (runner.py) in their
own processes; short work (a gate check, a merge preview, a verify) runs in a thread so the server
stays responsive.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from facetwin import __version__
from facetwin.errors import FacetwinError
from facetwin.studio.curation import PAGE_SIZE, SORTS, FaceSets
from facetwin.studio.intake import MAX_UPLOAD_BYTES, PASSED, Intake, TooLarge
from facetwin.studio.project import PathRefused, Project, check_name
from facetwin.studio.runner import JobRunner
from facetwin.studio.security import Guard
from facetwin.studio.store import Job, Store
from facetwin.studio.uploads import receive_files

HERE = Path(__file__).parent
EVENT_INTERVAL_S = 0.5
MAX_FORM_BYTES = 1 << 20  # a form without files


@dataclass
class Settings:
    """How one studio server runs. ``token`` is required (by ``create_app``) when ``host`` is not loopback."""

    project_dir: Path
    host: str = "127.0.0.1"
    token: str | None = None
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_running_jobs: int = 1
    run_jobs: bool = True  # False: queue only (a page-only server, as the benches use)
    device: str = "auto"  # for the merge preview


@dataclass
class Studio:
    """Everything the routes share, made once per app."""

    settings: Settings
    project: Project
    store: Store
    runner: JobRunner
    intake: Intake
    facesets: FaceSets
    templates: Jinja2Templates
    merge: Any  # facetwin.studio.merge.MergePreview, made on first use (it loads torch and the face models)
    verdicts: dict[tuple[str, float, int], Any]

    def merge_preview(self) -> Any:
        if self.merge is None:
            from facetwin.studio.merge import MergePreview

            self.merge = MergePreview(self.intake.gate, self.settings.device)
        return self.merge


def studio_of(request: Request) -> Studio:
    studio: Studio = request.app.state.studio
    return studio


def page(request: Request, template: str, **context: Any) -> HTMLResponse:
    studio = studio_of(request)
    return studio.templates.TemplateResponse(request, template, {"version": __version__, "project": studio.project, **context})


def fail(status: int, message: str) -> HTTPException:
    return HTTPException(status, message)


# helpers ----------------------------------------------------------------------------------------------------


async def small_form(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=2000, max_part_size=MAX_FORM_BYTES)


def number(form: FormData, name: str, default: Any, kind: type = int, low: float | None = None,
           high: float | None = None, optional: bool = False) -> Any:
    """A number field of a form, with bounds; raises FacetwinError with a one-line reason."""
    raw = str(form.get(name, "") or "").strip()
    if raw == "":
        if optional:
            return None
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise FacetwinError(f"{name.replace('_', ' ')}: {raw!r} is not a number") from exc
    if (low is not None and value < low) or (high is not None and value > high):
        raise FacetwinError(f"{name.replace('_', ' ')}: {value} is out of range ({low} to {high})")
    return value


def choice(form: FormData | dict[str, Any], name: str, options: Sequence[str], default: str) -> str:
    value = str(form.get(name, default) or default)
    if value not in options:
        raise FacetwinError(f"{name}: {value!r} is not one of {', '.join(options)}")
    return value


def job_view(job: Job) -> dict[str, Any]:
    """A job as the pages show it: progress share, rate and ETA in words."""
    p = job.progress
    done, total = p.get("done"), p.get("total")
    share = min(1.0, done / total) if isinstance(done, int | float) and total else None
    rate = p.get("rate")
    eta = p.get("eta_s")
    return {
        "job": job, "share": share, "stage": p.get("stage", ""),
        "count": "" if done is None else (f"{done:,.0f}" + (f" / {total:,.0f}" if total else "") + f" {p.get('unit', '')}"),
        "rate": f"{rate:,.2f} {p.get('unit', '')}/s" if rate else "",
        "eta": _duration(eta) if eta is not None and job.state == "running" else "",
    }  # fmt: skip


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def log_tail(studio: Studio, job_id: int, lines: int = 200) -> str:
    path = studio.runner.log_path(job_id)
    if not path.is_file():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 64 * 1024))
        text = handle.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


async def event_stream(request: Request, render: Callable[[], Awaitable[dict[str, str]]]) -> StreamingResponse:
    """Server-sent events: ``render`` gives {event name: HTML}; each is sent when it changes."""

    async def events() -> AsyncIterator[str]:
        last: dict[str, str] = {}
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            for name, html in (await render()).items():
                if last.get(name) != html:
                    last[name] = html
                    data = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
                    yield f"event: {name}\n{data}\n"
            await asyncio.sleep(EVENT_INTERVAL_S)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


# project page and media ------------------------------------------------------------------------------------


def _model_summary(studio: Studio, name: str) -> dict[str, Any]:
    from facetwin.modeldir import ModelDir

    folder = ModelDir(studio.project.model(name))
    try:
        config = folder.read_config()
        checkpoints = folder.checkpoints()
        return {"name": name, "architecture": config.model, "iteration": int(checkpoints[-1].name) if checkpoints else 0,
                "faceset_a": Path(config.faceset_a).name, "faceset_b": Path(config.faceset_b).name}  # fmt: skip
    except FacetwinError as exc:
        return {"name": name, "error": str(exc)}


def _faceset_summary(studio: Studio, name: str) -> dict[str, Any]:
    try:
        return {"name": name, "faces": len(studio.facesets.rows(name))}
    except FacetwinError as exc:
        return {"name": name, "error": str(exc)}


def _defaults() -> dict[str, Any]:
    from facetwin.options import BlendOptions, ConvertOptions, EvaluateOptions, ExtractOptions, RunOptions

    return {"extract": ExtractOptions(), "blend": BlendOptions(), "convert": ConvertOptions(), "evaluate": EvaluateOptions(),
            "run": RunOptions(), "train_batch": 16}  # fmt: skip


async def project_page(request: Request) -> Response:
    studio = studio_of(request)
    media = await run_in_threadpool(studio.intake.listing)
    facesets = await run_in_threadpool(lambda: [_faceset_summary(studio, n) for n in studio.project.facesets()])
    models = [_model_summary(studio, n) for n in studio.project.models()]
    outputs = [studio.project.relative(p) for p in studio.project.outputs()]
    return page(request, "project.html", media=media, facesets=facesets, models=models, outputs=outputs,
                reports=studio.project.reports(), jobs=[job_view(j) for j in studio.store.jobs(20)],
                defaults=_defaults(), max_upload=studio.settings.max_upload_bytes)  # fmt: skip


async def media_fragment(request: Request, notes: list[tuple[str, str]]) -> Response:
    studio = studio_of(request)
    media = await run_in_threadpool(studio.intake.listing)
    return page(request, "_media.html", media=media, notes=notes, defaults=_defaults())


async def upload_media(request: Request) -> Response:
    studio = studio_of(request)
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise fail(400, "send the files as multipart/form-data")
    # a folder of its own for this request: a part refused half-way (past the limit) has a file on disk
    # that the parser never handed over, and the folder goes with everything in it
    staging = studio.project.studio_dir / "uploads" / uuid.uuid4().hex
    try:
        try:
            received = await receive_files(request, staging, studio.settings.max_upload_bytes)
        except TooLarge as exc:
            raise fail(413, str(exc)) from exc
        except FacetwinError as exc:
            raise fail(400, str(exc)) from exc
        notes: list[tuple[str, str]] = []
        for filename, partial in received:
            try:
                check = await run_in_threadpool(studio.intake.adopt, partial, filename)
                notes.append((check.verdict, f"{check.path}: {check.message}"))
            except FacetwinError as exc:  # its file goes with the staging folder
                notes.append(("unreadable", str(exc)))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return await media_fragment(request, notes)


async def add_media(request: Request) -> Response:
    """Add (gate-check) a media file that is already in the project folder."""
    studio = studio_of(request)
    form = await small_form(request)
    relative = str(form.get("path", ""))
    try:
        path = studio.project.resolve(relative)
    except PathRefused as exc:
        raise fail(403, str(exc)) from exc
    if not path.is_file():
        raise fail(404, f"{relative}: no such file in the project")
    check = await run_in_threadpool(studio.intake.check, path)
    return await media_fragment(request, [(check.verdict, f"{check.path}: {check.message}")])


# jobs --------------------------------------------------------------------------------------------------------


def queue(studio: Studio, kind: str, title: str, params: dict[str, Any], resumes: int | None = None) -> int:
    job_id = studio.store.add_job(kind, title, params, resumes)
    studio.runner.wake()
    return job_id


def _job_response(request: Request, job_id: int) -> Response:
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": f"/jobs/{job_id}"})
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


async def start_extract(request: Request) -> Response:
    studio = studio_of(request)
    form = await small_form(request)
    try:
        name = check_name(str(form.get("faceset", "")).strip(), "face set")
        inputs = [str(v) for v in form.getlist("media")]
        if not inputs:
            raise FacetwinError("pick at least one media file to extract faces from")
        for relative in inputs:
            await run_in_threadpool(studio.intake.passed, relative)
        d = _defaults()["extract"]
        params = {"inputs": inputs, "faceset": name, "every": number(form, "every", d.every, low=1, high=1000),
                  "min_face": number(form, "min_face", d.min_face, low=0, high=4096),
                  "max_faces": number(form, "max_faces", d.max_faces, low=1, high=64),
                  "size": number(form, "size", d.size, low=64, high=1024)}  # fmt: skip
    except FacetwinError as exc:
        raise fail(400, str(exc)) from exc
    return _job_response(request, queue(studio, "extract", f"extract {', '.join(Path(i).name for i in inputs)} → {name}", params))


def train_params(studio: Studio, form: FormData) -> dict[str, Any]:
    from facetwin.modeldir import ModelDir
    from facetwin.models.registry import MODELS

    name = check_name(str(form.get("model", "")).strip(), "model")
    folder = ModelDir(studio.project.model(name))
    run = _defaults()["run"]
    params: dict[str, Any] = {
        "model": name,
        "iterations": number(form, "iterations", None, low=1, high=10**8, optional=True),
        "minutes": number(form, "minutes", None, float, low=0.01, high=10**5, optional=True),
        "batch_size": number(form, "batch_size", 16, low=1, high=1024),
        "save_every": number(form, "save_every", run.save_every, low=1, high=10**7),
        "preview_every": number(form, "preview_every", run.preview_every, low=1, high=10**7),
        "evaluate_every": number(form, "evaluate_every", None, low=1, high=10**7, optional=True),
        "workers": number(form, "workers", run.workers, low=0, high=16),
    }
    if params["iterations"] is None and params["minutes"] is None:
        raise FacetwinError("give the iteration to train until, or the minutes, or both")
    if folder.exists():
        config = folder.read_config()
        params.update(faceset_a=Path(config.faceset_a).name, faceset_b=Path(config.faceset_b).name, architecture=config.model)
    else:
        names = studio.project.facesets()
        params.update(faceset_a=choice(form, "faceset_a", names, ""), faceset_b=choice(form, "faceset_b", names, ""),
                      architecture=choice(form, "architecture", MODELS.names(), "lightweight"))  # fmt: skip
        if params["faceset_a"] == params["faceset_b"]:
            raise FacetwinError("face sets A and B must differ")
    return params


async def start_train(request: Request) -> Response:
    studio = studio_of(request)
    form = await small_form(request)
    try:
        params = await run_in_threadpool(train_params, studio, form)
    except FacetwinError as exc:
        raise fail(400, str(exc)) from exc
    until = f"until iteration {params['iterations']}" if params["iterations"] else f"for {params['minutes']} min"
    title = f"train {params['model']} ({params['architecture']}, {params['faceset_a']} ↔ {params['faceset_b']}) {until}"
    return _job_response(request, queue(studio, "train", title, params))


def blend_params(form: FormData | dict[str, Any]) -> dict[str, Any]:
    from facetwin.convert.blend import BLEND_MODES
    from facetwin.convert.colour import COLOUR_MODES
    from facetwin.convert.masks import MASK_MODES
    from facetwin.convert.restore import RESTORE_CHOICES

    d = _defaults()["blend"]
    data = form if isinstance(form, FormData) else FormData(form)
    return {"direction": choice(form, "direction", ["a2b", "b2a"], "a2b"),
            "mask": choice(form, "mask", MASK_MODES.names(), d.mask),
            "erode": number(data, "erode", d.erode, low=-64, high=64),
            "feather": number(data, "feather", d.feather, low=0, high=64),
            "colour": choice(form, "colour", COLOUR_MODES.names(), d.colour),
            "blend": choice(form, "blend", BLEND_MODES.names(), d.blend),
            "restore": choice(form, "restore", list(RESTORE_CHOICES), d.restore)}  # fmt: skip


async def start_convert(request: Request) -> Response:
    studio = studio_of(request)
    form = await small_form(request)
    try:
        model = check_name(str(form.get("model", "")), "model")
        if model not in studio.project.models():
            raise FacetwinError(f"no model {model!r} in this project")
        relative = str(form.get("media", ""))
        source = await run_in_threadpool(studio.intake.passed, relative)
        settings = blend_params(form)
        suffix = output_suffix(source)
        output = studio.project.outputs_dir / f"{source.stem}_{model}_{settings['direction']}{suffix}"
        n = 1
        while output.exists():
            n += 1
            output = output.with_name(f"{source.stem}_{model}_{settings['direction']}_{n}{suffix}")
        params = {"model": model, "input": relative, "output": studio.project.relative(output), **settings}
    except FacetwinError as exc:
        raise fail(400, str(exc)) from exc
    return _job_response(request, queue(studio, "convert", f"convert {source.name} with {model} ({settings['direction']})", params))


def output_suffix(source: Path) -> str:
    """The output keeps the input's format where that format can carry Content Credentials (as convert does)."""
    from facetwin.media import kind_of
    from facetwin.provenance.credentials import mime_type

    if mime_type(source) is not None:
        return source.suffix.lower()
    return ".mp4" if kind_of(source) == "video" else ".png"


async def start_evaluate(request: Request) -> Response:
    studio = studio_of(request)
    form = await small_form(request)
    try:
        model = check_name(str(form.get("model", "")), "model")
        if model not in studio.project.models():
            raise FacetwinError(f"no model {model!r} in this project")
        video = str(form.get("video", "") or "") or None
        if video:
            await run_in_threadpool(studio.intake.passed, video)
        d = _defaults()["evaluate"]
        report = check_name(str(form.get("report", "") or f"{model}"), "report")
        params = {"model": model, "report": report, "faces": number(form, "faces", d.faces, low=2, high=4096), "video": video,
                  "direction": choice(form, "direction", ["a2b", "b2a"], d.direction)}  # fmt: skip
    except FacetwinError as exc:
        raise fail(400, str(exc)) from exc
    return _job_response(request, queue(studio, "evaluate", f"evaluate {model} → reports/{report}", params))


def _job_or_404(studio: Studio, request: Request) -> Job:
    try:
        job = studio.store.job(int(request.path_params["job_id"]))
    except ValueError:
        job = None
    if job is None:
        raise fail(404, "no such job")
    return job


async def cancel_job(request: Request) -> Response:
    studio = studio_of(request)
    job = _job_or_404(studio, request)
    if job.active:
        studio.runner.cancel(job.id)
    return _job_response(request, job.id) if not request.headers.get("hx-request") else await jobs_fragment(request)


async def resume_job(request: Request) -> Response:
    studio = studio_of(request)
    job = _job_or_404(studio, request)
    if not job.resumable:
        raise fail(409, f"job {job.id} is {job.state}: only an interrupted, cancelled or failed job can be run again")
    title = job.title if job.title.startswith("resume: ") else f"resume: {job.title}"
    return _job_response(request, queue(studio, job.kind, title, job.params, resumes=job.id))


async def jobs_page(request: Request) -> Response:
    studio = studio_of(request)
    return page(request, "jobs.html", jobs=[job_view(j) for j in studio.store.jobs()])


async def jobs_fragment(request: Request) -> Response:
    studio = studio_of(request)
    return page(request, "_jobs.html", jobs=[job_view(j) for j in studio.store.jobs()])


async def jobs_events(request: Request) -> Response:
    studio = studio_of(request)
    template = studio.templates.get_template("_jobs.html")
    limit = int(request.query_params.get("limit", "100") or 100)

    async def render() -> dict[str, str]:
        return {"jobs": template.render(jobs=[job_view(j) for j in studio.store.jobs(limit)])}

    return await event_stream(request, render)


async def job_page(request: Request) -> Response:
    studio = studio_of(request)
    job = _job_or_404(studio, request)
    return page(request, "job.html", view=job_view(job), log=log_tail(studio, job.id))


async def job_events(request: Request) -> Response:
    studio = studio_of(request)
    job = _job_or_404(studio, request)
    template = studio.templates.get_template("_job_status.html")

    async def render() -> dict[str, str]:
        current = studio.store.job(job.id)
        assert current is not None
        return {"status": template.render(view=job_view(current)), "log": _escape(log_tail(studio, job.id))}

    return await event_stream(request, render)


def _escape(text: str) -> str:
    return str(markupsafe.escape(text))


async def api_jobs(request: Request) -> Response:
    studio = studio_of(request)
    return JSONResponse([dataclasses.asdict(j) | {"resumable": j.resumable} for j in studio.store.jobs()])


async def api_job(request: Request) -> Response:
    studio = studio_of(request)
    job = _job_or_404(studio, request)
    return JSONResponse(dataclasses.asdict(job) | {"resumable": job.resumable, "log": log_tail(studio, job.id)})


# face sets ---------------------------------------------------------------------------------------------------


def _named(request: Request, kind: str, known: list[str]) -> str:
    """The path's ``name`` of a ``kind`` of thing: 400 for a name that is not a plain name, 404 when unknown."""
    name = request.path_params["name"]
    try:
        check_name(name, kind)
    except FacetwinError as exc:
        raise fail(400, str(exc)) from exc
    if name not in known:
        raise fail(404, f"no {kind} {name!r} in this project")
    return name


def _faceset_name(studio: Studio, request: Request) -> str:
    return _named(request, "face set", studio.project.facesets())


async def _grid_context(studio: Studio, name: str, request: Request, note: str = "") -> dict[str, Any]:
    sort = request.query_params.get("sort", "time")
    try:
        number = int(request.query_params.get("page", "1") or 1)
        grid = await run_in_threadpool(studio.facesets.page, name, sort, number, PAGE_SIZE)
    except (ValueError, FacetwinError) as exc:
        raise fail(400, str(exc)) from exc
    return {"name": name, "grid": grid, "sorts": SORTS, "can_undo": studio.facesets.can_undo(name), "note": note}


async def faceset_page(request: Request) -> Response:
    studio = studio_of(request)
    name = _faceset_name(studio, request)
    return page(request, "faceset.html", **await _grid_context(studio, name, request))


async def faceset_grid(request: Request) -> Response:
    studio = studio_of(request)
    name = _faceset_name(studio, request)
    return page(request, "_grid.html", **await _grid_context(studio, name, request))


async def faceset_thumb(request: Request) -> Response:
    studio = studio_of(request)
    name = _faceset_name(studio, request)
    try:
        path = await run_in_threadpool(studio.facesets.thumbnail, name, request.path_params["filename"])
    except FacetwinError as exc:
        raise fail(404, str(exc)) from exc
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


async def faceset_drop(request: Request) -> Response:
    studio = studio_of(request)
    name = _faceset_name(studio, request)
    form = await small_form(request)
    chosen = [str(v) for v in form.getlist("face")]
    dropped = await run_in_threadpool(studio.facesets.drop, name, chosen)
    note = f"dropped {dropped} face{'s' if dropped != 1 else ''} (moved to the set's dropped/ folder; undo puts them back)"
    return page(request, "_grid.html", **await _grid_context(studio, name, request, note if dropped else "nothing selected"))


async def faceset_undo(request: Request) -> Response:
    studio = studio_of(request)
    name = _faceset_name(studio, request)
    restored = await run_in_threadpool(studio.facesets.undo, name)
    note = f"put back {restored} face{'s' if restored != 1 else ''}" if restored else "nothing to undo"
    return page(request, "_grid.html", **await _grid_context(studio, name, request, note))


# training ----------------------------------------------------------------------------------------------------


def _model_name(studio: Studio, request: Request) -> str:
    return _named(request, "model", studio.project.models())


def live_context(studio: Studio, name: str) -> dict[str, Any]:
    """The training page's live panel: newest preview, curves, rate and ETA of a running job, the verdict."""
    from facetwin.modeldir import ModelDir
    from facetwin.studio.training import is_it_done, read_curves, svg_chart

    folder = ModelDir(studio.project.model(name))
    curves = read_curves(folder.root)
    previews = folder.previews()
    running = next((j for j in studio.store.jobs_in("queued", "running") if j.kind == "train" and j.params.get("model") == name), None)
    return {
        "name": name, "iteration": curves.iteration,
        "preview": previews[-1].stem.lstrip("0") or "0" if previews else None,
        "preview_stamp": int(previews[-1].stat().st_mtime) if previews else 0,
        "loss_chart": svg_chart(curves.losses, "training loss", "loss", log=True),
        "heldout_chart": svg_chart(curves.held_out, "held-out reconstruction", "masked L1"),
        "quality_chart": svg_chart(curves.quality, "swap identity (held-out faces)", "dlib distance", guide=(0.6, "same person")) if any(s for _, _, s in curves.quality) else "",
        "verdict": is_it_done(curves), "running": job_view(running) if running else None,
    }  # fmt: skip


async def train_page(request: Request) -> Response:
    studio = studio_of(request)
    from facetwin.models.registry import MODELS

    models = [_model_summary(studio, n) for n in studio.project.models()]
    return page(request, "train.html", models=models, facesets=studio.project.facesets(), architectures=MODELS.names(),
                defaults=_defaults())  # fmt: skip


async def model_page(request: Request) -> Response:
    studio = studio_of(request)
    name = _model_name(studio, request)
    live = await run_in_threadpool(live_context, studio, name)
    return page(request, "model.html", model=_model_summary(studio, name), live=live, defaults=_defaults(),
                media=[m for m, c in studio.intake.listing() if c and c.verdict == PASSED])  # fmt: skip


async def model_events(request: Request) -> Response:
    studio = studio_of(request)
    name = _model_name(studio, request)
    template = studio.templates.get_template("_live.html")

    async def render() -> dict[str, str]:
        return {"live": template.render(live=await run_in_threadpool(live_context, studio, name))}

    return await event_stream(request, render)


async def model_preview(request: Request) -> Response:
    from facetwin.modeldir import ModelDir

    studio = studio_of(request)
    name = _model_name(studio, request)
    previews = ModelDir(studio.project.model(name)).previews()
    if not previews:
        raise fail(404, "no preview yet")
    return FileResponse(previews[-1], media_type="image/png", headers={"Cache-Control": "no-cache"})


# merge -------------------------------------------------------------------------------------------------------


def _merge_inputs(studio: Studio, query: dict[str, Any]) -> tuple[str, Path, str, int]:
    model = check_name(str(query.get("model", "")), "model")
    if model not in studio.project.models():
        raise FacetwinError(f"no model {model!r} in this project")
    relative = str(query.get("media", ""))
    media = studio.intake.passed(relative)
    frame = number(FormData(query), "frame", 0, low=0, high=10**8)
    return model, media, relative, frame


async def merge_page(request: Request) -> Response:
    studio = studio_of(request)
    query = dict(request.query_params)
    models = studio.project.models()
    media = [m for m, c in await run_in_threadpool(studio.intake.listing) if c and c.verdict == PASSED]
    query.setdefault("model", models[0] if models else "")
    query.setdefault("media", media[0] if media else "")
    context: dict[str, Any] = {"models": models, "media": media, "query": query, "defaults": _defaults(), "frames": 0, "fps": 0.0,
                               "error": None}  # fmt: skip
    from facetwin.convert.blend import BLEND_MODES
    from facetwin.convert.colour import COLOUR_MODES
    from facetwin.convert.masks import MASK_MODES
    from facetwin.convert.restore import RESTORE_CHOICES

    context.update(masks=MASK_MODES.names(), colours=COLOUR_MODES.names(), blends=BLEND_MODES.names(), restores=RESTORE_CHOICES)
    if models and media:
        try:
            _, path, _, _ = await run_in_threadpool(_merge_inputs, studio, query)
            context["frames"], context["fps"] = await run_in_threadpool(studio.merge_preview().frames, path)
            context["settings"] = blend_params(query)
        except FacetwinError as exc:
            context["error"] = str(exc)
    return page(request, "merge.html", **context)


async def merge_view(request: Request) -> Response:
    """The fragment the merge form swaps in: the original and the swapped frame (images by URL)."""
    studio = studio_of(request)
    query = dict(request.query_params)
    try:
        model, media, relative, frame = await run_in_threadpool(_merge_inputs, studio, query)
        settings = blend_params(query)
    except FacetwinError as exc:
        return page(request, "_merge_view.html", error=str(exc))
    from urllib.parse import urlencode

    swapped_query = urlencode({"model": model, "media": relative, "frame": frame, **settings})
    original_query = urlencode({"media": relative, "frame": frame})
    return page(request, "_merge_view.html", error=None, swapped=f"/merge/swapped.jpg?{swapped_query}",
                original=f"/merge/original.jpg?{original_query}", frame=frame)  # fmt: skip


async def merge_swapped(request: Request) -> Response:
    from facetwin.options import BlendOptions

    studio = studio_of(request)
    query = dict(request.query_params)
    try:
        _, media, _, frame = await run_in_threadpool(_merge_inputs, studio, query)
        settings = blend_params(query)
        blend = BlendOptions(settings["mask"], settings["erode"], settings["feather"], settings["colour"], settings["blend"],
                             settings["restore"])  # fmt: skip
        model_dir = studio.project.model(str(query["model"]))
        preview = await run_in_threadpool(studio.merge_preview().render, media, frame, model_dir, settings["direction"], blend)
    except FacetwinError as exc:
        raise fail(422, str(exc)) from exc
    timing = ", ".join(f"{k};dur={v:.1f}" for k, v in preview.timings_ms.items())
    return Response(preview.swapped_jpeg, media_type="image/jpeg", headers={
        "Cache-Control": "no-store", "Server-Timing": timing, "X-Faces": str(preview.faces),
        "X-Facetwin-Label": f"synthetic; watermark of model {preview.model_id}"})  # fmt: skip


async def merge_original(request: Request) -> Response:
    from facetwin.studio.merge import jpeg, read_frame

    studio = studio_of(request)
    query = dict(request.query_params)
    try:
        media = await run_in_threadpool(studio.intake.passed, str(query.get("media", "")))
        frame = number(FormData(query), "frame", 0, low=0, high=10**8)
        rgb, _ = await run_in_threadpool(read_frame, media, frame)
    except FacetwinError as exc:
        raise fail(422, str(exc)) from exc
    return Response(await run_in_threadpool(jpeg, rgb), media_type="image/jpeg", headers={"Cache-Control": "private, max-age=600"})


# outputs and files -------------------------------------------------------------------------------------------


def _verdict(studio: Studio, path: Path) -> Any:
    from facetwin.provenance.verify import verify_file

    stat = path.stat()
    key = (str(path), stat.st_mtime, stat.st_size)
    if key not in studio.verdicts:
        studio.verdicts[key] = verify_file(path)
    return studio.verdicts[key]


async def outputs_page(request: Request) -> Response:
    studio = studio_of(request)
    items = []
    for path in studio.project.outputs():
        verdict = await run_in_threadpool(_verdict, studio, path)
        items.append({"path": studio.project.relative(path), "name": path.name, "verdict": verdict,
                      "video": path.suffix.lower() in {".mp4", ".mov", ".webm", ".mkv", ".m4v"}})  # fmt: skip
    return page(request, "outputs.html", items=items, reports=studio.project.reports())


async def project_file(request: Request) -> Response:
    """A file of the project (media, outputs, reports) by its project-relative path; never one outside it."""
    studio = studio_of(request)
    relative = request.path_params["path"]
    try:
        path = studio.project.resolve(relative)
    except PathRefused as exc:
        raise fail(403, str(exc)) from exc
    top = Path(relative).parts[0] if Path(relative).parts else ""
    if top == ".studio" or top.startswith("."):
        raise fail(403, f"{relative!r}: the studio's own files are not served")
    if not path.is_file():
        raise fail(404, f"{relative!r}: no such file in the project")
    return FileResponse(path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                                       "Content-Security-Policy": "sandbox allow-scripts"})  # fmt: skip


async def refused(request: Request, exc: Exception) -> Response:
    detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if request.headers.get("hx-request"):
        return HTMLResponse(f'<p class="error" role="alert">{_escape(str(detail))}</p>', status_code=status,
                            headers={"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"})  # fmt: skip
    return Response(f"{detail}\n", status_code=status, media_type="text/plain; charset=utf-8")


# the app -----------------------------------------------------------------------------------------------------


def create_app(settings: Settings) -> Guard:
    """The studio for ``settings.project_dir`` (made if missing), behind its guard (see security.py).

    Raises FacetwinError for a non-loopback host without a token: such a server would be open to the
    network."""
    from facetwin.safety.gate import ContentGate
    from facetwin.studio.security import is_loopback

    loopback = is_loopback(settings.host)
    if not loopback and not settings.token:
        raise FacetwinError(f"--host {settings.host}: binding beyond this machine needs a token; refused without one")
    project = Project.open(settings.project_dir)
    store = Store(project.database)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["b64"] = lambda data: base64.b64encode(data).decode()
    env.filters["tojson"] = json.dumps
    templates = Jinja2Templates(env=env)
    runner = JobRunner(project, store, settings.max_running_jobs)
    intake = Intake(project, store, ContentGate())
    studio = Studio(settings, project, store, runner, intake, FaceSets(project, store), templates, None, {})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.run_jobs:
            runner.start()
        else:
            runner.recover()
        try:
            yield
        finally:
            if settings.run_jobs:
                await run_in_threadpool(runner.stop)
            if studio.merge is not None:
                studio.merge.close()

    routes = [
        Route("/", project_page),
        Route("/media/upload", upload_media, methods=["POST"]),
        Route("/media/add", add_media, methods=["POST"]),
        Route("/jobs", jobs_page),
        Route("/jobs/fragment", jobs_fragment),
        Route("/jobs/events", jobs_events),
        Route("/jobs/extract", start_extract, methods=["POST"]),
        Route("/jobs/train", start_train, methods=["POST"]),
        Route("/jobs/convert", start_convert, methods=["POST"]),
        Route("/jobs/evaluate", start_evaluate, methods=["POST"]),
        Route("/jobs/{job_id:int}", job_page),
        Route("/jobs/{job_id:int}/events", job_events),
        Route("/jobs/{job_id:int}/cancel", cancel_job, methods=["POST"]),
        Route("/jobs/{job_id:int}/resume", resume_job, methods=["POST"]),
        Route("/api/jobs", api_jobs),
        Route("/api/jobs/{job_id:int}", api_job),
        Route("/facesets/{name}", faceset_page),
        Route("/facesets/{name}/grid", faceset_grid),
        Route("/facesets/{name}/thumb/{filename}", faceset_thumb),
        Route("/facesets/{name}/drop", faceset_drop, methods=["POST"]),
        Route("/facesets/{name}/undo", faceset_undo, methods=["POST"]),
        Route("/train", train_page),
        Route("/models/{name}", model_page),
        Route("/models/{name}/events", model_events),
        Route("/models/{name}/preview.png", model_preview),
        Route("/merge", merge_page),
        Route("/merge/view", merge_view),
        Route("/merge/swapped.jpg", merge_swapped),
        Route("/merge/original.jpg", merge_original),
        Route("/outputs", outputs_page),
        Route("/files/{path:path}", project_file),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: refused})
    app.state.studio = studio
    return Guard(app, settings.token, loopback_only=loopback, max_body=settings.max_upload_bytes + MAX_FORM_BYTES)
