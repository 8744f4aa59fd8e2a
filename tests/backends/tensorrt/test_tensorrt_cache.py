"""Engine cache keys and invalidation, engine entries in the content cache, atomic writes, the shared timing cache,
load-or-build.

Load-or-build with real builds is tested against TensorRT-RTX in
``tests/backends/tensorrt/test_tensorrt_rtx_builds.py``; here the
GPU double stands in where an engine must be deserialized (hits, entries the runtime rejects) and for standard
TensorRT's timing cache.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from blockbench.backends.tensorrt import library
from blockbench.backends.tensorrt.cache import (
    INFO_FILE,
    PLAN_FILE,
    BuildTarget,
    SharedCacheFile,
    engine_cache,
    engine_material,
    onnx_digest,
)
from blockbench.backends.tensorrt.diagnostics import EngineBuildError
from blockbench.backends.tensorrt.engine import PreparedEngine, prepare_engine
from blockbench.backends.tensorrt.settings import BUILD_FIELDS, RUN_FIELDS, TensorRTSettings
from blockbench.build.cache import MANIFEST, CacheEntry, atomic_write, digest
from tests.tensorrt_gpu_double import CACHE_MAGIC, VERSIONS, Script, install

GPU = BuildTarget("NVIDIA H100 80GB HBM3", "9.0")
DIGEST = "ab" * 32
# A different, valid value for every setting.
CHANGED = {
    "typing": "weak",
    "workspace_gb": 2.0,
    "builder_optimization_level": 4,
    "avg_timing_iterations": 2,
    "max_aux_streams": 0,
    "tiling_optimization_level": "fast",
    "hardware_compatibility_level": "ampere_plus",
    "profiling_verbosity": "none",
    "timing_cache": False,
    "library": "tensorrt_rtx",
    "compute_capabilities": ["8.6"],
    "name": "renamed",
    "engine_cache": False,
    "runtime_cache": True,
    "cuda_graph": True,
    "layer_profile": True,
    "log_level": "verbose",
}


def key(settings: TensorRTSettings | None = None, **changes: str) -> str:
    parts = {"onnx_sha256": DIGEST, "precision": "fp16", "trt_version": "10.16.1.11", "target": GPU, **changes}
    return digest(engine_material(settings=settings or TensorRTSettings(), **parts))  # type: ignore[arg-type]


def test_changed_values_cover_every_setting() -> None:
    assert set(CHANGED) == set(BUILD_FIELDS) | set(RUN_FIELDS)


@pytest.mark.parametrize("name", BUILD_FIELDS)
def test_every_builder_setting_changes_the_key(name: str) -> None:
    assert key(replace(TensorRTSettings(), **{name: CHANGED[name]})) != key()


@pytest.mark.parametrize("name", RUN_FIELDS)
def test_run_only_settings_keep_the_key(name: str) -> None:
    assert key(replace(TensorRTSettings(), **{name: CHANGED[name]})) == key()


@pytest.mark.parametrize(
    "change",
    [
        {"onnx_sha256": "cd" * 32},
        {"precision": "bf16"},
        {"trt_version": "10.16.0.72"},
        {"trt_version": "11.4.0.106"},
        {"target": BuildTarget("NVIDIA H200", "9.0")},
        {"target": BuildTarget("NVIDIA H100 80GB HBM3", "8.0")},
        {"target": BuildTarget("tensorrt_rtx", "8.6+8.9")},
    ],
)
def test_onnx_precision_version_and_target_change_the_key(change: dict[str, object]) -> None:
    assert key(**change) != key()  # type: ignore[arg-type]


def test_fp32_and_tf32_engines_differ() -> None:
    assert key(precision="fp32") != key(precision="tf32")


def test_one_changed_onnx_byte_changes_the_digest(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(bytes(range(256)) * 64)
    before = onnx_digest(path)
    data = bytearray(path.read_bytes())
    data[1000] ^= 1
    path.write_bytes(bytes(data))
    assert onnx_digest(path) != before


def test_external_data_is_part_of_the_digest(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"graph")
    alone = onnx_digest(path)
    (tmp_path / "model.onnx.data").write_bytes(b"weights")
    with_weights = onnx_digest(path)
    (tmp_path / "model.onnx.data").write_bytes(b"weightz")
    assert len({alone, with_weights, onnx_digest(path)}) == 3
    (tmp_path / "other.bin").write_bytes(b"unrelated")
    assert onnx_digest(path) == onnx_digest(path)


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.bin"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two" and [p.name for p in target.parent.iterdir()] == ["file.bin"]


class TestSharedCacheFile:
    def test_one_file_per_release_and_gpu(self, tmp_path: Path) -> None:
        a = SharedCacheFile(tmp_path, "10.16.1.11", GPU)
        assert a.path.name == "tensorrt-10.16.1.11-nvidia-h100-80gb-hbm3-sm90.cache"
        assert SharedCacheFile(tmp_path, "11.4.0.106", GPU).path != a.path

    def test_save_without_a_concurrent_writer_writes_ours(self, tmp_path: Path) -> None:
        file = SharedCacheFile(tmp_path, "10.16.1.11", GPU)
        assert file.load() is None
        file.save(b"ours", None, merge=lambda ours, theirs: pytest.fail("nothing to merge"))
        file.save(b"ours2", b"ours", merge=lambda ours, theirs: pytest.fail("unchanged on disk"))
        assert file.load() == b"ours2"

    def test_save_merges_what_another_job_wrote_meanwhile(self, tmp_path: Path) -> None:
        file = SharedCacheFile(tmp_path, "10.16.1.11", GPU)
        atomic_write(file.path, b"other-job")
        file.save(b"ours", None, merge=lambda ours, theirs: ours + b"+" + theirs)
        assert file.load() == b"ours+other-job"


@pytest.fixture
def onnx_path(tmp_path: Path) -> Path:
    path = tmp_path / "work" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(b"graph-bytes")
    return path


def prepare(onnx_path: Path, settings: TensorRTSettings | None = None, precision: str = "fp16") -> PreparedEngine:
    """Load or build through the double's bindings, deserializing as a timed job on a GPU would."""
    root = onnx_path.parent.parent
    bindings = library.load_bindings("tensorrt")  # the double, installed by the test
    settings = settings or TensorRTSettings()
    runtime = bindings.RuntimeOptions()
    return prepare_engine(bindings, onnx_path, settings, precision, GPU, root / "cache", onnx_path.parent, runtime)


