#!/usr/bin/env bash
# facetwin on a GPU, in one run of under 10 minutes, on a machine with no network where PyTorch (CUDA),
# OpenCV, rich, typer, safetensors and matplotlib are installed (the H200 image; see the device tool's
# KINDS.md). bench/gpu_prepare.sh made, beforehand, the face sets (bench/gpu_data) and the wheels (.whl)
# that travel with it. Results as JSON (and logs) under $OUT:
#   tests.xml      the training tests on CUDA: resume equals an uninterrupted run, NaN stop, a checkpoint
#                  trained on the GPU swaps on the CPU, masked128 in bf16, a short run learns
#   torchrun.log   a one-GPU torchrun (NCCL) run
#   speed.json     bench/train_speed.py: images/s, MFU and data wait per model, batch (16, 64, 256) and
#                  precision; swap faces/s at batch 16 and 64
#   compare.json   bench/compare_models.py: masked128 against masked256 at equal minutes, held-out scores
# device run: command "bash bench/gpu.sh", carry [".whl", "bench/gpu_data"], timeout_s 600.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/facetwin-gpu}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 FACETWIN_CONFIG_DIR=/tmp/facetwin-config
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
SETS=$PWD/bench/gpu_data/A:$PWD/bench/gpu_data/B
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
python3 -c "import torch; print(torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name())" | tee "$OUT/torch.txt"
stage() { echo "== $1 ($(date +%T))"; }

stage tests
FACETWIN_TEST_FACESETS=$SETS timeout 150 python3 -m pytest -q -p no:cacheprovider --junitxml="$OUT/tests.xml" tests/test_train.py \
  -k "resumed_run_equals or nan_loss or trained_on_any_device or masked128_trains or short_training_run" 2>&1 | tail -15

stage torchrun
timeout 60 python3 -m torch.distributed.run --standalone --nproc_per_node=1 -m facetwin train bench/gpu_data/A bench/gpu_data/B \
  -m /tmp/ddp --model masked128 --iterations 20 --device cuda --save-every 20 > "$OUT/torchrun.log" 2>&1; echo "exit $?" >> "$OUT/torchrun.log"
tail -2 "$OUT/torchrun.log"

stage speed
timeout 270 python3 bench/train_speed.py --faces bench/gpu_data/A bench/gpu_data/B --device cuda --steps 12 --workers 8 \
  > "$OUT/speed.json" 2> "$OUT/speed.log"; tail -3 "$OUT/speed.log"

stage compare
timeout 150 python3 bench/compare_models.py --faces bench/gpu_data/A bench/gpu_data/B --models masked128,masked256 --minutes 2 \
  --score-every 1 --device cuda --work /tmp/compare --plot "$OUT/compare.png" > "$OUT/compare.json" 2> "$OUT/compare.log"; tail -3 "$OUT/compare.log"
stage done
