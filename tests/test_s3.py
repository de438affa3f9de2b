"""Network artifacts in S3 (``[study] artifacts = "s3://BUCKET/PREFIX"``), against moto's
in-process S3: a tiny study runs, resumes, exports, loads and shows in the dashboard
from the bucket, and a damaged object or an unreachable bucket is one line, exit code 2.

moto's mock patches botocore in this process only, so every study here runs in this
process (``run_main``, one worker). The unreachable endpoint, through a real
``autosize`` process, is a case of ``tests/test_bad_input.py``.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from autosize.errors import ConfigError
from autosize.predictor import load_model
from autosize.search import load_config
from autosize.search.store.artifacts import S3Location, artifact_location
from autosize.search.store.networks import artifact_store, download_network
from autosize.search.store.storage import load_study
from studies import STUDY_MARKS, run_main, tiny_config

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

pytestmark = STUDY_MARKS
BUCKET = "autosize-nets"
PREFIX = "studies/tiny"


@dataclass(frozen=True)
class Study:
    """The tiny study, finished, with its networks under s3://BUCKET/PREFIX."""

    root: Path
    config: Path
    seed_artifact: str
    trial_artifacts: dict[int, str]


def _keys(client: Any, prefix: str, bucket: str = BUCKET) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _s3_config(root: Path, url: str, **kwargs: Any) -> Path:
    path = tiny_config(root, n_trials=1, seed_epochs=1, train_epochs=1, **kwargs)
    text = path.read_text(encoding="utf-8").replace(f'"{root / "art"}"', f'"{url}"')
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """moto's S3 with one bucket, and boto3 configured as a user would from the environment."""
    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask a metadata server
        with moto.mock_aws():
            client = boto3.client("s3")
            client.create_bucket(Bucket=BUCKET)
            yield client


@pytest.fixture(scope="module")
def study(s3: Any, tmp_path_factory: pytest.TempPathFactory) -> Study:
    root = tmp_path_factory.mktemp("s3-study")
    config = _s3_config(root, f"s3://{BUCKET}/{PREFIX}")
    rc, _, err = run_main("run", str(config))
    assert rc == 0, err
    s = load_study(f"sqlite:///{root / 's.db'}", "tiny")
    trials = {
        t.number: str(t.user_attrs["network_artifact"])
        for t in s.get_trials()
        if "network_artifact" in t.user_attrs
    }
    return Study(root, config, str(s.user_attrs["seed"]["artifact_id"]), trials)


def _copy(study: Study, s3: Any, root: Path, prefix: str) -> Path:
    """The study's storage and networks under a new folder and prefix (a case may damage
    them); returns the copy's config."""
    shutil.copy2(study.root / "s.db", root / "s.db")
    for key in _keys(s3, PREFIX + "/"):
        s3.copy_object(
            Bucket=BUCKET, Key=prefix + key.removeprefix(PREFIX), CopySource=f"{BUCKET}/{key}"
        )
    return _s3_config(root, f"s3://{BUCKET}/{prefix}")