@pytest.mark.parametrize("version", VERSIONS)
def test_miss_then_hit_skips_the_build(monkeypatch, onnx_path: Path, version: str) -> None:
    double, _ = install(monkeypatch, version)
    first = prepare(onnx_path)
    assert first.cache == "miss" and first.builder_s is not None
    assert len(double.calls_to("Builder.build_serialized_network")) == 1
    second = prepare(onnx_path)
    assert second.cache == "hit" and second.builder_s is None and second.plan_path == first.plan_path
    assert len(double.calls_to("Builder.build_serialized_network")) == 1
    assert prepare(onnx_path, TensorRTSettings(builder_optimization_level=5)).cache == "miss"
    assert prepare(onnx_path, TensorRTSettings(cuda_graph=True)).cache == "hit"


def only_entry(onnx_path: Path) -> CacheEntry:
    """The one engine entry in the test's cache (verified)."""
    cache = engine_cache(onnx_path.parent.parent / "cache")
    (folder,) = [p for p in cache.dir.iterdir() if p.is_dir()]
    entry = cache.lookup(folder.name)
    assert entry is not None
    return entry


@pytest.mark.parametrize("version", VERSIONS)
def test_an_entry_holds_the_plan_and_the_build_facts(monkeypatch, onnx_path: Path, version: str) -> None:
    install(monkeypatch, version)
    prepared = prepare(onnx_path)
    entry = only_entry(onnx_path)
    assert prepared.plan_path == entry.path / PLAN_FILE and set(entry.files) == {PLAN_FILE, INFO_FILE}
    assert entry.read_bytes(PLAN_FILE) == prepared.plan_path.read_bytes() and prepared.plan_bytes > 0
    assert json.loads(entry.read_bytes(INFO_FILE)) == {"onnx": "model.onnx", "network_layers": prepared.network_layers}
    assert prepared.network_layers is not None and prepared.network_layers > 0
    trt_version = str(library.load_bindings("tensorrt").VERSION)
    material = engine_material(onnx_digest(onnx_path), TensorRTSettings(), "fp16", trt_version, GPU)
    assert entry.key == digest(material)
    assert json.loads((entry.path / MANIFEST).read_text())["material"] == json.loads(json.dumps(material))


def test_a_corrupt_entry_is_rebuilt(monkeypatch, onnx_path: Path) -> None:
    double, _ = install(monkeypatch, VERSIONS[0])
    plan_path = prepare(onnx_path).plan_path
    data = bytearray(plan_path.read_bytes())
    data[-1] ^= 0xFF
    plan_path.write_bytes(bytes(data))
    again = prepare(onnx_path)
    assert again.cache == "miss" and len(double.calls_to("Builder.build_serialized_network")) == 2
    assert prepare(onnx_path).cache == "hit"


