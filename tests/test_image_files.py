"""Your own images: a folder per class or an .npz, through a study, export and predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import autosize
from autosize.data import load_dataset
from autosize.errors import DataError
from studies import STUDY_MARKS, run_main

pytestmark = STUDY_MARKS


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`run --data` keeps its state in ./.state/: never the repository's."""
    monkeypatch.chdir(tmp_path)


def image_folder(root: Path, n: int = 12) -> Path:
    """Dark and light 8x8 greyscale PNGs, one odd-sized (resized on reading)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, level in (("dark", 60), ("light", 190)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            a = np.clip(rng.normal(level, 30, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(root / name / f"{i}.png")
    Image.fromarray(np.full((10, 12), 200, np.uint8)).save(root / "light" / "odd.png")
    return root


def test_folder_layout_infers_size_channels_and_classes(tmp_path: Path) -> None:
    b = load_dataset("images", path=str(image_folder(tmp_path / "imgs")))
    assert b.input_shape == (1, 8, 8) and b.n_outputs == 2 and b.task == "classification"
    assert sum(b.sizes.values()) == 25
    assert b.preprocessing.steps["classes"] == ["dark", "light"]
    x, _ = b.train
    assert abs(float(x.mean())) < 0.2 and float(x.std()) == pytest.approx(1.0, abs=0.1)


def test_npz_channels_last_and_regression(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = (rng.random((40, 6, 6, 3)) * 255).astype(np.uint8)
    np.savez(tmp_path / "c.npz", x=x, y=rng.integers(0, 3, 40))
    np.savez(tmp_path / "r.npz", x=x, y=rng.normal(50.0, 5.0, 40))
    c = load_dataset("images", path=str(tmp_path / "c.npz"))
    assert c.input_shape == (3, 6, 6) and c.n_outputs == 3
    assert c.preprocessing.steps["classes"] == [0, 1, 2]
    r = load_dataset("images", path=str(tmp_path / "r.npz"))
    assert r.task == "regression" and r.target_mean == pytest.approx(50.0, abs=3.0)
    np.savez(tmp_path / "nolabel.npz", x=x)
    with pytest.raises(DataError, match="no array 'y'"):
        load_dataset("images", path=str(tmp_path / "nolabel.npz"))


def test_study_export_and_predict_a_folder(tmp_path: Path) -> None:
    image_folder(tmp_path / "imgs")
    config = tmp_path / "s.toml"
    config.write_text(
        f'[study]\nn_trials = 1\nstorage = "sqlite:///{tmp_path / "s.db"}"\n'
        '[data]\nname = "images"\npath = "imgs"\n'
        '[seed]\nlayers = [{ type = "conv", channels = 2, pool = 2 }, { type = "dense", width = 4 }]\n'
        "epochs = 2\n[train]\nepochs = 1\n",
        encoding="utf-8",
    )
    rc, _, err = run_main("run", str(config))
    assert rc == 0, err
    assert run_main("export", str(config), "--out", str(tmp_path / "e"))[0] == 0
    rc, _, err = run_main(
        "predict", str(tmp_path / "e"), str(tmp_path / "imgs"), "--out", str(tmp_path / "p.csv")
    )
    assert rc == 0, err
    pred = pd.read_csv(tmp_path / "p.csv")
    assert list(pred.columns) == ["file", "label"] and len(pred) == 25
    assert set(pred["label"]) <= {"dark", "light"}
    model = autosize.load_model(tmp_path / "e")
    x = model.inputs(tmp_path / "imgs")
    torch.testing.assert_close(model(x), model.net(x))


def test_a_folder_without_images_is_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    (tmp_path / "empty" / "cats" / "notes.txt").write_text("no pictures here")
    (tmp_path / "s.toml").write_text(
        '[study]\nn_trials = 1\n[data]\nname = "images"\npath = "empty"\n', encoding="utf-8"
    )
    rc, _, err = run_main("run", str(tmp_path / "s.toml"))
    assert rc == 2 and err.count("\n") == 1
    assert "empty: no images" in err
    assert not (tmp_path / ".state").exists()
