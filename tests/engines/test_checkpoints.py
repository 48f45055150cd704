import os
from types import SimpleNamespace

import torch

from compress.engines import checkpoints


def test_a_checkpoint_is_on_disk_before_its_name_is(tmp_path, monkeypatch):
    # every file of the staging folder, and the folder itself, fsynced before the rename that
    # publishes it; the parent folder after it (a power cut never leaves a complete-looking
    # checkpoint with empty files)
    synced, events = set(), []
    monkeypatch.setattr(checkpoints, "fsync_file", lambda path: synced.add(os.path.basename(path)))
    monkeypatch.setattr(checkpoints, "fsync_dir", lambda path: events.append(("dir", os.path.basename(path))))
    real_replace = os.replace

    def replace(source, target):
        events.append(("replace", sorted(synced), sorted(os.listdir(source))))
        real_replace(source, target)

    monkeypatch.setattr(checkpoints.os, "replace", replace)
    accelerator = SimpleNamespace(is_main_process=True, process_index=0, num_processes=1, wait_for_everyone=lambda: None, unwrap_model=lambda m: m)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    final = checkpoints.save(tmp_path, 5, accelerator=accelerator, model=model, optimizer=optimizer,
                             sampler_state={"order": torch.arange(3)}, state={"losses": [1.0]})
    replaced = [event for event in events if event[0] == "replace"]
    assert len(replaced) == 1 and replaced[0][1] == replaced[0][2]  # all files synced before the rename
    assert events.index(("dir", ".step-5.partial")) < events.index(replaced[0]) < events.index(("dir", tmp_path.name))
    assert checkpoints.latest(tmp_path) == final
