#!/usr/bin/env bash
# genzoo's GPU checks in one command: on a machine with one CUDA GPU, within 8 minutes in all,
#   - the `gpu`-marked tests (pytest -m gpu),
#   - benchmarks/train_speed.py: DCGAN training speed against the eager pytorch/examples loop (batches 64, 512),
#   - benchmarks/diffusion.py speed: the DDPM CIFAR-10 U-Net against diffusers (then with --compile, if time is left),
#   - benchmarks/eval_speed.py: feature extraction and FID/KID/PR/DC against torchmetrics' FID,
# and writes ONE JSON of results, OUTDIR/gpu_check.json (each benchmark's own JSON beside it; all of every
# part's output in OUTDIR/gpu_check.log), then prints a short table. OUTDIR ends with 7 files.
#
# Each part runs under its own time limit (less when the overall budget has less left), so that one hang
# does not eat the others; a part that fails or times out is recorded with the last lines of its output,
# and the script goes on. Exit status: 0 when every part that ran passed, 1 otherwise, 2 on bad usage.
#
#   bash benchmarks/gpu_check.sh OUTDIR                  # on the GPU machine
#   bash benchmarks/gpu_check.sh OUTDIR --cpu-dry-run    # here: every part at tiny sizes on the CPU, ~2 minutes
#
# On the GPU machine the packages genzoo needs there and that machine lacks (pydantic and its needs,
# diffusers) come as wheels in .whl/, made here by `bash benchmarks/gpu_wheels.sh`; they are installed with
# pip --no-index into /tmp/site, and genzoo runs from this checkout through PYTHONPATH (it is not installed:
# there is no network there). A dry run installs nothing: it uses $GPU_CHECK_PYTHON, else the repo's
# .venv/bin/python, else python3, with PYTHONPATH set to this checkout.
# Environment: GPU_CHECK_BUDGET (seconds, default 480), GPU_CHECK_DRY_RUN=1 (same as --cpu-dry-run),
# GPU_CHECK_SCALE (an integer multiplying every limit and the default budget, e.g. 3 for a dry run on a busy
# machine), GPU_CHECK_PYTHON (the interpreter), GPU_CHECK_SITE (where the wheels go, default /tmp/site).
set -uo pipefail

usage() { echo "usage: bash benchmarks/gpu_check.sh OUTDIR [--cpu-dry-run]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1
shift
DRY=${GPU_CHECK_DRY_RUN:-0}
for arg in "$@"; do
    case $arg in
        --cpu-dry-run) DRY=1 ;;
        *) usage ;;
    esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/genzoo-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SCALE=${GPU_CHECK_SCALE:-1}      # an integer that multiplies every limit (a slow or busy machine)
BUDGET=${GPU_CHECK_BUDGET:-$((480 * SCALE))}  # seconds for everything, the wheel install included
RESERVE=10                       # kept back for the report at the end
MIN_PART=20                      # a part is not started with less than this left
START=$SECONDS
PARTS=$WORK/parts.tsv
LOG=$OUT/gpu_check.log
: > "$PARTS"
: > "$LOG"
cd "$REPO" || exit 2

export PYTHONUNBUFFERED=1 MPLBACKEND=Agg HF_HUB_OFFLINE=1 GENZOO_CACHE=$WORK/cache
if [ "$DRY" = 1 ]; then
    PY=${GPU_CHECK_PYTHON:-}
    [ -n "$PY" ] || { [ -x "$REPO/.venv/bin/python" ] && PY=$REPO/.venv/bin/python; } || PY=python3
    export PYTHONPATH=$REPO
    DEVICE=cpu
else
    PY=${GPU_CHECK_PYTHON:-python3}
    SITE=${GPU_CHECK_SITE:-/tmp/site}  # where the carried wheels are installed
    export PYTHONPATH=$SITE:$REPO
    DEVICE=cuda
fi

# record KEY TITLE RC STARTED ENDED LIMIT RESULT LOGFILE NOTE: one line of the parts file, then the JSON so far
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$PARTS"
    "$PY" benchmarks/gpu_report.py report "$PARTS" "$OUT/gpu_check.json" --budget "$BUDGET" --quiet \
        $([ "$DRY" = 1 ] && echo --dry-run) >/dev/null 2>&1
}

