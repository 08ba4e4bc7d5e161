#!/usr/bin/env bash
# One-shot Triton throughput check for a GPU machine (issue 6, item 6), about 3-6 minutes once the
# environment is installed. Trains nothing. Writes $OUT/triton_bench.json, $OUT/serving.txt and the
# Triton log to $OUT (default: out/gpu-bench).
#
# 1. `uv sync --frozen`: the locked environment (on Linux x86-64 the locked torch is the CUDA build).
# 2. A model: the newest version in $LIFTSTREAM_MODEL_REPO (default triton_repo); if there is none, an
#    untrained one (pretrained MiniLM + random heads, `python -m stream.bench.random_model`) is exported
#    into a scratch repository with `liftstream export` — scoring costs the same whatever the weights.
# 3. Triton: NVIDIA's server with the libtorch backend when it is installed (/opt/tritonserver, as in the
#    NGC container) serves config.pbtxt: libtorch on the GPU. Otherwise the server in the nvidia-pytriton
#    wheel, which has only the python backend, serves configs/cpu.pbtxt: models/twin.py loads model.pt
#    with map_location="cpu", so that path runs on the host's CPU cores, not the GPU; serving.txt says
#    which path ran.
# 4. `liftstream bench --triton-only` over batch sizes 1..4096 and 1/4/16 requests in flight
#    (BATCH_SIZES, CONCURRENCY and SECONDS_PER_CELL override them).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-out/gpu-bench}
SECONDS_PER_CELL=${SECONDS_PER_CELL:-3}
BATCH_SIZES=${BATCH_SIZES:-1,64,512,4096}
CONCURRENCY=${CONCURRENCY:-1,4,16}
RUN=$(mktemp -d /tmp/liftstream-gpu-bench.XXXXXX)
HTTP=18700 GRPC=18701 METRICS=18702
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_bench.log") 2>&1

nvidia-smi -L || echo "gpu_bench: nvidia-smi found no GPU"
command -v uv >/dev/null || python3 -m pip install -q uv
uv sync --frozen

REPO=${LIFTSTREAM_MODEL_REPO:-triton_repo}
if ! ls "$REPO"/effect_scorer/*/model.pt >/dev/null 2>&1; then
  REPO="$RUN/triton_repo"
  echo "gpu_bench: no model in ${LIFTSTREAM_MODEL_REPO:-triton_repo}; exporting an untrained one into $REPO"
  uv run --frozen python -m stream.bench.random_model "$RUN/model"
  uv run --frozen liftstream export --model "$RUN/model" --repo "$REPO"
fi

TRITON_PID=""
cleanup() {
  if [ -n "$TRITON_PID" ]; then kill "$TRITON_PID" 2>/dev/null || true; fi
  uv run --frozen liftstream local down --service triton --run-dir "$RUN" >/dev/null 2>&1 || true
  cp "$RUN"/triton/triton.log "$RUN"/ngc-triton.log "$OUT"/ 2>/dev/null || true
}
trap cleanup EXIT

if [ -x /opt/tritonserver/bin/tritonserver ] && [ -d /opt/tritonserver/backends/pytorch ]; then
  echo "libtorch backend of /opt/tritonserver, config.pbtxt (KIND_GPU)" | tee "$OUT/serving.txt"
  /opt/tritonserver/bin/tritonserver --model-repository="$(realpath "$REPO")" --http-port=$HTTP \
    --grpc-port=$GRPC --metrics-port=$METRICS >"$RUN/ngc-triton.log" 2>&1 &
  TRITON_PID=$!
  for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$HTTP/v2/health/ready" >/dev/null && break
    sleep 1
  done
else
  echo "python backend of the nvidia-pytriton wheel, configs/cpu.pbtxt: models/twin.py on $(nproc) CPU cores" \
    | tee "$OUT/serving.txt"
  uv run --frozen python -c "
from pathlib import Path
from stream.local.triton import start
start(Path('$RUN/triton'), Path('$REPO'), $HTTP, $GRPC, $METRICS, cpu=True)
"
fi

timeout 420 uv run --frozen liftstream bench --triton-only --triton-url "127.0.0.1:$GRPC" \
  --batch-sizes "$BATCH_SIZES" --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_CELL" \
  --json "$OUT/triton_bench.json"
