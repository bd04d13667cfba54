#!/usr/bin/env bash
# Everything that needs CUDA, in one call, on a GPU machine that has torch, torchvision, timm,
# sentence-transformers, scikit-learn and pandas but maybe not skorch, accelerate or the bundled weights:
# put their wheels in .whl/ beside this checkout. Results go to $OUT (default: ./gpu-results).
#   bash benchmarks/gpu_check.sh           # the whole check, a few minutes
#   bash benchmarks/gpu_check.sh --quick   # tiny sizes (also runs on a CPU, to test this script)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
PY=${PYTHON:-python3}  # the interpreter that has torch (PYTHON=.venv/bin/python to try it here)
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
"$PY" - <<'PY' | tee "$OUT/device.txt"
import torch, platform
print("torch", torch.__version__, "cuda", torch.version.cuda, "python", platform.python_version())
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
PY
device=cuda
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || device=cpu
"$PY" -m pytest tests/test_gpu.py -q -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log"
quick=""
[ "${1:-}" = "--quick" ] && quick="--quick"
"$PY" benchmarks/run.py --device "$device" --out "$OUT" $quick 2>&1 | tee "$OUT/benchmarks.log"
# Deep domain adaptation with a backbone that trains (DANN, CORAL, MMD: minutes an epoch on a
# CPU), amazon -> webcam. Needs skada and POT (wheels in .whl/) and the shared Office data;
# left out with --quick. Its results file is copied into $OUT.
data=${SKTRANSFER_DATA:-../shared/data}
if [ -z "$quick" ] && [ -d "$data/office_caltech_10" ]; then
  SKTRANSFER_DATA="$data" "$PY" benchmarks/real_adaptation.py --only deep --seeds 0 \
    --deep-freeze last:3 --deep-adaptations none dann coral mmd adabn+pseudo_label \
    --device "$device" 2>&1 | tee "$OUT/adaptation.log"
  cp benchmarks/results/real-adaptation-"$(hostname)".* "$OUT"/ 2>/dev/null
else
  echo "deep adaptation: left out (--quick, or no $data/office_caltech_10)" | tee "$OUT/adaptation.log"
fi