def _truncate(s3: Any, key: str) -> None:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body[: len(body) // 2])


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("autosize") and ": error: " in lines[0], lines[0]
    return lines[0]


def test_every_network_is_an_object_under_the_prefix(study: Study, s3: Any) -> None:
    keys = _keys(s3, "")
    expected = [f"{PREFIX}/{a}" for a in (study.seed_artifact, *study.trial_artifacts.values())]
    assert keys == sorted(expected)
    assert len(study.trial_artifacts) >= 2  # the seed's baseline, the scaled one, a trial
    assert not (study.root / "art").exists()  # nothing went to a local folder
    recorded = load_study(f"sqlite:///{study.root / 's.db'}", "tiny").user_attrs
    assert recorded["autosize"]["artifacts"] == f"s3://{BUCKET}/{PREFIX}"


def test_export_and_load_model_of_the_best_trial(study: Study, s3: Any, tmp_path: Path) -> None:
    out = tmp_path / "best"
    rc, _, err = run_main("export", str(study.config), "--trial", "best", "--out", str(out))
    assert rc == 0, err
    model = load_model(out)
    # the same network as the object in the bucket: same outputs
    number = model.record.trial
    net, spec = download_network(
        artifact_store(load_config(study.config).artifacts), study.trial_artifacts[number]
    )
    assert model.spec == spec
    x = torch.randn(7, *spec.input_shape)
    torch.testing.assert_close(model(x), net.eval()(x))
    # without the config: the bucket the study recorded, or the one --artifacts names
    storage = f"sqlite:///{study.root / 's.db'}"
    for extra in ([], ["--artifacts", f"s3://{BUCKET}/{PREFIX}/"]):
        again = tmp_path / f"again{len(extra)}"
        rc, _, err = run_main("export", "--storage", storage, *extra, "--out", str(again))
        assert rc == 0, err
        copy = load_model(again)
        assert copy.record.trial == number
        torch.testing.assert_close(copy(x), model(x))


def test_resume_reads_the_seed_from_the_bucket(study: Study, s3: Any, tmp_path: Path) -> None:
    config = _copy(study, s3, tmp_path, "resumed")
    rc, _, err = run_main("run", str(config), "--n-trials", "2")
    assert rc == 0, err
    s = load_study(f"sqlite:///{tmp_path / 's.db'}", "tiny")
    new = [t for t in s.get_trials() if t.number not in study.trial_artifacts]
    assert new and all(f"resumed/{t.user_attrs['network_artifact']}" in _keys(s3, "resumed/")
                       for t in new if "network_artifact" in t.user_attrs)  # fmt: skip
    assert not (tmp_path / "art").exists()


def test_truncated_seed_object_is_refused(study: Study, s3: Any, tmp_path: Path) -> None:
    config = _copy(study, s3, tmp_path, "cut-seed")
    _truncate(s3, f"cut-seed/{study.seed_artifact}")
    rc, _, err = run_main("run", str(config), "--n-trials", "2")
    assert rc == 2
    line = _one_line(err)
    # the folder case's line (tests/test_bad_input.py): the owner, the artifact, why
    assert (
        f"the seed network: artifact {study.seed_artifact}: not a network autosize can load" in line
    )


def test_truncated_trial_object_is_refused_on_export(study: Study, s3: Any, tmp_path: Path) -> None:
    config = _copy(study, s3, tmp_path, "cut-trial")
    number, artifact = sorted(study.trial_artifacts.items())[-1]
    _truncate(s3, f"cut-trial/{artifact}")
    out = tmp_path / "out"
    rc, _, err = run_main("export", str(config), "--trial", str(number), "--out", str(out))
    assert rc == 2
    line = _one_line(err)
    assert f"trial {number}: artifact {artifact}: not a network autosize can load" in line
    assert not out.exists()


def test_missing_trial_object_is_refused_on_export(study: Study, s3: Any, tmp_path: Path) -> None:
    config = _copy(study, s3, tmp_path, "gone")
    number, artifact = sorted(study.trial_artifacts.items())[-1]
    s3.delete_object(Bucket=BUCKET, Key=f"gone/{artifact}")
    rc, _, err = run_main(
        "export", str(config), "--trial", str(number), "--out", str(tmp_path / "o")
    )
    assert rc == 2
    line = _one_line(err)
    assert f"trial {number}: artifact {artifact}: cannot be read from the artifact store" in line


def test_no_such_bucket_is_refused_before_anything_is_written(s3: Any, tmp_path: Path) -> None:
    config = _s3_config(tmp_path, "s3://no-such-bucket/x")
    rc, _, err = run_main("run", str(config))
    assert rc == 2
    line = _one_line(err)
    assert f"{config}: [study] artifacts: s3://no-such-bucket/x: no bucket 'no-such-bucket'" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]  # no storage made


def test_export_from_an_unreachable_bucket(study: Study, s3: Any, tmp_path: Path) -> None:
    rc, _, err = run_main(
        "export",
        str(study.config),
        "--artifacts",
        "s3://no-such-bucket",
        "--out",
        str(tmp_path / "o"),
    )
    assert rc == 2
    assert "--artifacts: s3://no-such-bucket: no bucket 'no-such-bucket'" in _one_line(err)


