#!/usr/bin/env bash
# Downloads, here (where pip reaches the package index), the wheels genzoo needs on the GPU machine and
# that machine's Python 3.12 image lacks, into .whl/ (git-ignored) for benchmarks/gpu_check.sh to install
# there with pip --no-index. Run once before the device call that carries .whl:
#
#   bash benchmarks/gpu_wheels.sh
#
# What the image lacks (its package list: torch, torchvision, accelerate, safetensors, rich, typer, PyYAML,
# tensorboard, torchmetrics, matplotlib, numpy, pillow, scipy, huggingface-hub, requests, regex, filelock,
# pytest, pytest-xdist are there): pydantic with pydantic-core, annotated-types and typing-inspection
# (typing-extensions too, since pydantic wants a recent one), and diffusers for the diffusion benchmark.
# diffusers' other needs are all in the image, and on Python 3.12 it does not import importlib_metadata.
# The gpu tests need none of torch-fidelity, pytorch-fid or prdc. Versions are the ones the tests pass with
# here; one version of each, or the --no-deps install there stops.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
WHEELS=(
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
    typing-extensions==4.16.0
    diffusers==0.42.1
)
LIMIT_MIB=30

cd "$REPO"
git check-ignore -q .whl/x.whl || echo /.whl/ >> "$(git rev-parse --git-path info/exclude)"  # never committed, never sent unless carried
rm -rf .whl
mkdir .whl
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
ls -l .whl
size=$(du -sk .whl | cut -f1)
echo "$(ls .whl/*.whl | wc -l) wheels, $((size / 1024)) MiB in .whl/ (limit $LIMIT_MIB MiB)"
if ((size > LIMIT_MIB * 1024)); then
    echo ".whl/ is over $LIMIT_MIB MiB; the device call carries at most 64 MiB with the working tree" >&2
    exit 1
fi
