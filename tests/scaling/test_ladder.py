import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from compress.data.plays import split_text
from compress.errors import UserError
from compress.scaling import build
from compress.scaling.ladder import LADDERS_DIR, MEMBER_KEYS, load_ladder, read_spec, train_pocket_ladder
from compress.scaling.pocket import DEFAULT_SIZES, PocketLadderSpec, PocketRecipe, plan_ladder, plan_member

MICRO_SIZES = "d8-l1,d16-l1,d16-l2"
MICRO_RECIPE = {"seq_len": 32, "batch_size": 4, "vocab_size": 300}


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    path.write_text(split_text("validation")[:30_000])
    return str(path)


def micro(corpus_file, cache, monkeypatch, **kwargs):
    monkeypatch.setenv("SCALECOMPRESS_CACHE", str(cache))
    options = {"steps": 3, "recipe": MICRO_RECIPE, "progress": False, **kwargs}
    return train_pocket_ladder(corpus_file, kwargs.pop("sizes", MICRO_SIZES), **{k: v for k, v in options.items() if k != "sizes"})


def test_micro_ladder_trains_saves_and_reloads(corpus_file, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from compress.checkpoint import load

    ladder = micro(corpus_file, tmp_path / "cache", monkeypatch)
    assert ladder.family == "pocket" and ladder.kind == "trained"
    assert [m.name for m in ladder.members] == ["pocket-d8-l1", "pocket-d16-l1", "pocket-d16-l2"]
    manifest = json.loads((Path(ladder.path) / "ladder.json").read_text())
    assert manifest == json.loads(json.dumps(ladder.to_json()))
    assert {"token_budget_rule", "seed", "corpus", "recipe"} <= set(manifest) and len(manifest["corpus"]["hash"]) == 64
    for member, record in zip(ladder.members, manifest["members"]):
        assert set(MEMBER_KEYS) | {"embedding_share"} <= set(record)
        folder = Path(member.path)
        assert {"model.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
        assert member.tokens == 3 * 4 * 32 and member.details["steps"] == 3
        assert math.isfinite(member.val_loss) and math.isfinite(member.train_loss)
        # bits per byte = total validation NLL in bits / validation bytes
        nll = member.val_loss * member.details["val_tokens"]
        assert member.val_bits_per_byte == pytest.approx(nll / math.log(2) / manifest["corpus"]["validation_bytes"])
        model = AutoModelForCausalLM.from_pretrained(str(folder))
        assert model.config.tie_word_embeddings and model.config.model_type == "llama"
        assert AutoTokenizer.from_pretrained(str(folder)).model_max_length == 32
        info = load(folder).info
        assert (info.params, info.non_embedding_params) == (member.params, member.non_embedding_params)
        assert member.embedding_share == pytest.approx(1 - member.non_embedding_params / member.params, abs=1e-4)


def test_second_call_is_a_cache_hit(corpus_file, tmp_path, monkeypatch):
    first = micro(corpus_file, tmp_path / "cache", monkeypatch)
    trained = build.TRAINED["members"]
    stamps = {m.name: Path(m.path, "model.safetensors").stat().st_mtime_ns for m in first.members}
    second = micro(corpus_file, tmp_path / "cache", monkeypatch)
    assert build.TRAINED["members"] == trained
    assert second.to_json() == first.to_json()
    assert stamps == {m.name: Path(m.path, "model.safetensors").stat().st_mtime_ns for m in second.members}


def test_interrupted_ladder_resumes_at_the_missing_member(corpus_file, tmp_path, monkeypatch):
    import shutil

    first = micro(corpus_file, tmp_path / "cache", monkeypatch)
    (Path(first.path) / "ladder.json").unlink()
    shutil.rmtree(first.members[-1].path)  # as if killed while training the last member
    kept = Path(first.members[0].path, "model.safetensors").stat().st_mtime_ns
    trained = build.TRAINED["members"]
    again = micro(corpus_file, tmp_path / "cache", monkeypatch)
    assert build.TRAINED["members"] == trained + 1
    assert Path(again.members[0].path, "model.safetensors").stat().st_mtime_ns == kept
    assert again.members[-1].val_loss == pytest.approx(first.members[-1].val_loss)


def test_same_seed_same_weights_other_seed_other_weights(corpus_file, tmp_path, monkeypatch):
    one = micro(corpus_file, tmp_path / "a", monkeypatch, sizes="d16-l1")
    two = micro(corpus_file, tmp_path / "b", monkeypatch, sizes="d16-l1")
    other = micro(corpus_file, tmp_path / "c", monkeypatch, sizes="d16-l1", seed=1)
    weights = [load_file(str(Path(l.members[0].path) / "model.safetensors")) for l in (one, two, other)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_training_stream_is_exactly_the_train_text(corpus_file, tmp_path, monkeypatch):
    from compress.data.corpus import load_corpus
    from compress.scaling import train

    seen = {}
    real = train.train_member

    def spy(plan, recipe, train_ids, val_ids, val_bytes, **kwargs):
        seen["train"], seen["validation"] = train_ids, val_ids
        return real(plan, recipe, train_ids, val_ids, val_bytes, **kwargs)

    monkeypatch.setattr(train, "train_member", spy)
    ladder = micro(corpus_file, tmp_path / "cache", monkeypatch, sizes="d8-l1")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ladder.members[0].path)
    corpus = load_corpus(corpus_file)
    assert tokenizer.decode(seen["train"].tolist()) == corpus.train
    assert tokenizer.decode(seen["validation"].tolist()) == corpus.validation


def test_cached_only_never_trains(corpus_file, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALECOMPRESS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="not trained yet"):
        train_pocket_ladder(corpus_file, MICRO_SIZES, steps=2, recipe=MICRO_RECIPE, cached_only=True)


def test_default_ladder_plan_meets_the_brief():
    plans = plan_ladder(DEFAULT_SIZES, PocketRecipe())
    assert len(plans) >= 5
    sizes = [p.non_embedding_params for p in plans]
    assert sizes == sorted(sizes) and sizes[-1] / sizes[0] >= 30
    tokens = [p.tokens for p in plans]
    assert tokens == sorted(tokens) and tokens[-1] > 5 * tokens[0]  # the budget grows with size
    assert all(0 < p.embedding_share < 0.7 for p in plans)
    assert [p.lr for p in plans] == sorted((p.lr for p in plans), reverse=True)


@pytest.mark.parametrize("size", ["d24-l2", "d48-l2", "d64-l3"])
def test_planned_counts_match_the_built_model(size):
    from compress.checkpoint import count_params
    from compress.scaling.train import build_model

    recipe = PocketRecipe()
    plan = plan_member(size, recipe)
    model = build_model(plan, recipe, {"bos": 0, "eos": 1, "pad": 2}, seed=0)
    assert count_params(model) == (plan.params, plan.non_embedding_params)


@pytest.mark.parametrize("sizes, words", [("d32", "d<width>-l<layers>"), ("d112-l2", "multiple of"), ("d32-l2,d32-l2", "repeat"), ("", "empty")])
def test_bad_sizes(sizes, words):
    with pytest.raises(UserError, match=words):
        plan_ladder(sizes, PocketRecipe())


def test_pocket_yaml_states_the_code_defaults():
    spec = read_spec("pocket")
    assert isinstance(spec, PocketLadderSpec)
    assert spec.model_dump() == PocketLadderSpec().model_dump()


@pytest.mark.parametrize(
    "name, ids",
    [
        ("pythia", ["EleutherAI/pythia-70m", "EleutherAI/pythia-160m", "EleutherAI/pythia-410m", "EleutherAI/pythia-1b", "EleutherAI/pythia-1.4b"]),
        ("gpt2", ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"]),
        ("qwen2.5", ["Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-1.5B", "Qwen/Qwen2.5-3B", "Qwen/Qwen2.5-7B"]),
        ("smollm2", ["HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-360M", "HuggingFaceTB/SmolLM2-1.7B"]),
    ],
)
def test_hub_ladders_parse_without_network(name, ids):
    ladder = load_ladder(name)
    assert ladder.kind == "hub" and ladder.family == name
    assert [m.path for m in ladder.members] == ids
    assert load_ladder(str(LADDERS_DIR / f"{name}.yaml")).members == ladder.members


def test_ladder_errors_name_the_problem(tmp_path):
    with pytest.raises(UserError, match="allowed: gpt2, pocket, pocket-gpt2, pythia"):
        load_ladder("pythya")
    with pytest.raises(UserError, match="hub ladder"):
        load_ladder("pythia", steps=3)
    with pytest.raises(UserError, match="unknown ladder option"):
        load_ladder("pocket", stepz=3)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"family": "x", "members": [{"name": "a", "id": "b", "size": 3}]}))
    with pytest.raises(UserError, match="'members.0.size'"):
        load_ladder(str(bad))
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({"kind": "trained", "recipe": {"lr": -1}}))
    with pytest.raises(UserError, match="'recipe.lr'"):
        load_ladder(str(wrong))


