# Sourced by scripts/device_check.sh and scripts/device_train_check.sh (not run on its own):
# finds a Python whose torch sees a CUDA GPU and makes the harness importable with it.
#
# It tries, in order: $PYTHON, .venv/bin/python, python3, python. The project's own venv pins
# the CPU build of torch, so on a GPU box the system python3 with a CUDA torch is the usual
# pick; the harness is imported from the working tree (no `pip install -e .` needed). Of its
# imports, a CUDA image with torch + transformers typically lacks only jsonschema and its three
# dependencies: if `.whl/` holds wheels they are installed into /tmp/site first (no network).
# Sets PY; returns 2 (with a message) when no usable Python/torch/CUDA was found.

DEVICE_WHEELS=(jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1)

fetch_device_wheels() {  # run here, with network: jsonschema & deps for CPython 3.12 x86_64 -> .whl/
    local py="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
    mkdir -p .whl
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    "$py" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${DEVICE_WHEELS[@]}"
}

find_cuda_python() {
    export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
        TOKENIZERS_PARALLELISM=false MLFLOW_DISABLE_TELEMETRY=true
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    PY=""
    local cand
    for cand in "${PYTHON:-}" .venv/bin/python python3 python; do
        [[ -n "$cand" ]] && command -v "$cand" >/dev/null 2>&1 || continue
        if "$cand" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
            PY="$cand"; break
        fi
        echo "skipping $cand: no torch, or torch sees no CUDA device"
    done
    if [[ -z "$PY" ]]; then
        echo "no Python with a CUDA-enabled torch found (set PYTHON=/path/to/python)"; return 2
    fi
    if ! "$PY" -c 'import jsonschema' 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
        echo "installing carried wheels from .whl/ into /tmp/site"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
            && export PYTHONPATH="$PYTHONPATH:/tmp/site"
    fi
    "$PY" - <<'PYEOF' || { echo "the harness does not import with $PY (see above): carry the missing packages as wheels (.whl/)"; return 2; }
import platform, sys, torch, transformers
import tools.bench, jest.training.trainer  # noqa: F401  (the import chains of the benchmark and the training loop)
print(f"python {platform.python_version()} ({sys.executable}), torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, transformers {transformers.__version__}, GPU {torch.cuda.get_device_name(0)}")
PYEOF
}
