#!/usr/bin/env bash
# The GPU figures of issues 14 and 19, in one call of the device tool (a lent GPU machine: its own
# python3 with CUDA torch; our other packages travel as wheels in .whl/, see
# /work/.library/device/README.md). Writes its logs under $OUT.
#
#   DEVICE=cuda benchmarks/gpu_check.sh          # on the lent machine
#   DEVICE=cpu N=512 benchmarks/gpu_check.sh     # a dry run here, with .venv's python
#
# 1. bench_predict.py: eager forward and `disfer predict` end to end, mini-Xception and DeepFace,
#    and DeepFace.analyze one image at a time (goals: >= 50x analyze; >= 20,000 img/s end to end).
# 2. bench_finetune.py: one epoch of 27 batches of 42 per model (random weights where absent).
# 3. `disfer finetune --device $DEVICE` through the CLI, which prints each epoch's time.
set -u
DEVICE=${DEVICE:-cuda}
N=${N:-20000}
PY=${PY:-python3}
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
if [ -d .whl ] && [ "$DEVICE" = cuda ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" DEEPFACE_BACKEND_ENGINE=pytorch PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import sys, torch, duckdb, numpy, pandas; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'duckdb', duckdb.__version__, 'numpy', numpy.__version__, 'pandas', pandas.__version__)"

if [ -z "${SKIP_PREDICT:-}" ]; then echo "== bench_predict"
timeout 330 $PY benchmarks/bench_predict.py --device "$DEVICE" --n "$N" --eager-n "$N" --check-n 1024 \
  --rounds 3 --analyze-n 200 2>&1 | grep -v Warning | tee "$OUT/predict.txt"; fi

if [ -z "${SKIP_FINETUNE:-}" ]; then echo "== bench_finetune"
timeout 150 $PY benchmarks/bench_finetune.py --device "$DEVICE" --random-weights --epochs 2 2>&1 | tee "$OUT/finetune.txt"; fi

echo "== disfer finetune --device $DEVICE (CLI, external protocol, synthetic faces)"
DB=/tmp/gpu_check.duckdb; rm -f $DB $DB.wal
$PY -c "import sys; sys.path.insert(0, 'tests'); from pathlib import Path; from conftest import write_fer2013_csv; write_fer2013_csv(Path('/tmp/gpu_check_fer.csv'), per_emotion=60, splits=('PublicTest', 'Training'))"
printf 'import sys\nfrom disfer.cli import main\nsys.exit(main())\n' > /tmp/disfer_cli.py
disfer() { $PY /tmp/disfer_cli.py "$@"; }
disfer --quiet --db $DB ingest fer2013 /tmp/gpu_check_fer.csv
disfer --quiet --db $DB build --per-class 12 --split PublicTest --seed 0
timeout 120 $PY /tmp/disfer_cli.py --db $DB finetune --model minixception --protocol external --distortion gaussian_noise \
  --epochs 3 --device "$DEVICE" 2>&1 | tr '\r' '\n' | grep -v "^\s*$" | grep -iv "it/s\]$" | tail -25 | tee "$OUT/cli_finetune.txt"
