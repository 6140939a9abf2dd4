#!/bin/bash
# Builds the payload a lent GPU machine needs for bench/device/nerf.sh, in .gpu/ (git-ignored through
# .git/info/exclude; pass it to the device tool as `carry: [".gpu"]`, about 40 MB):
#   * wheels the machine's image lacks (imageio-ffmpeg, soundfile and its cffi/pycparser; its Python is 3.12),
#   * the demo's synthetic actor without its models and frame caches (rebuilt there from the videos).
# Run from the repository root after `python build.py demo`:  bash bench/device/prepare.sh
set -eu
mkdir -p .gpu .git/info
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux2010_x86_64 -d .gpu imageio-ffmpeg==0.5.1 soundfile==0.13.1 cffi==2.1.1 pycparser==3.12
tar --exclude='actors/synthetic/models' --exclude='cache' -czf .gpu/syn.tgz -C demo-out \
  workspace/emodub.json workspace/actors/synthetic
cp bench/device/nerf.sh .gpu/run.sh
du -sh .gpu
