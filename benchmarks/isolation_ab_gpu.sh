#!/usr/bin/env bash
# The 12-config FP16 sweep at two commits, alternately, each with cold caches: +experiment=paper_gpu (compile,
# channels-last) and the same in cuda_graph mode. Run folders (tracking off, run.json per job) and each sweep's wall
# time land in OUT; benchmarks/isolation_ab.py prints the table.
#
#   benchmarks/isolation_ab_gpu.sh OLD_TREE OLD_COMMIT NEW_TREE NEW_COMMIT OUT [old-first|new-first]
#
# A tree is `git archive <commit> src conf main.py` unpacked; each runs from its own src (PYTHONPATH), with
# BLOCKBENCH_GIT_COMMIT naming its commit (the device machine has no .git).
set -u
OLD=$1 OLD_COMMIT=$2 NEW=$3 NEW_COMMIT=$4 OUT=$5 ORDER=${6:-old-first}
mkdir -p "$OUT"
AXES=(block=vgg,mobilenet,convnext norm=bn,ln act=relu resolution=64,1024 precision=fp16)
CUDA_GRAPH=(backend.mode=cuda_graph backend.channels_last=false)

sweep() {  # label tree commit [overrides...]
  local label=$1 tree=$2 commit=$3
  shift 3
  local cache=/tmp/ab_cache/$label
  rm -rf "$cache"
  local start end
  start=$(date +%s.%N)
  (cd "$tree" && PYTHONPATH="$tree/src:${PYTHONPATH:-}" BLOCKBENCH_GIT_COMMIT=$commit \
    TORCHINDUCTOR_CACHE_DIR=$cache/inductor TRITON_CACHE_DIR=$cache/triton \
    python main.py -m +experiment=paper_gpu "${AXES[@]}" "$@" tracking.enabled=false cache_dir=$cache \
    hydra.sweep.dir="$OUT/$label" >"$OUT/$label.log" 2>&1)
  local rc=$?
  end=$(date +%s.%N)
  printf '%s\t%s\n' "$label" "$(python -c "print($end - $start)")" >>"$OUT/walls.tsv"
  echo "$label: exit $rc, $(tail -n 20 "$OUT/$label.log" | grep -m1 -o 'sweep: .*')"
}

pair() {  # mode [overrides...]: the two commits one after the other, in ORDER
  local mode=$1
  shift
  if [ "$ORDER" = new-first ]; then
    sweep "new-$mode" "$NEW" "$NEW_COMMIT" "$@"
    sweep "old-$mode" "$OLD" "$OLD_COMMIT" "$@"
  else
    sweep "old-$mode" "$OLD" "$OLD_COMMIT" "$@"
    sweep "new-$mode" "$NEW" "$NEW_COMMIT" "$@"
  fi
}

for mode in ${MODES:-cuda_graph compile}; do  # MODES="cuda_graph" runs one pair
  if [ "$mode" = cuda_graph ]; then pair cuda_graph "${CUDA_GRAPH[@]}"; else pair compile; fi
done
