"""Built engines as MLflow LoggedModels, in a real sqlite store filled by real tiny runs (ONNX Runtime on the CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from mlflow.tracking import MlflowClient

from blockbench.recording.models import content_sha256, engine_file, engine_kind, is_linked
from tests.helpers import TINY, run_main, store_runs


def test_a_re_measured_engine_is_one_model_with_both_runs_metrics_and_one_file(tmp_path: Path) -> None:
    args = [*TINY, "tracking.large_file_mb=0"]  # the tiny engine counts as large: references, not copies
    first = run_main(*args, tmp_path=tmp_path)
    second = run_main(*args, tmp_path=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-3000:]
    runs = store_runs(tmp_path / "mlflow.db")
    assert len(runs) == 2

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "blockbench"]
    found = client.search_logged_models([experiment.experiment_id], filter_string="metrics.latency_ms_median > 0")
    (model,) = found
    builder = next(r for r in runs if r["run_id"] == model.source_run_id)
    assert model.name == "vgg-bn-relu-64-fp32-onnxruntime" and model.model_type == "onnxruntime"
    assert model.status == "READY"
    assert model.params["block.name"] == "vgg" and model.params["precision.name"] == "fp32"
    assert model.params["backend.graph_optimization_level"] == "all"
    assert model.tags["engine.library"] == "onnxruntime" and model.tags["engine.library_version"]
    assert model.tags["engine.build_target"] == "CPUExecutionProvider"

    # Both runs' latencies are linked to the one model; each run keeps its own as well.
    latencies = {m.run_id: m.value for m in model.metrics if m.key == "latency_ms_median"}
    assert latencies == {r["run_id"]: r["metrics"]["latency_ms_median"] for r in runs}
    assert {m.key for m in model.metrics} >= {"parity_rel_l2_err", "throughput_qps", "latency_ms_p99"}
    assert not any(m.key in ("params_count", "artifact_mb") for m in model.metrics)

    # One copy of the engine in the whole store: the model's; each run refers to it.
    copies = sorted(tmp_path.glob("mlartifacts/**/model.ort.onnx"))
    assert copies == [Path(model.artifact_location.removeprefix("file://")) / "model.ort.onnx"]
    assert model.tags["blockbench.engine_sha256"] == content_sha256(copies[0])
    for run in runs:
        (ref,) = tmp_path.glob(f"mlartifacts/*/{run['run_id']}/artifacts/engine/model.ort.onnx.ref.json")
        assert json.loads(ref.read_text())["model_id"] == model.model_id
    assert "already stored by model" in second.stderr + second.stdout

    # The run pages name the model: the builder's output, the re-measure's input.
    assert [o.model_id for o in client.get_run(builder["run_id"]).outputs.model_outputs] == [model.model_id]
    other = next(r for r in runs if r is not builder)
    assert [i.model_id for i in client.get_run(other["run_id"]).inputs.model_inputs] == [model.model_id]
    assert "engine: LoggedModel" in other["tags"]["mlflow.note.content"]


def test_onnx_engines_are_one_content_whatever_their_node_names(tmp_path: Path) -> None:
    node = onnx.helper.make_node("Relu", ["x"], ["y"], name="Relu_token_1")
    value = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    out = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    paths = []
    for i, name in enumerate(("Relu_token_1", "Relu_token_7")):
        node.name = name
        graph = onnx.helper.make_model(onnx.helper.make_graph([node], "g", [value], [out]))
        paths.append(tmp_path / f"{i}.onnx")
        onnx.save(graph, paths[-1])
    assert paths[0].read_bytes() != paths[1].read_bytes()
    assert content_sha256(paths[0]) == content_sha256(paths[1])
    node.op_type = "Sigmoid"
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([node], "g", [value], [out])), tmp_path / "2.onnx")
    assert content_sha256(tmp_path / "2.onnx") != content_sha256(paths[0])


@pytest.mark.parametrize(
    ("params", "tags", "kind"),
    [
        ({"backend.name": "onnxruntime"}, {}, "onnxruntime"),
        ({"backend.name": "torch", "backend.mode": "aoti"}, {}, "torch-aoti"),
        ({"backend.name": "tensorrt", "backend.library": "tensorrt_rtx"}, {}, "tensorrt_rtx"),
        ({"backend.name": "tensorrt"}, {"tensorrt_library": "tensorrt"}, "tensorrt"),
    ],
)
def test_engine_kind_names_the_library(params: dict[str, str], tags: dict[str, str], kind: str) -> None:
    assert engine_kind(params, tags) == kind


def test_the_engine_is_the_build_file_beside_its_reports(tmp_path: Path) -> None:
    for name in ("layer_info.json", "model.engine"):
        (tmp_path / name).write_text("x")
    assert engine_file([tmp_path / "layer_info.json", tmp_path / "model.engine"]) == tmp_path / "model.engine"
    assert engine_file([tmp_path / "layer_info.json", tmp_path / "missing.pt2"]) is None
    assert is_linked("latency_ms_median") and is_linked("parity_rel_l2_err") and not is_linked("macs")
