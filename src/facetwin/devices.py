"""Where and how tensors run: the device, the precision and the memory layout, chosen at run time.

One place for these choices, so that training, previews, evaluation and convert always agree; a model
laid out one way and fed tensors laid out the other pays for a conversion at every layer.
"""

from __future__ import annotations

import torch

from facetwin.errors import FacetwinError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def choose_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA where PyTorch sees it (the torchrun rank's own GPU), else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise FacetwinError("--device cuda was asked for, but PyTorch sees no CUDA device")
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise FacetwinError(f"--device is auto, cpu or cuda, not {name!r}")
    return torch.device("cpu")


def choose_precision(name: str, device: torch.device) -> torch.dtype:
    """auto: bf16 where the hardware runs it natively (AVX-512 BF16 or AMX CPUs, Ampere+ GPUs), else fp16
    on older GPUs, else fp32."""
    if name != "auto":
        if name not in PRECISIONS:
            raise FacetwinError(f"--precision is auto, {', '.join(PRECISIONS)}, not {name!r}")
        return PRECISIONS[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32


def _cpu_has_amx() -> bool:
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private in torch 2.13; absent means unknown
    return bool(probe()) if probe is not None else False


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last where the convolution kernels are NHWC-native (CUDA tensor cores, oneDNN's AMX
    kernels); plain NCHW elsewhere. On an AVX-512 BF16 CPU without AMX (AMD Zen 4), channels_last made
    a training step of ``original`` slower in both precisions (bench/train.py measures both layouts)."""
    if device.type == "cuda" or (device.type == "cpu" and _cpu_has_amx()):
        return torch.channels_last
    return torch.contiguous_format


def place_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model on ``device`` in ``memory_format(device)`` (in place; returned for chaining)."""
    return model.to(device).to(memory_format=memory_format(device))  # type: ignore[call-overload]


def to_model_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch of images (N, C, H, W) on ``device``, in the layout the model there runs fastest in."""
    return images.to(device, non_blocking=True).contiguous(memory_format=memory_format(device))
