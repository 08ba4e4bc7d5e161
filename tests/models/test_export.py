"""`liftstream export`: layout, configs from the signature, verified TorchScript, twin, reference, card."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from models import twin
from models.export import Exported, export_model, next_version, pinned_devices, trace, verify
from models.nets import LoRALinear, PromoEncoder, load_backbone, load_model
from models.pbtxt import CPU_THREADS, SPECS, THREADS
from stream.drift.reference import load_reference
from stream.errors import ModelError
from stream.scoring import signature as sig
from stream.scoring.inprocess import load_torchscript
from tests.scoring import served

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return served.exported(tmp_path_factory)


def _config(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_layout_and_staging_leaves_nothing_behind(exported: Exported) -> None:
    repo = exported.repo
    assert exported.version == 1
    for model in SPECS:
        assert {p.name for p in (repo / model / "1").iterdir()} >= {"model.pt", "model.py"}
        assert (repo / model / "config.pbtxt").is_file()
        assert (repo / model / "configs" / "cpu.pbtxt").is_file()
    assert {p.name for p in (repo / sig.SCORER / "1").iterdir()} >= {"reference.json", "model_card.md"}
    assert not list(repo.parent.glob(".export-*"))


@pytest.mark.parametrize("model", list(SPECS))
def test_configs_follow_the_signature(exported: Exported, model: str) -> None:
    spec = SPECS[model]
    gpu = _config(exported.repo / model / "config.pbtxt")
    cpu = _config(exported.repo / model / "configs" / "cpu.pbtxt")
    assert gpu.platform == "pytorch_libtorch" and cpu.backend == "python"
    assert [g.kind for g in gpu.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    assert [g.kind for g in cpu.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_CPU]
    for config in (gpu, cpu):
        assert config.name == model and config.max_batch_size == spec.max_batch_size
        assert list(config.dynamic_batching.preferred_batch_size) == list(spec.preferred_batch_sizes)
        assert config.dynamic_batching.max_queue_delay_microseconds == spec.max_queue_delay_us
        for declared, wanted in ((config.input, spec.inputs), (config.output, spec.outputs)):
            got = [(t.name, model_config_pb2.DataType.Name(t.data_type), tuple(t.dims)) for t in declared]
            assert got == [(t.name, t.config_dtype, t.dims) for t in wanted]


@pytest.mark.parametrize("model", list(SPECS))
def test_the_twin_runs_torch_on_the_thread_count_its_config_names(exported: Exported, model: str) -> None:
    cpu = _config(exported.repo / model / "configs" / "cpu.pbtxt")
    # The python backend hands the stub its configuration as this JSON.
    as_given = json_format.MessageToDict(cpu, preserving_proto_field_name=True)
    assert twin.intra_op_threads(as_given) == CPU_THREADS == 1
    assert twin.intra_op_threads({"parameters": {THREADS: {"string_value": "4"}}}) == 4
    assert twin.intra_op_threads({}) == 1


@pytest.mark.parametrize("model", list(SPECS))
def test_torchscript_takes_the_signature_names_and_the_twin_is_copied(exported: Exported, model: str) -> None:
    module = load_torchscript(exported.model_files[model])
    arguments = tuple(a.name for a in module.forward.schema.arguments[1:])
    assert arguments == tuple(t.name for t in SPECS[model].inputs)
    assert (exported.model_files[model].parent / "model.py").read_text() == Path(twin.__file__).read_text()


def test_scorer_torchscript_equals_eager_through_the_twin_batching(
    exported: Exported, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, scorer, _ = load_model(served.model_dir(tmp_path_factory))
    module = load_torchscript(exported.model_files[sig.SCORER])
    ds = served.dataset(tmp_path_factory)
    rng = np.random.default_rng(0)
    vectors = rng.uniform(-1, 1, (len(ds), sig.PROMO_DIM)).astype(np.float32)
    parts = (slice(0, 1), slice(1, 30), slice(30, None))
    requests = [[ds.user_features[s], vectors[s], ds.promo_attrs[s]] for s in parts]
    batched, sizes = twin.concat_requests(requests)
    per_request = twin.split_outputs(twin.run_module(module, batched), sizes)
    with torch.inference_mode():
        want = scorer(*(torch.from_numpy(a) for a in (ds.user_features, vectors, ds.promo_attrs)))
    for i in range(2):
        got = np.concatenate([outs[i] for outs in per_request])
        np.testing.assert_allclose(got, want[i].numpy(), atol=1e-5, rtol=1e-5)
    assert [len(outs[0]) for outs in per_request] == sizes == [1, 29, len(ds) - 30]


def test_reference_statistics_cover_inputs_and_predicted_uplift_per_arm(
    exported: Exported, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reference = load_reference(exported.repo / sig.SCORER / "1" / "reference.json")
    with np.load(served.model_dir(tmp_path_factory) / "reference_matrix.npz") as npz:
        arm = npz["arm"]
    assert reference.features[: len(sig.USER_FEATURES)] == sig.USER_FEATURES
    assert reference.features[-len(sig.OUTCOMES) :] == tuple(f"uplift_{o}" for o in sig.OUTCOMES)
    treated = int(arm.sum())
    assert reference.rows == {"overall": len(arm), "treatment": treated, "holdout": len(arm) - treated}


def test_model_card_names_version_formulation_data_and_metrics(exported: Exported) -> None:
    card = (exported.repo / sig.SCORER / "1" / "model_card.md").read_text()
    assert "served version 1" in card and "T-learner" in card
    assert "| train |" in card and "Qini" in card and "| visit |" in card
    assert "LoRA rank 8, alpha 16 on query/value, merged for serving" in card


def test_existing_versions_are_refused_before_any_work(exported: Exported, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="already has version 1"):
        export_model(tmp_path / "no-model-needed", exported.repo, version=1)
    with pytest.raises(ModelError, match="start at 1"):
        export_model(tmp_path, tmp_path / "repo", version=0)


def test_next_version_is_one_past_either_models_last(tmp_path: Path) -> None:
    assert next_version(tmp_path / "missing") == 1
    (tmp_path / sig.ENCODER / "3").mkdir(parents=True)
    (tmp_path / sig.SCORER / "2").mkdir(parents=True)
    (tmp_path / sig.SCORER / "configs").mkdir()
    assert next_version(tmp_path) == 4


class _Branchy(torch.nn.Module):
    def forward(
        self, user_features: torch.Tensor, promo_vector: torch.Tensor, promo_attrs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Data-dependent control flow: a trace freezes whichever branch its example took.
        sign = 1.0 if float(user_features.sum()) > 0 else -1.0
        return user_features[:, :3] * sign, promo_attrs[:, :3]


class _Misnamed(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return a + b.sum() + c.sum()


def _rows(n: int, value: float) -> tuple[torch.Tensor, ...]:
    return tuple(torch.full((n, t.dims[0]), value) for t in sig.SCORER_INPUTS)


def test_tracing_refuses_input_dependent_graphs() -> None:
    names = tuple(t.name for t in sig.SCORER_INPUTS)
    module = _Branchy()
    traced = trace(module, _rows(2, 1.0), [_rows(3, 2.0)], names)  # the checks take the traced branch
    with pytest.raises(ModelError, match="differs from eager"):
        verify(module, traced, [_rows(3, -1.0)])


def test_tracing_refuses_forward_arguments_that_libtorch_cannot_bind_by_name() -> None:
    with pytest.raises(ModelError, match="forward takes"):
        trace(_Misnamed(), _rows(2, 1.0), [], tuple(t.name for t in sig.SCORER_INPUTS))


class _MakesPositions(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.arange(x.shape[1], device=x.device)


def test_device_pinning_is_detected_and_the_scorer_has_none(exported: Exported) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pinned = torch.jit.trace(_MakesPositions(), (torch.zeros(2, 3),))
    assert pinned_devices(pinned)
    assert pinned_devices(load_torchscript(exported.model_files[sig.SCORER])) == []


# What a device baked in by tracing looks like: in the graph a Device constant (what aten::to, aten::arange
# and the like take), in the code torch.device("…"). Tensor types' `device=cpu` notes are not constants.
_DEVICE_IN_GRAPH = re.compile(r'Device = prim::Constant|prim::Constant\[value="(cpu|cuda|meta)')
_DEVICE_IN_CODE = re.compile(r'torch\.device\(|device="(cpu|cuda)')


def _texts(module: torch.jit.ScriptModule) -> tuple[str, str]:
    graphs = [str(module.graph), str(module.inlined_graph)]
    codes = [getattr(sub, "code", "") for _, sub in module.named_modules()]  # unused submodules have none
    return "\n".join(graphs), "\n".join(codes)


def test_the_device_patterns_catch_a_pinned_device() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph, code = _texts(torch.jit.trace(_MakesPositions(), (torch.zeros(2, 3),)))
    assert _DEVICE_IN_GRAPH.search(graph) and _DEVICE_IN_CODE.search(code)


@pytest.mark.parametrize("model", list(SPECS))
def test_exported_graphs_bake_in_no_device(exported: Exported, model: str) -> None:
    # libtorch on a GPU (KIND_GPU) moves parameters to the GPU; a CPU device constant in the graph would
    # still create or move tensors to the CPU and fail on mixed devices.
    module = load_torchscript(exported.model_files[model])
    graph, code = _texts(module)
    assert not [line for line in graph.splitlines() if _DEVICE_IN_GRAPH.search(line)]
    assert not [line for line in code.splitlines() if _DEVICE_IN_CODE.search(line)]
    # Tensor constants are 0-d ({value}); a larger one (<Tensor>) would stay where tracing put it.
    assert "<Tensor>" not in graph
    assert pinned_devices(module) == []


def test_the_exported_encoder_has_lora_merged_and_equals_the_eager_adapted_one(
    exported: Exported, tmp_path_factory: pytest.TempPathFactory
) -> None:
    encoder, _, _ = load_model(served.model_dir(tmp_path_factory))
    assert any(isinstance(m, LoRALinear) for m in encoder.modules())
    module = load_torchscript(exported.model_files[sig.ENCODER])
    graph, _ = _texts(module)
    assert "lora" not in graph.lower()
    # The served graph's weights are the plain backbone's, as a fully fine-tuned encoder's were.
    plain = PromoEncoder(load_backbone()[0])
    want = {n: t.shape for n, t in [*plain.named_parameters(), *plain.named_buffers()]}
    assert {n: t.shape for n, t in module.state_dict().items()} == want
    ids, mask = (torch.from_numpy(a) for a in served.realistic_tokens(tmp_path_factory))
    with torch.inference_mode():
        torch.testing.assert_close(module(ids, mask), encoder(ids, mask), atol=1e-5, rtol=0)


def test_the_signature_is_recorded_with_the_version(exported: Exported) -> None:
    recorded = json.loads((exported.repo / sig.SCORER / "1" / sig.SIGNATURE_FILE).read_text())
    assert recorded == sig.signature_record()
    assert recorded["declaration_hash"] == sig.DECLARATION_HASH
    sig.check_served(exported.repo, 1)


def test_a_model_of_another_declaration_is_not_exported(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = tmp_path / "model"
    shutil.copytree(served.model_dir(tmp_path_factory), model)
    meta = json.loads((model / "model.json").read_text())
    meta["features"]["declaration_hash"] = "0123456789abcdef"
    (model / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="trained on profile declaration 0123456789abcdef"):
        export_model(model, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()
