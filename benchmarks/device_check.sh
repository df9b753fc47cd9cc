#!/usr/bin/env bash
# The accelerator check (vasa_jax/bench/device_check.py): generation and both stages' training
# steps at the paper size, and a stage-1 learning run, in one command of at most 8 minutes.
#
#   bash benchmarks/device_check.sh [--out DIR] [--profile]   on the GPU machine (DIR: $OUT)
#   bash benchmarks/device_check.sh --dry_run --out DIR       the same at tiny size on a CPU
#
# Prepare first, on the CPU machine: `bash benchmarks/device_prepare.sh` fetches the wheels the
# GPU image lacks into .whl/ and builds the learning run's data into .device_data/; it prints the
# paths to carry. Where this Python lacks them, those wheels are installed into a temporary
# folder, without the index. $PYTHON picks the interpreter (default: .venv/bin/python where it
# exists, else python3).
set -uo pipefail
cd "$(dirname "$0")/.."
# The project's environment where there is one (`make venv`), else the machine's Python.
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c "import grain, ml_collections, tensorflow_datasets" 2>/dev/null \
    && compgen -G ".whl/*.whl" >/dev/null; then
  site=${TMPDIR:-/tmp}/vasa_device_site
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl || { echo "device_check: installing .whl/ failed" >&2; exit 1; }
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m vasa_jax.bench.device_check "$@"
