#!/usr/bin/env bash
# Build the separate environment PyKEEN needs and run the knowledge-graph embedding benchmark
# (benchmarks/kg.py: PyKEEN vs graphlearn on FB15k-237) in it.
#
#   . .venv/bin/activate && bash benchmarks/kg_env.sh               # RotatE, dim 200
#   KG_ENV=/path/to/env bash benchmarks/kg_env.sh --models rotate complex --epochs 1
#
# The environment lives outside the project (default /tmp/graphlearn-kg-env) and PyKEEN is
# never installed into graphlearn's own. It is a plain venv of the caller's Python with
# pykeen 1.11.1, torch pinned to the caller's version (so pip does not pull another torch
# build), and a .pth line that adds the caller's site-packages (graphlearn, Lightning, PyG)
# after its own, so both libraries run on the same torch in one process.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
env_dir="${KG_ENV:-/tmp/graphlearn-kg-env}"
torch_version="$(python -c 'import torch; print(torch.__version__.split("+")[0])')"
dev_site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [ ! -x "$env_dir/bin/python" ] || ! "$env_dir/bin/python" -c "import pykeen" 2>/dev/null; then
  python -m venv "$env_dir"
  echo "torch==$torch_version" > "$env_dir/constraints.txt"
  "$env_dir/bin/pip" install -q "pykeen==1.11.1" -c "$env_dir/constraints.txt"
fi
site="$("$env_dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "import site; site.addsitedir('$dev_site')" > "$site/graphlearn-dev.pth"
"$env_dir/bin/python" "$here/kg.py" "$@"
