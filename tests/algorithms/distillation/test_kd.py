import math

import pytest
import torch
import torch.nn.functional as F

import compress
from compress.algorithms.distillation.kd import DistillConfig
from compress.algorithms.distillation.losses import hidden_loss, kl_divergence, teacher_layer
from compress.core.context import DataConfig
from compress.formats.dense import module_bytes
from compress.formats.quantized_linear import QuantizedLinear
from tests.bench.conftest import make_gpt2, make_llama, train_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer()


@pytest.fixture(scope="module")
def text_source(tmp_path_factory):
    from compress.data.plays import split_text

    path = tmp_path_factory.mktemp("text") / "train.txt"
    path.write_text(split_text("validation")[:40_000])
    return str(path)


def kl_by_hand(student, teacher, t):
    p = torch.softmax(teacher / t, -1)
    return (p * (torch.log(p) - torch.log_softmax(student / t, -1))).sum(-1).mean() * t * t


def test_kl_is_hintons_soft_target_loss():
    student, teacher = torch.randn(3, 7, 11), torch.randn(3, 7, 11)
    for t in (1.0, 2.0, 4.0):
        assert float(kl_divergence(student, teacher, t)) == pytest.approx(float(kl_by_hand(student, teacher, t)), rel=1e-5)
        reference = F.kl_div(F.log_softmax(student / t, -1).flatten(0, 1), F.log_softmax(teacher / t, -1).flatten(0, 1), log_target=True, reduction="batchmean")
        assert float(kl_divergence(student, teacher, t)) == pytest.approx(float(reference) * t * t, rel=1e-5)
    assert float(kl_divergence(teacher, teacher)) == pytest.approx(0.0, abs=1e-6)


def test_hidden_losses_and_layer_matching():
    a = torch.randn(2, 5, 8)
    assert float(hidden_loss(a, 3 * a, "cosine")) == pytest.approx(0.0, abs=1e-6)  # scale-free
    assert float(hidden_loss(a, -a, "cosine")) == pytest.approx(2.0, abs=1e-6)
    assert float(hidden_loss(a, a + 1, "mse")) == pytest.approx(1.0)
    assert [teacher_layer(i, 2, 4) for i in range(3)] == [0, 2, 4]
    assert teacher_layer(3, 3, 4) == 4


@pytest.mark.parametrize("fields, words", [({"tokens": 10, "steps": 2}, "tokens or steps"), ({"alpha": 0}, "nothing to learn"), ({"train": "some"}, "non_quantized")])
def test_bad_configs_say_what_to_do(fields, words):
    with pytest.raises(ValueError, match=words):
        DistillConfig(**fields)