# run_part KEY TITLE LIMIT RESULT_FILE COMMAND...: COMMAND under `timeout` (its whole process group is signalled),
# with LIMIT seconds or what the budget has left; output to $WORK/KEY.log, appended to gpu_check.log.
run_part() {
    local key=$1 title=$2 limit=$3 result=$4
    shift 4
    limit=$((limit * SCALE))
    local left=$((BUDGET - (SECONDS - START) - RESERVE))
    ((limit > left)) && limit=$left
    if ((limit < MIN_PART)); then
        record "$key" "$title" "" "" "" 0 "" "" "not run: $((SECONDS - START)) s of the $BUDGET s budget spent"
        echo "== $title: skipped, the budget is spent" | tee -a "$LOG"
        return
    fi
    rm -f "$result"
    echo "== $title: at most $limit s: $*" | tee -a "$LOG"
    local started ended rc from=$SECONDS
    started=$(date +%s.%N)
    timeout --kill-after=10 "$limit" "$@" < /dev/null > "$WORK/$key.log" 2>&1
    rc=$?
    ended=$(date +%s.%N)
    cat "$WORK/$key.log" >> "$LOG"
    echo "== $title: exit $rc after $((SECONDS - from)) s" | tee -a "$LOG"
    record "$key" "$title" "$rc" "$started" "$ended" "$limit" "$result" "$WORK/$key.log" ""
}

skip_part() {  # KEY TITLE NOTE
    record "$1" "$2" "" "" "" 0 "" "" "$3"
    echo "== $2: skipped: $3" | tee -a "$LOG"
}

# ---------------------------------------------------------------------------- the wheels and the environment
if [ "$DRY" = 1 ]; then
    skip_part install "install wheels" "dry run: $PY's own packages"
elif compgen -G ".whl/*.whl" > /dev/null; then
    run_part install "install wheels" 30 "" \
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
else
    record install "install wheels" 1 "$(date +%s.%N)" "$(date +%s.%N)" 0 "" "" \
        "no .whl/*.whl: run bash benchmarks/gpu_wheels.sh before the call and carry .whl"
fi
run_part environment "environment" 30 "$WORK/env.json" \
    "$PY" benchmarks/gpu_report.py env "$WORK/env.json" $([ "$DRY" = 1 ] || echo --require-cuda)

# ---------------------------------------------------------------------------- the benchmarks, then the tests
if [ "$DRY" = 1 ]; then
    TRAIN=(--batches 2,4 --steps 1 --rounds 1 --warmup 1)
    DIFFUSION=(--smoke --batch 2 --iterations 1 --samples 1)
    EVAL=(--num 500 --batch 250)
    COMPILE=(env TORCH_COMPILE_DISABLE=1)  # compiling takes minutes on a small CPU: the code path only
    COMPILE_TITLE="diffusion, compile (off)"
else
    TRAIN=(--batches 64,512)
    DIFFUSION=()
    EVAL=()
    COMPILE=()
    COMPILE_TITLE="diffusion, torch.compile"
fi
run_part train_speed "DCGAN train speed" 75 "$OUT/train_speed.json" \
    "$PY" benchmarks/train_speed.py --device "$DEVICE" ${TRAIN[@]+"${TRAIN[@]}"} --json "$OUT/train_speed.json"
run_part diffusion_speed "diffusion vs diffusers" 105 "$OUT/diffusion_speed.json" \
    "$PY" benchmarks/diffusion.py speed --device "$DEVICE" ${DIFFUSION[@]+"${DIFFUSION[@]}"} --json "$OUT/diffusion_speed.json"
run_part eval_speed "eval speed" 110 "$OUT/eval_speed.json" \
    "$PY" benchmarks/eval_speed.py --device "$DEVICE" ${EVAL[@]+"${EVAL[@]}"} --json "$OUT/eval_speed.json"
XDIST=()
"$PY" -c "import xdist" 2> /dev/null && XDIST=(-n 2)  # the two 5,000-step runs side by side: they are launch-bound
run_part gpu_tests "gpu tests (pytest -m gpu)" 170 "$OUT/pytest_gpu.xml" \
    "$PY" -m pytest -m gpu -v -p no:cacheprovider ${XDIST[@]+"${XDIST[@]}"} --junitxml="$OUT/pytest_gpu.xml"
run_part diffusion_compile "$COMPILE_TITLE" 240 "$OUT/diffusion_speed_compile.json" \
    ${COMPILE[@]+"${COMPILE[@]}"} "$PY" benchmarks/diffusion.py speed --device "$DEVICE" ${DIFFUSION[@]+"${DIFFUSION[@]}"} --compile \
    --json "$OUT/diffusion_speed_compile.json"

# ---------------------------------------------------------------------------- one JSON, one table
"$PY" benchmarks/gpu_report.py report "$PARTS" "$OUT/gpu_check.json" --budget "$BUDGET" $([ "$DRY" = 1 ] && echo --dry-run)
exit $?
