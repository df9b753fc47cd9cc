#!/usr/bin/env bash
# Prepares benchmarks/device_check.sh on the CPU machine: the wheels the GPU image lacks, for its
# Python 3.12 on x86-64, into .whl/ (versions from constraints.txt), and the learning run's
# SynthTalk data (128 px) into .device_data/; both folders are ignored by git. Prints what to
# carry and the command to run, and checks that everything that travels stays under 64 MB.
#
#   bash benchmarks/device_prepare.sh            (needs the package index and `make venv`)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
test -x "$PY" || { echo "device_prepare: run \`make venv\` first (or set PY)" >&2; exit 1; }

mkdir -p .whl
"$PY" -m vasa_jax.bench.device_check --print_wheels | while read -r wheel; do
  if ! "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --abi cp312 --abi abi3 --abi none \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform manylinux1_x86_64 --platform any -d .whl "$wheel"; then
    # A pure-Python package published only as a source archive: build its wheel here.
    "$PY" -m pip wheel --quiet --no-deps --no-binary=:all: -w .whl "$wheel"
    if ! compgen -G ".whl/$(echo "${wheel%%==*}" | tr - _)-*-py*-none-any.whl" >/dev/null; then
      echo "device_prepare: no wheel of $wheel for CPython 3.12 on x86-64" >&2
      exit 1
    fi
  fi
  echo "wheel: $wheel"
done

"$PY" -c "from vasa_jax.bench import device_check; device_check.build_data()"

"$PY" - <<'PY'
import pathlib, subprocess
tracked = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout
code = sum(pathlib.Path(p).stat().st_size for p in tracked.decode().split("\0")
           if p and pathlib.Path(p).is_file())
sizes = {"code": code, **{d: sum(f.stat().st_size for f in pathlib.Path(d).rglob("*") if f.is_file())
                          for d in (".whl", ".device_data")}}
total = sum(sizes.values())
print("travels: " + " + ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items())
      + f" = {total / 1e6:.1f} MB (limit 64 MiB)")
if total >= 64 * 2**20:
  raise SystemExit("device_prepare: over the 64 MiB that may travel")
PY
echo 'carry: [".whl", ".device_data"]'
echo 'command: bash benchmarks/device_check.sh    (timeout_s 540; its tables land in $OUT)'
