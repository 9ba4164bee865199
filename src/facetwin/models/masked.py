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
