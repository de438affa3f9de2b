"""Every path a command writes is checked before its work starts: one line naming the path,
exit code 2, nothing written (a `train` whose result could not be saved lost its training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studies import run_main


@pytest.fixture
def blocked(tmp_path: Path) -> Path:
    """An output path under a file, where no folder can be made."""
    (tmp_path / "afile").write_text("not a folder\n")
    return tmp_path / "afile" / "sub"


@pytest.mark.parametrize(
    "argv",
    [
        ("export", "--storage", "sqlite:///{tmp}/nowhere.db", "--out", "{out}"),
        ("report", "--storage", "sqlite:///{tmp}/nowhere.db", "--out", "{out}"),
        ("predict", "no-export", "rows.csv", "--out", "{out}/pred.csv"),
        ("train", "no-export/architecture.json", "--out", "{out}/result.json"),
    ],
    ids=["export", "report", "predict", "train"],
)
def test_an_output_that_cannot_be_created_is_one_line_before_any_work(
    blocked: Path, argv: tuple[str, ...]
) -> None:
    tmp = blocked.parent.parent
    rc, _, err = run_main(*(a.format(out=blocked, tmp=tmp) for a in argv))
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "--out" in err and str(blocked.parent) in err and "is a file" in err
    assert sorted(p.name for p in tmp.iterdir()) == ["afile"]  # nothing written


def test_predict_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    pred = tmp_path / "pred.csv"
    pred.write_text("kept\n")
    rc, _, err = run_main("predict", str(tmp_path / "no-export"), "rows.csv", "--out", str(pred))
    assert rc == 2 and "exists; pass --force" in err and len(err.strip().splitlines()) == 1
    assert pred.read_text() == "kept\n"
    # with --force the check passes and the command goes on to the (missing) export
    rc, _, err = run_main(
        "predict", str(tmp_path / "no-export"), "rows.csv", "--out", str(pred), "--force"
    )
    assert rc == 2 and "no-export" in err and "--force" not in err
    assert pred.read_text() == "kept\n"


def test_report_refuses_an_export_folder(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "architecture.json").write_text("{}")
    rc, _, err = run_main("report", "--storage", "sqlite:///nowhere.db", "--out", str(export))
    assert rc == 2 and "holds an export" in err
    assert sorted(p.name for p in export.iterdir()) == ["architecture.json"]


def test_export_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    rc, _, err = run_main(
        "export", "--storage", "sqlite:///nowhere.db", "--out", str(tmp_path / "out")
    )
    assert rc == 2 and "not empty" in err
