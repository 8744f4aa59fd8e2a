#!/usr/bin/env bash
# Reproducibility of the covering interval on a GPU: the 6 FP16 configs at 64x64 with 3 trials each, in cuda_graph
# mode and in +experiment=paper_gpu (compile, channels-last), each sweep in its own cold cache. Sweep "a" and "b" of
# a mode are separate sweeps (different processes, other sweeps between them); "p" is the same with the precision
# stopping rule on (benchmark.target_precision=0.005). Run folders (tracking off) and wall times land in OUT;
# benchmarks/reproducibility.py prints the table.
#
#   benchmarks/reproducibility_gpu.sh OUT LABEL...      e.g. OUT cuda_graph-a compile-a cuda_graph-b
set -u
OUT=$1
shift
mkdir -p "$OUT"
AXES=(block=vgg,mobilenet,convnext norm=bn,ln act=relu resolution=64 precision=fp16 benchmark.trials=3)
for label in "$@"; do
  mode=${label%%-*} sweep=${label#*-}
  extra=()
  [ "$mode" = cuda_graph ] && extra+=(backend.mode=cuda_graph backend.channels_last=false run.prebuild_workers=0)
  [ "$sweep" = p ] && extra+=(benchmark.target_precision=0.005)
  cache=/tmp/reproducibility_cache/$label
  rm -rf "$cache"
  start=$(date +%s.%N)
  "${PYTHON:-python3}" main.py -m +experiment=paper_gpu "${AXES[@]}" "${extra[@]}" tracking.enabled=false cache_dir="$cache" \
    hydra.sweep.dir="$OUT/$label" >"$OUT/$label.log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  printf '%s\t%s\n' "$label" "$("${PYTHON:-python3}" -c "print($end - $start)")" >>"$OUT/walls.tsv"
  echo "$label: exit $rc, $("${PYTHON:-python3}" -c "print(round($end - $start, 1))") s"
done
