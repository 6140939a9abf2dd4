#!/bin/bash
# One device call (about 8 minutes): NeRF speed of every variant on the GPU alone, then NeRF-AD trained for 3.5
# minutes each (the default, w/o att-d, without the deformation; 4,096 rays per step, 3,000 attention and fusion
# steps) beside the attention module alone at several lengths. Prepared by bench/device/prepare.sh; on the
# device `bash .gpu/run.sh` with carry [".gpu"]; what comes back (at most 8 files): logs.tgz (speed JSON lines, the attention benches' JSON
# and sheets, the training logs) and one .tgz per trained model (tensors only), to measure here:
#   tar -xzf nerf_ad_gpu.tgz -C demo-out/workspace/actors/synthetic/models
#   emodub eval renderer -w demo-out/workspace --actor synthetic --name nerf_ad_gpu
# Local dry run (tiny settings, CPU): SMALL=1 PY=.venv/bin/python OUT=/tmp/gpu-out bash .gpu/run.sh
set -u
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
R=/tmp/gpurun; rm -rf $R; mkdir -p $R
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
if [ -z "${SMALL:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD || exit 1
  DEV=cuda; SPEED_T=130; MIN=3.5; PRE=3000; A1=800; A2=3000; A3=10000; A4=3000; PHASE2_T=330; SIZES="256"
  RAYS=4096
  nvidia-smi -L; $PY -c "import torch, numpy; print(torch.__version__, numpy.__version__, torch.cuda.is_available())"
else
  export PYTHONPATH=$PWD
  DEV=cpu; SPEED_T=60; MIN=0.1; PRE=4; A1=2; A2=3; A3=4; A4=2; PHASE2_T=200; SIZES="64"; RAYS=256
fi
W=/tmp/gpuws; rm -rf $W; mkdir -p $W
for k in a b c d; do mkdir -p $W/$k && tar -xzf .gpu/syn.tgz -C $W/$k; done
# Phase 1: speed alone on the GPU (the workspaces' crop caches build on the CPU meanwhile).
( OMP_NUM_THREADS=8 timeout -k 10 $SPEED_T $PY bench/nerf.py --device $DEV --sizes $SIZES --iterations 20 \
    --frames 4 --renderer neural_texture --renderer lipnerf --renderer triplane --renderer jean --renderer nerf_ad \
    > $R/nerf_speed.jsonl 2> $R/nerf_speed.err ) &
for k in a b c d; do
  OMP_NUM_THREADS=2 $PY -c "
from core.workspace import Workspace
from core.renderers.data import actor_sources
from core.renderers.nerf_ad.model import NeRFAD
from core.renderers.nerf_ad.config import NeRFADConfig
actor_sources(Workspace.open('$W/$k/workspace'), 'synthetic', NeRFAD.needs_for(NeRFADConfig()), 0.2)
" > $R/cache_$k.log 2>&1 &
done
wait
echo "phase 1 done $(date +%T)"; cut -c1-220 $R/nerf_speed.jsonl; tail -3 $R/nerf_speed.err
# Phase 2: everything else in parallel on the one GPU.
export OMP_NUM_THREADS=2
train() {  # name ws extra...
  local name=$1 ws=$2; shift 2
  timeout -k 40 $PHASE2_T $PY -m core.cli train renderer -w $ws --actor synthetic --renderer nerf_ad --name $name \
    --minutes $MIN --holdout 0.2 --seed 0 --restart --no-eval --device $DEV --json --set rays_per_step=$RAYS \
    --set attention_steps=$PRE --set fusion_steps=$PRE "$@" > $R/train_$name.log 2>&1
  echo "train $name rc=$? $(date +%T)"
}
attention() {  # tag steps extra...
  local tag=$1 steps=$2; shift 2
  timeout -k 10 $PHASE2_T $PY bench/nerf_ad_attention.py -w $W/d/workspace --actor synthetic --holdout 0.2 \
    --steps $steps --device $DEV --out $R/$tag "$@" > $R/$tag.jsonl 2> $R/$tag.err
  echo "$tag rc=$? $(date +%T)"
}
train nerf_ad_gpu $W/a/workspace &
train nerf_ad_gpu_noattd $W/b/workspace --set disentangle=false &
train nerf_ad_gpu_nodeform $W/c/workspace --set deform_width=0 &
attention att64_$A1 $A1 &
attention att64_$A2 $A2 &
attention att64_$A3 $A3 &
attention att128_$A4 $A4 --set face_size=128 &
wait
echo "phase 2 done $(date +%T)"
for pair in a:nerf_ad_gpu b:nerf_ad_gpu_noattd c:nerf_ad_gpu_nodeform; do
  k=${pair%%:*}; name=${pair#*:}
  d=$W/$k/workspace/actors/synthetic/models
  [ -d $d/$name ] && tar -czf $OUT/$name.tgz -C $d $name
done
tar -czf $OUT/logs.tgz -C $R .
for f in $R/train_*.log; do echo "== $f"; grep -v '"progress"' $f | tail -n 4 | cut -c1-300; done
cat $R/att*.jsonl | cut -c1-300; tail -n 3 $R/*.err
ls -la $OUT
