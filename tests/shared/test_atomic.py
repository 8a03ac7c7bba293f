import json

import numpy as np
import pytest

from ml_common.atomic import atomic_dir, atomic_write, write_json


def test_write_json_is_readable_and_sorted(tmp_path):
    path = write_json(
        tmp_path / "m.json", {"b": np.float64(0.5), "a": np.int64(2), "arr": np.arange(2)}
    )
    assert json.loads(path.read_text()) == {"a": 2, "arr": [0, 1], "b": 0.5}


def test_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_failure_on_new_file_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt), atomic_write(tmp_path / "new.txt") as handle:
        handle.write("x")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_whole_folder_only_on_success(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as staging:
        (staging / "weights.bin").write_text("v1")
    assert (target / "weights.bin").read_text() == "v1"
    with pytest.raises(ValueError), atomic_dir(target) as staging:
        (staging / "weights.bin").write_text("v2-partial")
        raise ValueError("crash while saving")
    assert (target / "weights.bin").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    with atomic_dir(target) as staging:
        (staging / "weights.bin").write_text("v2")
    assert (target / "weights.bin").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_read_mode_rejected(tmp_path):
    with pytest.raises(ValueError), atomic_write(tmp_path / "x", "r"):
        pass


def test_written_files_have_normal_permissions(tmp_path):
    import os

    path = write_json(tmp_path / "m.json", {})
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
