"""Array type aliases for what crosses module boundaries, so a signature says what it takes.

Shapes and value ranges are the contract; numpy's typing cannot check them, so they are written here
once and in each public docstring. Coordinates are pixels, x to the right and y down, (0, 0) the
top-left pixel's top-left corner. A 2x3 affine matrix is named by the spaces it maps between:
``frame_to_crop`` takes a point in frame pixels to aligned-crop pixels (``p' = M[:, :2] @ p + M[:, 2]``).
The spaces in facetwin:

- *frame*: the decoded, upright video frame or image (H x W).
- *crop*: the aligned face crop a face set stores (S x S, S = 256 by default; the mean-face template
  in ``faces/mean_face.txt`` scaled by S).
- *model*: the model's input and output (``ModelSpec.size`` a side): the centred ``ModelSpec.coverage``
  share of the crop, resized.
- *working*: a face set crop resized so that the model's coverage of it is exactly ``ModelSpec.size``
  (``ceil(size / coverage)`` a side), which is what training keeps in memory.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np

# numpy's typing cannot follow dtypes through OpenCV, so each alias is a plain ndarray to the type
# checker; the name and the docstring carry the shape, dtype and range.
RGBImage: TypeAlias = np.ndarray
"""(H, W, 3) uint8, RGB order, 0-255: a decoded frame, a crop, an output frame."""

FloatImage: TypeAlias = np.ndarray
"""(H, W, 3) float32 in [0, 1], RGB: model inputs and outputs on the CPU side."""

Mask: TypeAlias = np.ndarray
"""(H, W) float32 in [0, 1]: 1 where the face (or region) is."""

Landmarks: TypeAlias = np.ndarray
"""(478, 3) float32: MediaPipe's face mesh (468 surface points and 10 iris points), x and y in pixels of
the image they were found in, z in the same scale (depth, towards the camera negative)."""

Points: TypeAlias = np.ndarray
"""(N, 2) float: x, y in pixels of some space."""

Affine: TypeAlias = np.ndarray
"""(2, 3) float64 affine matrix; name each by the spaces it maps, ``source_to_target``."""
