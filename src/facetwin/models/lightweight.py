"""``lightweight``: the 2017 network at half its width, for machines without a GPU.

The idea is faceswap's Lightweight model: keep the shared encoder, the dense bottleneck and one decoder
per identity, but make every layer narrower, so that a CPU runs many more steps in the same minutes. At
half the channels a step costs about a quarter of ``original``'s multiply-adds (20.5 M parameters
against 82.1 M), and early in training more steps buy more than more width: on 2 cores, after 4
minutes each, held-out masked L1 was 0.036 (A) and 0.029 (B) against original's 0.065 and 0.053, and
after the demo's 15 minutes it draws the person where ``original`` still draws a blurred mean face.

It trains with the face-weighted SSIM + L1 loss (eyes and mouth first), which brought those features
out sooner than plain L1 (0.036/0.029 against 0.041/0.035 at equal minutes), at Adam 2e-4 (5e-4 was
no better).
"""

from __future__ import annotations

from facetwin.models.base import ModelSpec
from facetwin.models.losses import face_loss
from facetwin.models.original import Original


class Lightweight(Original):
    spec = ModelSpec(name="lightweight", size=64, coverage=0.625, has_mask=False)
    width = 64
    criterion = staticmethod(face_loss)
    learning_rate = 2e-4