def test_missing_boto3_is_one_line_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import fails
    config = _s3_config(tmp_path, f"s3://{BUCKET}/x")
    with pytest.raises(ConfigError, match=r"\[study\] artifacts: s3://autosize-nets/x needs boto3"):
        load_config(config)
    rc, _, err = run_main("run", str(config))
    assert rc == 2
    line = _one_line(err)
    assert "[study] artifacts" in line and "pip install 'autosize[s3]'" in line


def test_prefixed_store_keeps_every_key_below_the_prefix(s3: Any) -> None:
    location = artifact_location(f"s3://{BUCKET}//unit/test/", where="t")
    assert (
        location == S3Location(BUCKET, "unit/test") and str(location) == f"s3://{BUCKET}/unit/test"
    )
    store = location.store()
    store.write("a1", io.BytesIO(b"hello"))
    assert _keys(s3, "unit/") == ["unit/test/a1"]
    with store.open_reader("a1") as f:
        assert f.read() == b"hello"
    store.remove("a1")
    assert _keys(s3, "unit/") == []
    bare = artifact_location(f"s3://{BUCKET}")
    assert bare == S3Location(BUCKET, "") and str(bare) == f"s3://{BUCKET}"


def test_dashboard_serves_networks_from_the_bucket(study: Study, s3: Any) -> None:
    pytest.importorskip("optuna_dashboard")
    from autosize.cli.dashboard import make_server

    config = load_config(study.config)
    server = make_server(config.storage, artifacts=config.artifacts, host="127.0.0.1", port=0)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/api/studies", timeout=10) as response:
            (summary,) = json.loads(response.read())["study_summaries"]
        study_id = summary["study_id"]
        with urllib.request.urlopen(f"{base}/api/studies/{study_id}", timeout=10) as response:
            trials = json.loads(response.read())["trials"]
        served = 0
        for t in trials:
            for a in t["artifacts"]:
                url = f"{base}/artifacts/{study_id}/{t['trial_id']}/{a['artifact_id']}"
                with urllib.request.urlopen(url, timeout=10) as response:
                    body = response.read()
                key = f"{PREFIX}/{a['artifact_id']}"
                assert body == s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                served += 1
        assert served == len(study.trial_artifacts)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_bucket_lost_mid_study_is_one_line_and_keeps_the_finished_trials(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bucket goes away after the seed and one more network are stored: the run stops
    with one line naming the bucket and the trial, and nothing before it is lost."""
    from optuna.artifacts import Boto3ArtifactStore

    bucket = "autosize-lost"
    s3.create_bucket(Bucket=bucket)
    config = _s3_config(tmp_path, f"s3://{bucket}/p")
    config.write_text(
        config.read_text(encoding="utf-8").replace("n_trials = 1", "n_trials = 4"),
        encoding="utf-8",
    )
    real_write = Boto3ArtifactStore.write
    writes: list[str] = []

    def write(self: Boto3ArtifactStore, artifact_id: str, body: Any) -> None:
        writes.append(artifact_id)
        if len(writes) == 3:  # the bucket is deleted (emptied first, as S3 requires)
            for key in _keys(s3, "", bucket):
                s3.delete_object(Bucket=bucket, Key=key)
            s3.delete_bucket(Bucket=bucket)
        real_write(self, artifact_id, body)

    monkeypatch.setattr(Boto3ArtifactStore, "write", write)
    rc, _, err = run_main("run", str(config))
    assert rc == 2, err
    line = _one_line(err)
    assert f"artifact store s3://{bucket}/p: cannot store trial " in line
    assert "NoSuchBucket" in line
    s = load_study(f"sqlite:///{tmp_path / 's.db'}", "tiny")
    assert len(writes) == 3
    assert [t.state.name for t in s.get_trials()].count("COMPLETE") == 1
    assert "RUNNING" not in [t.state.name for t in s.get_trials()]
