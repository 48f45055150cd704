import json

from compress.cli import main


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ls_passes_lists_builtins_with_fields(capsys):
    code, out, _ = run(capsys, "ls", "passes", "--json")
    assert code == 0
    passes = {p["name"]: p for p in json.loads(out)["passes"]}
    assert {"rtn", "magnitude"} <= set(passes)
    assert passes["rtn"]["origin"] == "scalecompress"
    assert passes["rtn"]["fields"]["bits"]["default"] == 4
    code, out, _ = run(capsys, "ls", "passes")
    assert code == 0 and "rtn" in out and "bits" in out


def test_validate_good_and_bad(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\npasses:\n  - pass: rtn\n    bits: 8\n")
    code, out, _ = run(capsys, "validate", str(good))
    assert code == 0 and "valid" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\npasses:\n  - pass: rtn\n    bitz: 8\n")
    code, out, err = run(capsys, "validate", str(bad))
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "bad.yaml" in err and "passes[0] (rtn)" in err and "'bitz'" in err and "bits" in err
    typo = tmp_path / "typo.yaml"
    typo.write_text("version: 1\npasses:\n  - pass: rnt\n")
    code, _, err = run(capsys, "validate", str(typo))
    assert code == 2 and "did you mean 'rtn'" in err


def test_info_json(llama_dir, capsys):
    code, out, _ = run(capsys, "info", str(llama_dir), "--json")
    assert code == 0
    info = json.loads(out)
    assert info["architecture"] == "LlamaForCausalLM"
    assert info["params"] > info["non_embedding_params"] > 0


def test_info_offline_hub_id_is_one_line(capsys):
    code, _, err = run(capsys, "info", "EleutherAI/pythia-70m")
    assert code == 1
    assert err.count("\n") == 1 and "HF_HUB_OFFLINE" in err


def test_dry_run_lists_modules_and_bytes_and_changes_nothing(llama_dir, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"version: 1\nmodel: {llama_dir}\npasses:\n  - pass: rtn\n    bits: 4\n    group_size: 32\n")
    before = (llama_dir / "model.safetensors").read_bytes()
    code, out, _ = run(capsys, "run", str(recipe), "--dry-run", "--json")
    assert code == 0
    plan = json.loads(out)["variants"]["rtn-w4-g32"][0]
    assert len(plan["modules"]) == 14
    assert plan["bytes_after"] < plan["bytes_now"] / 4
    assert (llama_dir / "model.safetensors").read_bytes() == before


def test_usage_error_exits_2(capsys):
    code, _, _ = run(capsys, "run")
    assert code == 2


def test_crossed_accuracy_gate_exits_3_and_names_the_variant(tmp_path, capsys, monkeypatch):
    import compress.sweep as sweep

    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: 1\nmodel: some/model\npasses: [{pass: rtn, bits: 2}]\nbench: {max_ppl_increase: 0.05}\n")
    result = sweep.SweepResult(out=tmp_path, records=[], ran=2, skipped=0, gate_failures=["some/model / rtn-w2-g128: perplexity 30.000 is +50.0% over dense 20.000 (gate: +5.0%)"])
    monkeypatch.setattr(sweep, "run_recipe", lambda *args, **kwargs: result)
    code, out, err = run(capsys, "run", str(recipe), "--json")
    assert code == 3
    assert json.loads(out)["gate_failures"] == result.gate_failures
    assert "accuracy gate crossed: some/model / rtn-w2-g128" in err
