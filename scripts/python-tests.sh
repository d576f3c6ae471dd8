#!/usr/bin/env bash
# The Python package's tests: a fresh venv, `pip install ./python` (maturin
# builds the wheel from this checkout), then pytest on python/tests. The
# tests compare messages with the command line's, so the release binary is
# built first. Prints how long the wheel took.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
venv="$scratch/venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
# PyTorch from PyPI (about 5 GB with its CUDA libraries): the tests load weights into it.
"$venv/bin/pip" install -q pytest safetensors torch
cargo build --release --locked
start=$(date +%s)
"$venv/bin/pip" install -q ./python
echo "python-tests: the wheel built and installed in $(( $(date +%s) - start )) s"
INITSCOPE_BIN="$PWD/target/release/initscope" "$venv/bin/python" -m pytest -q python/tests
