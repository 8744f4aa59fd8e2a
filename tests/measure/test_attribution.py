"""Time attribution: eager PyTorch and ONNX Runtime profiled on the CPU on tiny networks, TensorRT's layer join on
recorded layer data, inductor's kernel names, and the summary's arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from blockbench.backends.tensorrt.diagnostics import layer_rows
from blockbench.backends.torch.profile import inductor_kernel_class
from blockbench.build.export import export_onnx
from blockbench.errors import ConfigError
from blockbench.job.plan import plan_job
from blockbench.measure import attribution
from blockbench.measure.attribution import OP_CLASSES, Attribution, NodeIndex, OpTime, block_of, common_scope
from blockbench.models import build_model
from tests.helpers import TINY

DATA = Path(__file__).parents[1] / "data"
PLAIN = [c for c in OP_CLASSES if c != "other"]


def attribute(compose_cfg, tmp_path: Path, *overrides: str) -> tuple[Attribution, torch.nn.Module]:
    """Build the job's engine on the CPU, run it once, and attribute 3 profiled inferences."""
    cfg = compose_cfg(*TINY, "benchmark.attribution=true", *overrides)
    plan = plan_job(cfg)
    model = build_model(cfg)
    host = torch.randn(plan.ctx.input_shape)
    onnx_path = None
    if plan.backend_class.needs_onnx:
        onnx_path = tmp_path / "model.onnx"
        export_onnx(model, host, onnx_path, cfg.export.opset)
    plan.ctx.work_dir.mkdir(parents=True, exist_ok=True)
    backend = plan.backend_class(plan.config.backend, plan.ctx)
    backend.build(model, onnx_path)
    step = backend.step(host, "compute")
    with step.context():
        step()
    return backend.attribute(step, 3), model


def check_structure(found: Attribution, model: torch.nn.Module) -> None:
    """Scopes are the model's module paths; blocks are stem, stages.K.J and head; class shares add up to 1."""
    modules = dict(model.named_modules())
    scoped = [r for r in found.rows if r.scope]
    assert scoped and all(r.scope in modules for r in scoped), [r.scope for r in scoped if r.scope not in modules]
    blocks = {r.block for r in scoped}
    assert {"stem", "head", "stages.0.0", "stages.3.0"} <= blocks
    assert all(b in ("stem", "head") or b in modules for b in blocks)
    metrics = found.metrics(latency_ms=found.profiled_ms)
    shares = metrics["attr_fused_frac"] + sum(metrics[f"attr_{c}_frac"] for c in OP_CLASSES)
    assert shares == pytest.approx(1.0)
    assert found.total_ms > 0 and metrics["attr_coverage"] == pytest.approx(found.total_ms / found.profiled_ms)
    assert sum(found.by_block().values()) == pytest.approx(found.total_ms)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_every_operator_class_of_a_convnext_ln_gelu_is_attributed(compose_cfg, tmp_path, backend) -> None:
    found, model = attribute(compose_cfg, tmp_path, f"backend={backend}", "block=convnext", "norm=ln", "act=gelu")
    check_structure(found, model)
    metrics = found.metrics(found.profiled_ms)
    missing = [c for c in PLAIN if not metrics[f"attr_with_{c}_frac"] > 0]
    # The stem's dense 7x7 conv is fused with its BN and ReLU by ONNX Runtime, so "conv" may appear only fused.
    assert not missing, f"{backend}: no time in {missing}: {found.by_class()}"
    norm_rows = [r for r in found.rows if r.op_class == "norm" and r.block.startswith("stages")]
    assert norm_rows and all(r.scope.endswith(".norm") for r in norm_rows)  # LN's ops stay in the LN module
    assert all(r.block == block_of(r.scope) for r in found.rows)


def test_eager_torch_rows_follow_the_resnet_structure(compose_cfg, tmp_path) -> None:
    found, model = attribute(compose_cfg, tmp_path, "backend=torch", "block=resnet", "norm=bn", "act=relu")
    check_structure(found, model)
    adds = [r for r in found.rows if r.op_class == "add"]
    assert {r.scope for r in adds} == {f"stages.{k}.0" for k in range(4)}  # one residual add per block
    assert {r.scope for r in found.rows if r.op_class == "norm"} >= {"stem.1", "stages.0.0.body.1"}


