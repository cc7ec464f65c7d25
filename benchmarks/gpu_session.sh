#!/usr/bin/env bash
# One GPU session: install graphlearn on a bare CUDA machine, check the compiled Triton kernels
# against the reference (tests/kernels/test_cuda.py), then time every kernel benchmark against
# its anchor. Output lands in $OUT (default ./gpu-out): env.txt, test_cuda.log and one JSON-lines
# file per benchmark, named like the files in benchmarks/results/.
#
#   bash benchmarks/gpu_session.sh [tests] [scan] [kernels] [models]   # default: all four
#   TEST_K="edge_softmax" SCAN_CASES=graph-mamba bash benchmarks/gpu_session.sh tests scan
#
# Where the machine has no package index, missing wheels can wait in .whl/ (installed with
# --no-index) and datasets in .gpu_data/ (GRAPHLEARN_DATA).
set -uo pipefail
export PYTHONUNBUFFERED=1 TRITON_INTERPRET=0
OUT=${OUT:-gpu-out}
top=$OUT
OUT=$top/work
mkdir -p "$OUT"
steps=${*:-tests scan kernels models}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation . >"$OUT/install.log" 2>&1 \
    || { cat "$OUT/install.log"; exit 1; }
[ -d .gpu_data ] && export GRAPHLEARN_DATA=$PWD/.gpu_data
cd /tmp  # import the installed package, not the checkout's folders
repo=$OLDPWD
{
    date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    python3 -c "import sys, torch, triton, torch_geometric as g; print(sys.version.split()[0], \
'torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__, \
'pyg', g.__version__, torch.cuda.get_device_name())"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

run() {  # run NAME SECONDS CMD...: stdout to $OUT/NAME, stderr tail to the log
    local name=$1 limit=$2; shift 2
    echo "== $name"
    timeout "$limit" "$@" >"$OUT/$name" 2>"/tmp/$name.err"
    local rc=$?
    [ $rc -ne 0 ] && { echo "   rc=$rc"; tail -5 "/tmp/$name.err"; }
    tail -n 50 "$OUT/$name" | cut -c1-400
    tar czf "$top/results.tgz" -C "$top" work
}

for step in $steps; do
    case $step in
    tests)
        run test_cuda.log 300 python3 -m pytest ${TEST_K:+-k "$TEST_K"} -q -p no:cacheprovider --rootdir "$repo" \
            -c "$repo/pyproject.toml" "$repo/tests/kernels/test_cuda.py" \
            "$repo/tests/kernels/test_segment_matmul.py::test_cuda_path_does_not_synchronise"
        ;;
    scan)
        run selective_scan-cuda.jsonl 240 python3 "$repo/benchmarks/selective_scan.py" \
            --device cuda --cases ${SCAN_CASES:-graph-mamba packed} \
            --profile "$OUT/selective_scan-cuda-profile.txt"
        ;;
    kernels)
        run segment_matmul-cuda.jsonl 90 python3 "$repo/benchmarks/segment_matmul.py" \
            --device cuda
        run traversal-cuda.jsonl 90 python3 "$repo/benchmarks/traversal.py" --device cuda
        run weighted_aggregate-cuda.jsonl 90 python3 "$repo/benchmarks/weighted_aggregate.py" \
            --device cuda
        ;;
    models)
        run gatv2-cuda.jsonl 90 python3 "$repo/benchmarks/gatv2.py" --device cuda
        run rgnn-cuda.jsonl 120 python3 "$repo/benchmarks/rgnn.py" --device cuda
        ;;
    esac
done
