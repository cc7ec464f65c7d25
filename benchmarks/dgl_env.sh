#!/usr/bin/env bash
# Build the separate environment DGL needs (DGL's PyPI wheels stop at torch 2.2) and run the
# DGL side of the relational-GNN benchmark on the graphs benchmarks/rgnn.py exported.
#
#   bash benchmarks/dgl_env.sh                 # build the env (a few minutes), then run
#   DGL_ENV=/path/to/env bash benchmarks/dgl_env.sh --cases aifb mutag
#
# The environment lives outside the project (default /tmp/graphlearn-dgl-env) and is never
# installed into graphlearn's own: DGL stays an optional interop peer.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
env_dir="${DGL_ENV:-/tmp/graphlearn-dgl-env}"
graphs="${RGNN_GRAPHS:-/tmp/graphlearn-rgnn-graphs}"
if [ ! -x "$env_dir/bin/python" ] || ! "$env_dir/bin/python" -c "import dgl" 2>/dev/null; then
  python3 -m venv "$env_dir"
  "$env_dir/bin/pip" install -q "torch==2.2.1" "dgl==2.1.0" "torchdata==0.7.1" "numpy<2" pandas \
    pydantic pyyaml
fi
# export the benchmark graphs from graphlearn's environment (the caller's python)
python "$here/rgnn.py" --export "$graphs" "$@"
"$env_dir/bin/python" "$here/rgnn_dgl.py" --graphs "$graphs" "$@"