def peaky(model):
    """A random model with confident predictions (weights x4), so a student's gap is measurable."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2:
                parameter.mul_(4)
    return model


def distill(student, teacher, tokenizer, text_source, work_dir=None, **fields):
    config = DistillConfig(**{"steps": 6, "batch_size": 4, "seq_len": 32, "lr": 3e-3, "checkpoint_every": 2, **fields})
    return compress.apply(student, [config], tokenizer=tokenizer, teacher=teacher, data_config=DataConfig(source=text_source), progress=False, work_dir=work_dir)


def student_gap(student, teacher, tokenizer, text_source):
    """KL(teacher || student) on fixed held windows of the text."""
    from compress.data.calibration import calibration_batches

    batch = calibration_batches(tokenizer, n_samples=4, seq_len=32, seed=99, source=text_source)
    with torch.no_grad():
        return float(kl_divergence(student(input_ids=batch).logits, teacher(input_ids=batch).logits))


def test_pruned_student_keeps_its_zeros_and_moves_towards_the_teacher(tokenizer, text_source):
    from compress.algorithms.pruning.magnitude import MagnitudeConfig

    teacher = peaky(make_llama(hidden=32))
    student = peaky(make_llama(hidden=32))
    compress.apply(student, [MagnitudeConfig(sparsity=0.5)], progress=False)
    zeros = {n: (m.weight == 0).clone() for n, m in student.named_modules() if isinstance(m, torch.nn.Linear) and n != "lm_head"}
    before = student_gap(student, teacher, tokenizer, text_source)
    student, (report,) = distill(student, teacher, tokenizer, text_source, steps=10)
    after = student_gap(student, teacher, tokenizer, text_source)
    assert after < before
    for name, mask in zeros.items():
        assert bool((student.get_submodule(name).weight[mask] == 0).all()), name
    assert report.details["masked_layers"] == len(zeros) and report.details["train_tokens"] == 10 * 4 * 32
    assert report.details["teacher_forward_tokens"] == 10 * 4 * 32 and report.details["tokens_per_s"] > 0
    assert not any(p.requires_grad for p in student.parameters())


def test_quantized_student_trains_quantization_aware_and_is_packed_again(tokenizer, text_source):
    from compress.algorithms.quantization.rtn import RTNConfig

    teacher = peaky(make_llama(hidden=64))
    student = peaky(make_llama(hidden=64))
    compress.apply(student, [RTNConfig(bits=2, group_size=32)], progress=False)
    packed_bytes = {n: module_bytes(m) for n, m in student.named_modules() if isinstance(m, QuantizedLinear)}
    before = student_gap(student, teacher, tokenizer, text_source)
    student, (report,) = distill(student, teacher, tokenizer, text_source, steps=12, lr=5e-3)
    after = student_gap(student, teacher, tokenizer, text_source)
    layers = {n: m for n, m in student.named_modules() if isinstance(m, QuantizedLinear)}
    assert layers.keys() == packed_bytes.keys() and {n: module_bytes(m) for n, m in layers.items()} == packed_bytes
    assert all(m.bits == 2 and m.group_size == 32 for m in layers.values())
    assert report.details["quantization_aware_layers"] == len(layers) and report.bytes_after == report.bytes_before
    assert after < before


def test_narrower_student_learns_through_a_projection_on_gpt2(tokenizer, text_source):
    teacher = make_gpt2(hidden=64)
    student = make_gpt2(hidden=32, seed=1)
    student, (report,) = distill(student, teacher, tokenizer, text_source, gamma=1.0, beta=0.5, hidden_layers=[1, -1], hidden_loss="mse")
    assert set(report.details["loss_parts"]) == {"kl", "ce", "hidden"}
    assert not any("projections" in name for name, _ in student.named_modules())
    assert report.modules and all(math.isfinite(v) for v in report.details["loss_parts"].values())


def test_killed_distillation_resumes_and_ends_identical(tokenizer, text_source, tmp_path):
    from compress.engines import train as engine

    teacher = make_llama(hidden=32)
    base = make_llama(hidden=32, seed=3)
    whole = make_llama(hidden=32, seed=3)
    distill(whole, teacher, tokenizer, text_source)

    real_train = engine.train

    def killed_train(*args, **kwargs):
        def kill(step):
            if step == 5:
                raise KeyboardInterrupt

        return real_train(*args, **{**kwargs, "on_step": kill})

    engine.train = killed_train
    try:
        with pytest.raises(KeyboardInterrupt):
            distill(base, teacher, tokenizer, text_source, work_dir=tmp_path / "work")
    finally:
        engine.train = real_train
    assert [p.name for p in (tmp_path / "work").iterdir() for p in p.iterdir()] == ["step-4"]
    resumed = make_llama(hidden=32, seed=3)
    resumed, (report,) = distill(resumed, teacher, tokenizer, text_source, work_dir=tmp_path / "work")
    assert report.details["resumed_from_step"] == 4
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), whole.state_dict().values()))
    assert list((tmp_path / "work").iterdir()) == []


def test_sweep_records_the_distillation_tokens_of_a_variant():
    from compress.core.report import PassReport
    from compress.recipe import Variant
    from compress.sweep import describe_variant

    variant = Variant(name="m+d", passes=[DistillConfig(steps=2), DistillConfig(steps=3)])
    reports = [PassReport("distill", {}, details={"train_tokens": 100}), PassReport("distill", {}, details={"train_tokens": 50})]
    assert describe_variant(variant, reports)["distill_tokens"] == 150


def test_shipped_recipes_with_distill_parse():
    import yaml

    from compress.cli.demo import demo_recipe_path

    folder = demo_recipe_path().parent
    for name in ("demo", "prune-distill", "prune-distill-quantize"):
        document = yaml.safe_load((folder / f"{name}.yaml").read_text())
        distills = [DistillConfig(**{k: v for k, v in p.items() if k != "pass"}) for v in document["variants"] for p in v["passes"] if p["pass"] == "distill"]
        assert distills and all(d.planned_steps() >= 1 for d in distills), name