@pytest.mark.parametrize("size", ["d32-l2", "d64-l3"])
def test_gpt2_members_planned_counts_match_the_built_model(size):
    from compress.checkpoint import count_params
    from compress.scaling.train import build_model

    recipe = PocketRecipe(architecture="gpt2")
    plan = plan_member(size, recipe)
    model = build_model(plan, recipe, {"bos": 0, "eos": 1, "pad": 2}, seed=0)
    assert type(model).__name__ == "GPT2LMHeadModel" and plan.name == f"pocket-gpt2-{size}"
    assert count_params(model) == (plan.params, plan.non_embedding_params)


def test_llama_cache_key_ignores_the_architecture_fields_added_later():
    """Ladders cached before `architecture` existed keep their key, so nobody retrains them."""
    import hashlib
    import json

    from compress.data.corpus import load_corpus
    from compress.data.tokenizer import tokenizer_key
    from compress.scaling.build import FORMAT, cache_key

    corpus, recipe = load_corpus("plays"), PocketRecipe()
    old_dump = {k: v for k, v in recipe.model_dump(mode="json").items() if k not in ("architecture", "gpt2_ffn_ratio")}
    material = {"format": FORMAT, "family": "pocket", "corpus": corpus.fingerprint,
                "tokenizer": tokenizer_key(corpus.fingerprint, recipe.vocab_size), "recipe": old_dump, "seed": 0}
    assert cache_key(corpus, recipe, 0, "pocket") == hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    assert cache_key(corpus, PocketRecipe(architecture="gpt2"), 0, "pocket") != cache_key(corpus, recipe, 0, "pocket")
