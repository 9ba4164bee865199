#!/usr/bin/env bash
# Prepare what bench/gpu.sh needs on a GPU machine without network (run here, once, from the repo root):
# small face sets (MediaPipe is not there to extract them) and wheels for the packages its image lacks
# (Python 3.12; av and tensorboardX). Both go to folders git ignores through .git/info/exclude and
# travel with the working tree (device run: carry [".whl", "bench/gpu_data"]; 64 MiB in all).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
grep -qx '/bench/gpu_data/' .git/info/exclude || echo '/bench/gpu_data/' >> .git/info/exclude
rm -rf bench/gpu_data && mkdir -p bench/gpu_data .whl
$PY - <<'PY'
from pathlib import Path
from facetwin.demo_data import ensure_demo_clips
from facetwin.extract import extract
from facetwin.options import ExtractOptions
clips = ensure_demo_clips()
# 160 px crops keep the PNGs small (the sets travel); every model's working size is cut from them
extract([clips.franck], Path("bench/gpu_data/A"), ExtractOptions(every=10, max_faces=1, size=160))
extract([clips.cap12], Path("bench/gpu_data/B"), ExtractOptions(every=5, max_faces=1, size=160))
PY
rm -rf bench/gpu_data/*/cache
for package in av==18.1.0 tensorboardX==2.6.5; do
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl "$package"
done
du -sh bench/gpu_data .whl
