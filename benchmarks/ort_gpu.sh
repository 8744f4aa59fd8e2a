#!/usr/bin/env bash
# ONNX Runtime's CUDA provider beside the torch modes on one GPU: the 12 FP16 configs (VGG, MobileNet, ConvNeXt x
# BN, LN x 64, 1024; ReLU), each variant one sweep, tracking off, benchmark=sweep with the precision stopping rule
# at +-0.5 %. All sweeps share one content cache, so the ONNX export is made once (by the first sweep's prebuild)
# and read by the other ONNX Runtime sweeps. Run folders and wall times land in OUT; benchmarks/ort_gpu.py prints
# the table.
#
#   benchmarks/ort_gpu.sh OUT [LABEL...]     labels: ort ort_nhwc ort_graph ort_graph_nhwc eager cuda_graph compile
set -u
OUT=$1
shift
LABELS=("$@")
[ ${#LABELS[@]} -eq 0 ] && LABELS=(ort ort_nhwc ort_graph ort_graph_nhwc eager cuda_graph compile)
mkdir -p "$OUT"
AXES=(block=vgg,mobilenet,convnext norm=bn,ln act=relu resolution=64,1024 precision=fp16 hardware.device=cuda
  benchmark=sweep benchmark.target_precision=0.005 tracking.enabled=false cache_dir="$OUT/cache")
for label in "${LABELS[@]}"; do
  case $label in
    ort) extra=(backend=onnxruntime run.prebuild_workers=6) ;;
    ort_nhwc) extra=(backend=onnxruntime backend.prefer_nhwc=true) ;;
    ort_graph) extra=(backend=onnxruntime backend.cuda_graph=true) ;;
    ort_graph_nhwc) extra=(backend=onnxruntime backend.cuda_graph=true backend.prefer_nhwc=true) ;;
    eager) extra=(backend=torch backend.mode=eager) ;;
    cuda_graph) extra=(backend=torch backend.mode=cuda_graph benchmark.attribution=true) ;;  # kernels: ort_kernels.py
    compile) extra=(+experiment=paper_gpu benchmark.trials=1) ;;  # compile, channels-last; one process per config
    *) echo "unknown label $label" >&2; exit 2 ;;
  esac
  start=$(date +%s.%N)
  "${PYTHON:-python3}" main.py -m "${AXES[@]}" "${extra[@]}" hydra.sweep.dir="$OUT/$label" >"$OUT/$label.log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  printf '%s\t%s\n' "$label" "$("${PYTHON:-python3}" -c "print($end - $start)")" >>"$OUT/walls.tsv"
  echo "$label: exit $rc, $("${PYTHON:-python3}" -c "print(round($end - $start, 1))") s"
done
