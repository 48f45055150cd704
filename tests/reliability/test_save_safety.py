"""Defect 1, 9, 17 and the fsync: a save never loses a file it did not write."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch

import compress
from compress.errors import UserError
from compress.saving import written_by_us
from tests.conftest import tiny_llama
from tests.reliability.conftest import tree_digest


@pytest.fixture(scope="module")
def model():
    return tiny_llama(vocab_size=64, hidden=16, intermediate=32, layers=1)


def test_a_user_folder_at_the_target_is_refused_and_kept(model, tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "notes.txt").write_text("my own notes")
    with pytest.raises(UserError, match=r"already holds files scalecompress did not write \(notes.txt\).*--overwrite") as caught:
        compress.save(model, target)
    assert "\n" not in str(caught.value)
    assert (target / "notes.txt").read_text() == "my own notes"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging debris either


def test_overwrite_replaces_a_foreign_folder_only_when_asked(model, tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "notes.txt").write_text("x")
    compress.save(model, target, overwrite=True)
    assert not (target / "notes.txt").exists() and written_by_us(target)


def test_a_symlink_target_is_never_followed(model, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.bin").write_bytes(b"\x00" * 10)
    link = tmp_path / "out" / "model"
    link.parent.mkdir()
    link.symlink_to(elsewhere, target_is_directory=True)
    before = tree_digest(elsewhere)
    with pytest.raises(UserError, match="symbolic link"):
        compress.save(model, link)
    assert tree_digest(elsewhere) == before
    # Even a link to a folder scalecompress wrote is not written through.
    ours = compress.save(model, tmp_path / "ours")
    link2 = tmp_path / "out" / "model2"
    link2.symlink_to(ours, target_is_directory=True)
    with pytest.raises(UserError, match="symbolic link"):
        compress.save(model, link2)
    # --overwrite replaces the link itself, never what it points to.
    compress.save(model, link, overwrite=True)
    assert not link.is_symlink() and written_by_us(link)
    assert tree_digest(elsewhere) == before


def test_saving_into_the_current_folder_is_refused(model, tmp_path, monkeypatch):
    (tmp_path / "mine.txt").write_text("keep me")
    monkeypatch.chdir(tmp_path)
    for target in (".", str(tmp_path), ".."):
        with pytest.raises(UserError, match="current folder"):
            compress.save(model, target)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_saving_over_the_source_model_is_refused_even_when_forced(model, tmp_path):
    source = compress.save(model, tmp_path / "X" / "model")
    before = tree_digest(source)
    for target, force in ((source, False), (source, True), (source.parent, True)):
        with pytest.raises(UserError, match="holds the source model"):
            compress.save(model, target, manifest={"source_model": str(source)}, overwrite=force)
    assert tree_digest(source) == before


def test_a_folder_we_wrote_is_replaced_but_not_once_a_user_file_is_added(model, tmp_path):
    target = compress.save(model, tmp_path / "model")
    compress.save(model, target)  # ours, untouched: replaced
    (target / "README.md").write_text("the user's description")
    with pytest.raises(UserError, match="README.md"):
        compress.save(model, target)
    assert (target / "README.md").is_file()


def test_a_file_at_the_target_is_refused(model, tmp_path):
    (tmp_path / "model").write_text("a file")
    with pytest.raises(UserError, match="is a file"):
        compress.save(model, tmp_path / "model", overwrite=True)
    assert (tmp_path / "model").read_text() == "a file"


def test_manifest_names_the_content_and_never_holds_nan(tmp_path):
    model = tiny_llama(vocab_size=64, hidden=16, intermediate=32, layers=1)
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight[0, 0] = float("nan")
    with pytest.warns(UserWarning, match="NaN or infinity.*up_proj"):
        out = compress.save(model, tmp_path / "nan", manifest={"note": float("nan"), "passes": []})

    def refuse(constant):
        raise ValueError(f"invalid JSON constant {constant}")

    manifest = json.loads((out / "compression.json").read_text(), parse_constant=refuse)
    assert manifest["note"] is None
    assert len(manifest["content_sha256"]) == 64 and manifest["writer"] == "scalecompress"
    assert set(manifest["files"]) == {p.name for p in out.iterdir()}


def test_two_checkpoints_with_one_name_differ_by_content_and_full_variant_name(tmp_path):
    from compress.passes import RTNConfig

    hashes = []
    for bits in (4, 8):
        model = tiny_llama(vocab_size=64, hidden=32, intermediate=64, layers=1)
        model, reports = compress.apply(model, [RTNConfig(bits=bits, group_size=16)], progress=False)
        out = compress.save(model, tmp_path / f"run{bits}" / "model", manifest={"passes": [r.to_dict() for r in reports]})
        manifest = json.loads((out / "compression.json").read_text())
        assert manifest["variant"] == f"rtn-w{bits}-g16"
        hashes.append(manifest["content_sha256"])
    assert hashes[0] != hashes[1]


def test_fsync_dir_really_fsyncs_the_directory(tmp_path, monkeypatch):
    from compress import atomic

    synced = []
    real = os.fsync

    def spy(descriptor):
        synced.append(stat.S_ISDIR(os.fstat(descriptor).st_mode))
        return real(descriptor)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    atomic.fsync_dir(tmp_path)
    assert synced == [True]
    synced.clear()
    compress.save(tiny_llama(vocab_size=64, hidden=16, intermediate=32, layers=1), tmp_path / "m")
    assert any(synced) and not all(synced)  # both the files and the folders were fsynced


def test_recipe_as_run_never_lands_on_a_user_file(tmp_path, monkeypatch):
    # Defect 9: `run --out .` kept the user's recipe.yaml only until the run overwrote it.
    import compress.sweep as sweep
    from compress.recipe import Recipe

    user_recipe = tmp_path / "recipe.yaml"
    user_recipe.write_text("# my comments\nversion: 1\nmodel: some/model\npasses: [{pass: rtn}]\n")
    monkeypatch.setattr(sweep, "_run_job", lambda job, *a, **k: ({"model": job.model, "variant": job.variant_name, "device": "cpu", "scenario": "s"}, None))
    monkeypatch.chdir(tmp_path)
    sweep.run_recipe(Recipe.from_yaml(user_recipe), out=".", progress=False, log=lambda m: None)
    assert user_recipe.read_text().startswith("# my comments")
    assert "rtn" in (tmp_path / ".scalecompress" / "recipe.yaml").read_text()
