"""The one place that decides how a converted video is written, and says what had to change.

facetwin re-encodes the picture as H.264 (the only video it can sign and every player plays) and keeps
everything else it can. Each decision below is a pure function of what the input is
(``VideoDescription``) and what the output container can hold:

- Rotation: frames are read upright and written upright; the display matrix is not written. The output
  then shows what the input shows in every player that honours the matrix (all current ones), and in
  players, editors and services that ignore or strip it the output is still upright; the watermark
  lies in the pixels as shown. This is also what ffmpeg itself does on a re-encode (autorotate) and
  what facetwin does with a photo's EXIF orientation. A notice says so.
- Size: kept exactly. H.264's 4:2:0 needs an even width and height (4:2:2 an even width), so an odd
  size is written with 4:4:4 chroma instead of being cropped or padded (with a notice: 4:4:4 H.264
  plays in VLC, mpv and ffmpeg-based tools, not in browsers or QuickTime).
- Colour: written with the matrix and range the frames were read with and tagged so (primaries,
  transfer, matrix, range); an input without tags gets the tags players assumed for it (notice). HDR
  was converted to SDR BT.709 when read (notice); more than 8 bits become 8 (notice). A matrix swscale
  cannot write (RGB, YCgCo, ICtCp...) becomes BT.709 (notice). Chroma subsampling is kept.
- Alpha: H.264 cannot carry it; dropped with a notice.
- Codec: the picture is re-encoded as H.264 (said when the input was another codec); chapters are kept;
  the container's descriptive metadata (creation time, place, camera) is not copied, with a notice: a
  synthetic video should not carry a camera's claims.
- Other streams, in their order: copied packet for packet when the container can hold them; audio it
  cannot hold is re-encoded as AAC, text subtitles converted to mov_text (the only subtitles MP4 and
  MOV hold); further video streams (a second angle, a cover picture) are not carried, since facetwin
  converts and labels one picture; each change has a notice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from facetwin.media.colour import BT709_MATRIX, MATRICES, SWSCALE_MATRIX, Colour, is_hd
from facetwin.media.video_in import StreamInfo, VideoDescription

TEXT_SUBTITLES = frozenset({"subrip", "srt", "ass", "ssa", "webvtt", "text", "mov_text"})
PIX_FMT = {"4:2:0": "yuv420p", "4:2:2": "yuv422p", "4:4:4": "yuv444p"}


@dataclass(frozen=True)
class StreamPlan:
    """What happens to one of the input's other streams: 'copy', 'aac' (re-encode), 'mov_text'
    (convert text subtitles) or 'drop'."""

    stream: StreamInfo
    action: str


@dataclass(frozen=True)
class VideoPlan:
    """How the output is written: ``width`` x ``height`` upright pixels, H.264 ``pix_fmt``, ``colour``
    (what the RGB frames mean; the stream is encoded with its matrix and range and tagged with all four),
    the other streams in input order, and a one-line notice for each change."""

    width: int
    height: int
    pix_fmt: str
    colour: Colour
    streams: tuple[StreamPlan, ...]
    notices: tuple[str, ...] = field(default=())


def chroma_for(chroma: str, width: int, height: int) -> str:
    """The input's chroma subsampling when H.264 can hold it at this size, else 4:4:4, the change that
    keeps the size (4:2:0 needs an even width and height, 4:2:2 an even width); chroma formats H.264
    does not have (4:0:0, 4:1:1) are written as 4:2:0."""
    wanted = chroma if chroma in PIX_FMT else "4:2:0"
    if (wanted == "4:2:0" and (width % 2 or height % 2)) or (wanted == "4:2:2" and width % 2):
        return "4:4:4"
    return wanted


def colour_for(description: VideoDescription) -> tuple[Colour, list[str]]:
    """The colour the output is encoded and tagged with, and the notices (see the module docstring)."""
    delivered = description.delivered
    notes = []
    if delivered.matrix not in SWSCALE_MATRIX:
        name = MATRICES.get(delivered.matrix, str(delivered.matrix))
        target = BT709_MATRIX if is_hd(description.width, description.height) else 6
        delivered = Colour(delivered.primaries, delivered.transfer, target, False)
        notes.append(f"{name} video written as Y'CbCr {MATRICES[target]}, limited range (what H.264 players expect)")
    elif description.colour.guessed and not description.colour.hdr:
        size = "for HD" if is_hd(description.width, description.height) else "below HD"
        notes.append(f"no colour tags ({', '.join(description.colour.guessed)}): read as {MATRICES[delivered.matrix]} "
                     f"{'full' if delivered.full_range else 'limited'} range, as players assume {size}, and tagged so")
    return delivered, notes


def stream_action(stream: StreamInfo, can_copy: bool, can_hold: frozenset[str]) -> tuple[str, str | None]:
    """What to do with one other stream, and the notice (None when it is copied unchanged)."""
    if can_copy and stream.kind in ("audio", "subtitle", "data"):
        return "copy", None
    if stream.kind == "audio" and "aac" in can_hold:
        return "aac", f"{stream.describe()} re-encoded as AAC (the output container cannot hold {stream.codec})"
    if stream.kind == "subtitle" and stream.codec in TEXT_SUBTITLES and "mov_text" in can_hold:
        return "mov_text", f"{stream.describe()} converted to mov_text, the subtitles MP4 and MOV hold (styling dropped)"
    if stream.kind == "video":
        return "drop", f"{stream.describe()} not carried: facetwin converts and labels the first video stream only"
    return "drop", f"{stream.describe()} not carried: the output container cannot hold {stream.codec}"


def plan_video(description: VideoDescription, output: Path, copyable: frozenset[int], can_hold: frozenset[str],
               side_by_side: bool = False) -> VideoPlan:
    """Decide how ``description``'s video is written to ``output``. ``copyable``: indices of the input's
    streams the output container accepts packet for packet; ``can_hold``: codec names it can hold."""
    width = description.width * (2 if side_by_side else 1)
    height = description.height
    notes = [f"{note.split(': ', 1)[1]}" for note in description.reading_notices()]
    if not description.orientation.identity:
        notes.append(f"display rotation ({description.orientation.describe()}) applied to the pixels: "
                     "written upright, without a rotation tag")
    chroma = chroma_for(description.chroma, width, height)
    if chroma != description.chroma:
        if chroma == "4:4:4":
            notes.append(f"{description.chroma} video written as 4:4:4 to keep its odd size {width}x{height} "
                         f"(H.264 {description.chroma} needs even sides; 4:4:4 plays in VLC and mpv, not in browsers)")
        else:
            notes.append(f"{description.chroma} video written as {chroma} (H.264 has no {description.chroma})")
    colour, colour_notes = colour_for(description)
    notes += colour_notes
    if description.alpha:
        notes.append("alpha channel dropped (H.264 cannot carry it)")
    if description.codec not in ("h264", "libx264"):
        notes.append(f"{description.codec} video re-encoded as H.264")
    if description.metadata:
        notes.append(f"container metadata not copied ({', '.join(description.metadata)}): "
                     "a synthetic video should not carry a camera's claims")
    streams = []
    for stream in description.others:
        action, note = stream_action(stream, stream.index in copyable, can_hold)
        streams.append(StreamPlan(stream, action))
        if note:
            notes.append(note)
    return VideoPlan(width, height, PIX_FMT[chroma], colour, tuple(streams),
                     tuple(f"{output}: {note}" for note in notes))
