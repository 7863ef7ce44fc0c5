#!/usr/bin/env bash
# The engine's CUDA paths on a machine with a GPU, in about 8 minutes: the engine tests (their CUDA tests run
# there; nothing here imports gradio) and `python -m editgan bench --device cuda`. Written for Python 3.12 with
# torch 2.11+CUDA, numpy, pillow, safetensors and huggingface_hub (pytest for the tests), offline.
#
#   OUT=/some/folder scripts/gpu_check.sh      # results: $OUT/pytest.txt, $OUT/bench_cuda.json, $OUT/env.txt
#
# Each part has its own time limit, so one that hangs still leaves the other's results; the bench writes its
# JSON after every model. Exit status: 0 when the tests passed and the bench finished, else 1.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0

{
  date
  python --version
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
  git log --oneline -1 2>/dev/null || true
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# nothing the engine tests or the bench import may need gradio (the GPU machine has none)
python -c "import sys, editgan.bench, editgan.cli, editgan.engine.acceleration; \
assert 'gradio' not in sys.modules, 'the engine imported gradio'" || status=1

if python -c "import pytest" 2>/dev/null; then
  # all of test_acceleration (its CUDA tests), the segmenter's dense and ROI-table tests, the editing tests, and
  # the CLI test (sample, edit, apply, embed on the default device: CUDA there)
  timeout 210 python -m pytest -q -rs -p no:cacheprovider --durations=10 tests/test_acceleration.py \
      tests/test_segmenter.py tests/test_editing.py tests/test_bench_cli.py \
      -k "(not test_segmenter or dense or roi_table or equal_naive) and (not test_bench_cli or cli_sample)" \
      > "$OUT/pytest.txt" 2>&1 || status=1
  tail -25 "$OUT/pytest.txt"
else
  echo "pytest is not installed: tests skipped" | tee "$OUT/pytest.txt"
  status=1
fi

timeout 300 python -m editgan bench --device cuda --models embedded,random-512,random-1024 --full --repeats 2 \
    --json "$OUT/bench_cuda.json" > "$OUT/bench_cuda.log" 2>&1 || status=1
tail -5 "$OUT/bench_cuda.log"
exit $status
