"""The one record of a trial (autosize.search.store.record) and the seed scheme (autosize.seeds)."""

from __future__ import annotations

import ast
from pathlib import Path

import optuna
import pytest

from autosize.search.store import record
from autosize.seeds import derive_seed

PACKAGE = Path(__file__).resolve().parents[1] / "autosize"


def test_write_refuses_a_name_that_is_not_a_field() -> None:
    study = optuna.create_study()
    trial = study.ask()
    record.write(trial, role=record.WARMSTART, lineage=("a", "b"), params=3)
    with pytest.raises(KeyError, match="not a TrialRecord field: rol"):
        record.write(trial, rol="baseline")
    rec = record.read(trial)
    assert rec.is_warmstart and not rec.is_baseline
    assert rec.lineage == ("a", "b") and rec.params == 3
    assert trial.user_attrs["lineage"] == ["a", "b"]  # JSON-friendly in the storage


def test_read_gives_defaults_for_missing_keys_and_types_for_lists() -> None:
    trial = optuna.trial.create_trial(
        value=1.0,
        user_attrs={"widths": [[3, 2], [2, 2]], "curve": [0.5, None], "unrelated": 1},
        params={},
        distributions={},
    )
    rec = record.read(trial)
    assert rec.widths == ((3, 2), (2, 2)) and rec.curve == (0.5, None)
    assert rec.role == "" and rec.val == {} and rec.network_artifact is None


def test_study_level_records_tolerate_foreign_studies() -> None:
    study = optuna.create_study()
    assert record.study_meta(study) == {} and record.seed_info(study) == {}
    study.set_user_attr("autosize", "not a dict")
    assert record.study_meta(study) == {}
    record.write_study_meta(study, {"objective": "val_rmse"})
    record.write_seed_info(study, {"epochs": 3})
    assert record.study_meta(study)["objective"] == "val_rmse"
    assert record.seed_info(study) == {"epochs": 3}


def test_only_the_record_module_spells_user_attribute_keys() -> None:
    """Every read and write of user attributes goes through autosize.search.store.record."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "record.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("user_attrs", "set_user_attr"):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_derived_seeds_are_stable_and_do_not_collide() -> None:
    assert derive_seed(0, "baseline", 0) == derive_seed(0, "baseline", 0)
    seeds = {
        derive_seed(s, p, i)
        for s in range(3)
        for p in ("baseline", "trial", "retrain")
        for i in range(50)
    }
    assert len(seeds) == 3 * 3 * 50
    assert all(0 <= s < 2**31 for s in seeds)


def test_building_the_cli_does_not_import_optuna() -> None:
    """`autosize data list` must not pay for importing Optuna (only study commands do)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from autosize.cli import build_parser\n"
        "build_parser().parse_args(['data', 'list'])\n"
        "assert 'optuna' not in sys.modules, sorted(m for m in sys.modules if 'optuna' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