def test_onnx_runtime_sees_no_batchnorm_because_the_export_folds_it(compose_cfg, tmp_path) -> None:
    found, model = attribute(compose_cfg, tmp_path, "backend=onnxruntime", "block=vgg", "norm=bn", "act=relu")
    check_structure(found, model)
    assert found.metrics(found.profiled_ms)["attr_with_norm_frac"] == 0.0
    assert found.method.startswith("onnxruntime")


def test_attribution_is_refused_before_work_where_no_profiler_sees_the_kernels(compose_cfg) -> None:
    cfg = compose_cfg(*TINY, "backend=torch", "backend.mode=compile", "benchmark.attribution=true")
    with pytest.raises(ConfigError, match=r"benchmark.attribution=true cannot run for backend=torch.*inductor"):
        plan_job(cfg)


def test_the_attribution_file_round_trips(tmp_path) -> None:
    rows = [OpTime("k1", "stem.0", "conv", 0.25, 1.0), OpTime("k2", "", "fused: norm+act", 0.125, 2.0)]
    attribution.write(Attribution(rows, "test", 0.5), tmp_path / attribution.FILE)
    assert attribution.read(tmp_path / attribution.FILE) == rows


def test_fused_rows_count_once_and_towards_each_class_they_contain() -> None:
    rows = [
        OpTime("a", "stem.0", "conv", 1.0),
        OpTime("b", "", "fused: conv+norm+act", 2.0),
        OpTime("c", "", "act", 1.0),
    ]
    metrics = Attribution(rows, "t", 5.0).metrics(latency_ms=8.0)
    assert metrics["attr_total_ms"] == 4.0 and metrics["attr_coverage"] == 0.5
    assert metrics["attr_overhead"] == pytest.approx(5.0 / 8.0 - 1)
    assert metrics["attr_fused_frac"] == 0.5 and metrics["attr_conv_frac"] == 0.25
    assert metrics["attr_with_conv_frac"] == 0.75 and metrics["attr_with_norm_frac"] == 0.5
    assert metrics["attr_norm_frac"] == 0.0 and metrics["attr_act_kernels"] == 1.0


def test_merge_gives_means_per_inference_in_first_seen_order() -> None:
    rows = [OpTime("k", "s", "conv", 1.0), OpTime("j", "s", "act", 0.5)] * 4
    merged = attribution.merge(rows, 2)
    assert merged == [OpTime("k", "s", "conv", 2.0, 2.0), OpTime("j", "s", "act", 1.0, 2.0)]


@pytest.mark.parametrize(
    ("scope", "block"),
    [("stem.1", "stem"), ("stages.2.0.body.4", "stages.2.0"), ("stages.0.1", "stages.0.1"), ("head.2", "head"),
     ("", "whole network")],
)  # fmt: skip
def test_blocks_of_module_paths(scope: str, block: str) -> None:
    assert block_of(scope) == block


def test_common_scope_is_the_deepest_shared_module() -> None:
    assert common_scope(["stages.1.0.body.0", "stages.1.0.body.2"]) == "stages.1.0.body"
    assert common_scope(["stages.1.0.norm", "stages.2.0.norm"]) == "stages"
    assert common_scope(["stem.0", "head.2"]) == ""


# -- TensorRT: the layer join on recorded layer data -----------------------------------------------------------------


@pytest.fixture(scope="module")
def convnext_index() -> NodeIndex:
    return NodeIndex.from_onnx(DATA / "convnext_ln_gelu_tiny.onnx")


def test_the_recorded_tensorrt_rtx_engine_is_one_myelin_region_over_the_whole_network(convnext_index) -> None:
    """TensorRT-RTX compiled the whole tiny ConvNeXt into one Myelin layer (recorded from a real build): the join
    says so -- one row spanning the network, every class fused -- rather than inventing a split."""
    recorded = json.loads((DATA / "tensorrt_rtx_layers.json").read_text())["engines"]["convnext_ln_gelu_tiny"]
    name = recorded["Layers"][0]["Name"]
    rows = layer_rows({name: 1.5}, json.dumps(recorded), convnext_index)
    assert len(rows) == 1 and rows[0].ms == 1.5 and rows[0].scope == "" and rows[0].block == "whole network"
    assert rows[0].op_class == "fused: conv+dwconv+linear+norm+act+pool+add"
    # Without the metadata the region's first end is a weight, not a node: its contents are unknown, not guessed.
    assert layer_rows({name: 1.5}, "", convnext_index)[0].op_class == "other"


