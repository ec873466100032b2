#!/bin/sh
# Makes a venv in DIR with the Python peer's one dependency, the SCGI spec
# author's `scgi` package (pinned), and prints the venv's python:
#
#   PY=$(bench/peer-python.sh /tmp/peer-venv) && "$PY" bench/peer_scgi.py 127.0.0.1:4000
#
# Reuses DIR when the pinned version is already there. pip is bounded by
# `timeout` (PyPI must be reachable; the package builds a small C
# extension, so a C compiler and the Python headers are needed too).
set -eu
SCGI_VERSION=2.2
if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
if [ ! -x "$dir/bin/python" ]; then
    python3 -m venv "$dir" >&2
fi
if ! "$dir/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('scgi') != '$SCGI_VERSION')" 2>/dev/null; then
    timeout 300 "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "scgi==$SCGI_VERSION" >&2
fi
echo "$dir/bin/python"
