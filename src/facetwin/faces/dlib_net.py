"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) read into PyTorch.

The same network and weights as ``dlib.face_recognition_model_v1``, run by PyTorch instead of dlib: the
dlib-bin wheel is built without BLAS, so its CPU convolutions take ~140 ms a face on one of our cores,
where PyTorch's (oneDNN) take a few milliseconds (``bench/identity.py`` measures both, and that the
descriptors agree to within 1e-5).

The network is the one of dlib's ``dnn_face_recognition_ex.cpp`` (Davis King, 2017): a 7x7/2 stem, a
3x3/2 max pool, residual blocks of two 3x3 convolutions (32, 64, 128, 256, 256 channels; the first block
of each level after the first strides by 2, and its shortcut is a 2x2/2 average pool), a global average
pool and a 128 x 256 linear layer without bias. Batch norm was frozen into per-channel affine layers.
Two dlib conventions matter and are kept: a strided convolution has no padding, and a residual sum of
tensors of different sizes is taken at the larger size, the missing elements counting as zero
(``dlib::tt::add``), which is how the 3x3 and 4x4 maps of the last levels are added.

The file is dlib's serialisation of the network (``dlib/dnn/core.h``, ``layers.h``): the layers come
from the input up, each named by a string; integers are packed (a byte with the length and the sign,
then little-endian bytes) and tensor data are little-endian float32. Only the layers with parameters
are read here (in order), their sizes checked against the architecture above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facetwin.errors import FacetwinError

CHIP = 150  # px: the network's input, a face chip cut by dlib.get_face_chip (padding 0.25)
MEAN_RGB = (122.782, 117.001, 104.298)  # dlib input_rgb_image: (pixel - mean) / 256
# (channels, blocks, first block strides) per level, from the input up (dlib's alevel4 ... alevel0)
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
_LAYER = re.compile(rb"\x01\x05con_4|\x01\x07affine_|\x01\x04fc_2")


class _Reader:
    """A cursor over dlib's serialisation."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data, self.position = data, position

    def integer(self) -> int:
        head = self.data[self.position]
        size, negative = head & 0x0F, head & 0x80
        value = int.from_bytes(self.data[self.position + 1 : self.position + 1 + size], "little")
        self.position += 1 + size
        return -value if negative else value

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise ValueError(f"tensor format {version}")
        shape = [self.integer() for _ in range(4)]
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.position).astype(np.float32)
        self.position += 4 * count
        return values


@dataclass(frozen=True)
class _Conv:
    weight: np.ndarray  # (out, in, k, k)
    bias: np.ndarray
    stride: int
    padding: int


def _read_layers(data: bytes) -> tuple[list[_Conv], list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """The convolutions, the affine layers (gamma, beta) and the final linear layer's (256, 128) matrix."""
    convs: list[_Conv] = []
    affines: list[tuple[np.ndarray, np.ndarray]] = []
    linear: np.ndarray | None = None
    position, inputs = 0, 3
    while (found := _LAYER.search(data, position)) is not None:
        name = found.group()[2:]
        reader = _Reader(data, found.end())
        if name == b"con_4":
            params = reader.tensor()
            filters, rows, cols, stride, _, padding, _ = (reader.integer() for _ in range(7))
            size = filters * inputs * rows * cols
            if params.size != size + filters or rows != cols:
                raise ValueError(f"convolution {len(convs)}: {params.size} parameters for {filters}x{inputs}x{rows}x{cols}")
            convs.append(_Conv(params[:size].reshape(filters, inputs, rows, cols), params[size:], stride, padding))
            inputs = filters
        elif name == b"affine_":
            params = reader.tensor()
            half = params.size // 2
            affines.append((params[:half], params[half:]))
        else:
            outputs, fan_in = reader.integer(), reader.integer()
            linear = reader.tensor().reshape(fan_in, outputs)
        position = reader.position
    if linear is None:
        raise ValueError("no final linear layer")
    return convs, affines, linear


class DlibResNet(torch.nn.Module):
    """dlib's face descriptor network, for inference on the CPU (its weights are plain tensors, not
    parameters). ``forward`` takes face chips (N, 3, 150, 150) float32 RGB in 0-255 and returns
    descriptors (N, 128) float32 (dlib's: two faces of one person lie within 0.6). Raises FacetwinError
    for a file that is not this network."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        try:
            convs, affines, linear = _read_layers(path.read_bytes())
        except (OSError, ValueError, IndexError) as exc:
            raise FacetwinError(f"{path}: not dlib's face recognition network ({exc})") from exc
        expected = 1 + 2 * sum(blocks for _, blocks, _ in LEVELS)
        if len(convs) != expected or len(affines) != expected or linear.shape != (256, 128):
            raise FacetwinError(f"{path}: {len(convs)} convolutions and a {linear.shape} linear layer;"
                                f" dlib's face recognition network has {expected} and (256, 128)")
        # Each convolution is followed by an affine layer: fold it in (w * gamma, b * gamma + beta).
        self.weights = [torch.from_numpy(c.weight * gamma[:, None, None, None]) for c, (gamma, _) in zip(convs, affines, strict=True)]
        self.biases = [torch.from_numpy(c.bias * gamma + beta) for c, (gamma, beta) in zip(convs, affines, strict=True)]
        self.strides = [c.stride for c in convs]
        self.paddings = [c.padding for c in convs]
        self.linear = torch.from_numpy(linear.copy())
        self.mean = torch.tensor(MEAN_RGB, dtype=torch.float32).view(1, 3, 1, 1)

    def _conv(self, index: int, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weights[index], self.biases[index], self.strides[index], self.paddings[index])

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips - self.mean) / 256.0
        x = F.max_pool2d(F.relu(self._conv(0, x)), 3, 2)
        index = 1
        for _, blocks, strided in LEVELS:
            for block in range(blocks):
                y = self._conv(index + 1, F.relu(self._conv(index, x)))
                index += 2
                shortcut = F.avg_pool2d(x, 2, 2) if strided and block == 0 else x
                x = F.relu(_add_padded(shortcut, y))
        return x.mean(dim=(2, 3)) @ self.linear


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b at the larger of each size, missing elements counting as zero (dlib::tt::add)."""
    if a.shape == b.shape:
        return a + b
    shape = [max(s, t) for s, t in zip(a.shape, b.shape, strict=True)]
    out = a.new_zeros(shape)
    out[:, : a.shape[1], : a.shape[2], : a.shape[3]] += a
    out[:, : b.shape[1], : b.shape[2], : b.shape[3]] += b
    return out