@pytest.mark.parametrize(
    "damage",
    [
        "flip_byte",
        "truncate",
        "plan_missing",
        "info_garbage",
        "manifest_garbage",
        "manifest_other_key",
        "manifest_other_format",
    ],
)
def test_damaged_entries_are_never_trusted(monkeypatch, onnx_path: Path, caplog, damage: str) -> None:
    double, _ = install(monkeypatch, VERSIONS[0])
    good = prepare(onnx_path).plan_path.read_bytes()
    entry = only_entry(onnx_path)
    plan, manifest_path = entry.path / PLAN_FILE, entry.path / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    if damage == "flip_byte":
        plan.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    elif damage == "truncate":
        plan.write_bytes(good[: len(good) // 2])
    elif damage == "plan_missing":
        plan.unlink()
    elif damage == "info_garbage":
        (entry.path / INFO_FILE).write_text("{not json")
    elif damage == "manifest_garbage":
        manifest_path.write_text("{not json")
    elif damage == "manifest_other_key":
        manifest_path.write_text(json.dumps({**manifest, "key": "ab" * 32}))
    else:
        material = {**manifest["material"], "format": "blockbench-tensorrt-engine/2"}
        manifest_path.write_text(json.dumps({**manifest, "material": material}))
    with caplog.at_level(logging.WARNING):
        again = prepare(onnx_path)
    assert again.cache == "miss" and len(double.calls_to("Builder.build_serialized_network")) == 2
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"entry {entry.key[:12]} in {entry.path.parent} is bad (" in warning
    rebuilt = only_entry(onnx_path)  # the damaged entry is gone: the folder holds the rebuilt entry alone
    assert rebuilt.read_bytes(PLAN_FILE) == again.plan_path.read_bytes() and rebuilt.key == entry.key
    assert json.loads(manifest_path.read_text())["material"] == manifest["material"]
    assert sorted(p.name for p in entry.path.parent.iterdir()) == [entry.key, f"{entry.key}.lock"]


def test_an_entry_tensorrt_rejects_is_rebuilt(monkeypatch, onnx_path: Path, caplog) -> None:
    double, _ = install(monkeypatch, VERSIONS[1])
    prepare(onnx_path)
    cache, entry = engine_cache(onnx_path.parent.parent / "cache"), only_entry(onnx_path)
    material = json.loads((entry.path / MANIFEST).read_text())["material"]
    cache.discard(entry)

    def not_a_plan(folder: Path) -> None:  # hash-consistent, but e.g. a driver update makes TensorRT refuse it
        (folder / PLAN_FILE).write_bytes(b"hash-consistent but not a plan")
        (folder / INFO_FILE).write_text("{}")

    assert cache.get_or_build(material, not_a_plan).key == entry.key
    with caplog.at_level(logging.WARNING):
        assert prepare(onnx_path).cache == "miss"
    assert "rejects entry" in caplog.text and len(double.calls_to("Builder.build_serialized_network")) == 2
    assert prepare(onnx_path).cache == "hit"


def test_discarding_a_stale_entry_keeps_its_replacement(monkeypatch, onnx_path: Path) -> None:
    """A job whose runtime refused an entry that another job has meanwhile rebuilt leaves the rebuilt one."""
    install(monkeypatch, VERSIONS[0])
    prepare(onnx_path)
    cache, stale = engine_cache(onnx_path.parent.parent / "cache"), only_entry(onnx_path)
    material = json.loads((stale.path / MANIFEST).read_text())["material"]
    cache.discard(stale)
    assert cache.lookup(stale.key) is None and not list(cache.dir.glob(f"{stale.key}.trash-*"))
    replacement = cache.get_or_build(material, lambda folder: (folder / PLAN_FILE).write_bytes(b"rebuilt"))
    cache.discard(stale)
    assert cache.lookup(stale.key) == replace(replacement, hit=True)


def test_engine_cache_off_builds_into_the_work_dir(monkeypatch, onnx_path: Path) -> None:
    install(monkeypatch, VERSIONS[0])
    prepared = prepare(onnx_path, TensorRTSettings(engine_cache=False))
    assert prepared.cache == "off" and prepared.plan_path == onnx_path.parent / PLAN_FILE
    assert not (onnx_path.parent.parent / "cache" / "tensorrt" / "engines").exists()


def test_the_timing_cache_persists_across_builds(monkeypatch, onnx_path: Path) -> None:
    double, _ = install(monkeypatch, VERSIONS[0])
    prepare(onnx_path, TensorRTSettings(engine_cache=False))
    files = list((onnx_path.parent.parent / "cache" / "tensorrt" / "timing").glob("*.cache"))
    assert len(files) == 1 and files[0].read_bytes() == CACHE_MAGIC + b"+learnt"
    prepare(onnx_path, TensorRTSettings(engine_cache=False))
    assert double.calls_to("IBuilderConfig.create_timing_cache")[-1] == (CACHE_MAGIC + b"+learnt",)
    assert files[0].read_bytes() == CACHE_MAGIC + b"+learnt+learnt"


def test_a_failed_build_stores_nothing(monkeypatch, onnx_path: Path) -> None:
    install(monkeypatch, VERSIONS[0], Script(build_ok=False))
    with pytest.raises(EngineBuildError, match="could not build"):
        prepare(onnx_path)
    engines = engine_cache(onnx_path.parent.parent / "cache").dir
    assert not [p for p in engines.iterdir() if p.suffix != ".lock"]  # no entry, no half-built folder
