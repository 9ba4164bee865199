"""Media in and out: what every stage reads and convert writes, so that what a viewer sees is kept.

``sources``: which files are media, and one frame iterator over all of them. ``video_in``: video frames
upright, in the colours the file declares, on their own timestamps, past damage. ``images``: stills
upright with alpha and colour profile. ``plan``: the one place that decides how a converted video is
written and what had to change. ``video_out``: writes it. ``orientation``, ``colour``, ``tonemap``: the
rules those share.
"""

from facetwin.media.images import Picture, read_image, read_picture, write_image, write_picture
from facetwin.media.sources import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    CollectedInputs,
    MediaKind,
    MediaSource,
    VideoInfo,
    collect_sources,
    frame_count,
    kind_of,
    read_frames,
    video_info,
)
from facetwin.media.video_in import (
    Damage,
    DamagedMedia,
    Frame,
    MediaError,
    TruncatedMedia,
    VideoDescription,
    describe_video,
    read_video,
)

__all__ = [
    "IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "CollectedInputs", "Damage", "DamagedMedia", "Frame", "MediaError",
    "MediaKind", "MediaSource", "Picture", "TruncatedMedia", "VideoDescription", "VideoInfo", "collect_sources",
    "describe_video", "frame_count", "kind_of", "read_frames", "read_image", "read_picture", "read_video",
    "video_info", "write_image", "write_picture",
]  # fmt: skip
