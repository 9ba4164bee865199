"""``masked128``: the 2017 network grown to 128 px, predicting its own face mask.

What it is: ``original``'s shape with one more halving, so a 128 px input still meets a 4x4 dense
bottleneck (strided convolutions of 32, 64, 128, 256 and 512 channels, Dense 512, then upscales of 256
down to 16 channels at 128 px), and a fourth output channel for the mask. From DeepFaceLab's DF design
it takes the wider crop (75 % coverage: brows to chin with the cheeks), the learned mask, and training
with SSIM + L1 weighted towards the eyes and mouth (``facetwin.train.losses``).

Why this size: on a 2-core CPU what wins at equal minutes is steps, as ``lightweight`` showed. At 20.6 M
parameters a step costs about a third of ``original``'s multiply-adds for four times the pixels, and
it runs twice as many steps as ``original`` in the same time. An earlier, wider version (residual
decoder blocks, 512-channel 8x8 bottleneck, 2.2x original's work) made 139 steps in 6 minutes to
original's 299 and lost on every held-out figure; this one beats ``original`` on held-out L1, PSNR and
SSIM of both identities at every point of a 15-minute run (bench/compare_models.py).

Adam runs with the usual betas (0.9, 0.999), not the 2017 (0.5, 0.999): after 6 minutes the held-out
L1 was 0.055 / 0.033 (A / B) against 0.055 / 0.042, SSIM 0.74 / 0.80 against 0.69 / 0.73. At 5e-4 it
diverged.
"""

from __future__ import annotations

from facetwin.models.base import ModelSpec
from facetwin.models.losses import face_loss
from facetwin.models.original import Original


class Masked128(Original):
    spec = ModelSpec(name="masked128", size=128, coverage=0.75, has_mask=True)
    width = 32
    downscales = 5
    criterion = staticmethod(face_loss)
    learning_rate = 2e-4
    betas = (0.9, 0.999)


class Masked256(Original):
    """``masked128`` at 256 px, for GPUs: one more halving (32 to 1024 channels, six in all) to the same 4x4
    dense bottleneck (Dense 1024), upscales from 512 down to 16 channels at 256 px, the learned mask and the
    face-weighted SSIM + L1 loss. 82.5 M parameters and 3.0 G multiply-adds a face forward (masked128:
    20.6 M, 0.63 G), about DeepFaceLab's DF at 256. Its 75 % coverage of the aligned crop is 342 px of
    working size: extract with ``--size 384`` or more so the faces it learns from are not upsampled.

    Not measured for quality against masked128 here: no GPU was available (bench/gpu.sh compares them at
    equal minutes on one); on 2 CPU cores a step takes ~5x masked128's."""

    spec = ModelSpec(name="masked256", size=256, coverage=0.75, has_mask=True)
    width = 32
    downscales = 6
    criterion = staticmethod(face_loss)
    learning_rate = 2e-4
    betas = (0.9, 0.999)