def test_tensorrt_layer_names_join_to_modules(convnext_index) -> None:
    """Layer names in the forms TensorRT 10 writes (fused layers joined by ' + ', point-wise groups, reformats,
    Myelin regions between two nodes, and Myelin kernels named by the inspector's metadata)."""
    info = {
        "Layers": [
            {"Name": "__myl_MulAddErf_myl0_7", "Metadata": "[ONNX Layer: node_Div_25]\x1e[ONNX Layer: node_Erf_26]"}
        ]
    }
    profile = {
        "node_Conv_111 + node_relu": 0.5,
        "Reformatting CopyNode for Input Tensor 0 to node_conv2d_1": 0.125,
        "node_conv2d_1": 0.25,
        "{ForeignNode[node_mean...node_add_1]}": 0.75,
        "node_MatMul_23 + node_linear": 0.5,
        "PWN(node_Div_25, node_Erf_26)": 0.25,
        "__myl_MulAddErf_myl0_7": 0.25,
        "node_add_2": 0.125,
        "node_max_pool2d_1": 0.125,
    }
    nodes = {n.name for n in convnext_index.nodes}
    assert {"node_Conv_111", "node_conv2d_1", "node_mean", "node_add_1", "node_MatMul_23", "node_Div_25"} <= nodes
    rows = {r.name: r for r in layer_rows(profile, json.dumps(info), convnext_index)}
    expect = {
        "node_Conv_111 + node_relu": ("stem", "fused: conv+act"),  # the BN is folded into the conv at export
        "Reformatting CopyNode for Input Tensor 0 to node_conv2d_1": ("stages.0.0.dwconv", "layout"),
        "node_conv2d_1": ("stages.0.0.dwconv", "dwconv"),
        "{ForeignNode[node_mean...node_add_1]}": ("stages.0.0.norm", "norm"),
        "node_MatMul_23 + node_linear": ("stages.0.0.expand", "linear"),
        "PWN(node_Div_25, node_Erf_26)": ("stages.0.0.act", "act"),
        "__myl_MulAddErf_myl0_7": ("stages.0.0.act", "act"),
        "node_add_2": ("stages.0.0", "add"),
        "node_max_pool2d_1": ("stages.0.1", "pool"),
    }
    assert {name: (r.scope, r.op_class) for name, r in rows.items()} == expect


def test_onnx_nodes_carry_module_scopes_and_classes() -> None:
    nodes = {n.name: n for n in attribution.onnx_nodes(DATA / "resnet_bn_relu_tiny.onnx")}
    convs = [n for n in nodes.values() if n.op_type == "Conv"]
    assert {n.op_class for n in convs} == {"conv", "linear"}  # 3x3 and 7x7 convs, and 1x1 shortcut projections
    assert not [n for n in nodes.values() if n.op_type == "BatchNormalization"]  # folded by the exporter
    adds = [n for n in nodes.values() if n.op_class == "add"]
    assert len(adds) == 4 and all(n.module == "ResNetBlock" for n in adds)


# -- torch.compile: inductor's kernel names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kernel", "expected"),
    [
        ("triton_poi_fused__native_batch_norm_legit_no_training_convolution_relu_0", "fused: conv+norm+act"),
        ("triton_per_fused_add_div_mean_mul_pow_sqrt_sub_1", "norm"),
        ("triton_poi_fused_gelu_3", "act"),
        ("triton_per_fused_mean_4", "pool"),
        ("triton_poi_fused_addmm_gelu_view_2", "fused: linear+act"),
        ("triton_poi_fused_max_pool2d_with_indices_relu_6", "fused: act+pool"),
        ("triton_poi_fused_add_5", "other"),
        ("sm90_xmma_fprop_implicit_gemm", "other"),  # not inductor's: classed by its launcher instead
    ],
)
def test_inductor_kernels_are_classed_by_the_ops_their_names_list(kernel: str, expected: str) -> None:
    assert inductor_kernel_class(kernel) == expected
