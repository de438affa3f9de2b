"""Two independent ``autosize run`` processes, as on two machines, on one SQLite study
whose networks go to one bucket: moto's S3 server on 127.0.0.1, reached as any
S3-compatible server is, through ``AWS_ENDPOINT_URL``.

A module of its own: moto's in-process mock (tests/test_s3.py) would intercept this
process's calls to the server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from autosize.search import load_config
from autosize.search.store.networks import artifact_store, download_network
from autosize.search.store.storage import load_study
from studies import STUDY_MARKS, tiny_config

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

pytestmark = [*STUDY_MARKS, pytest.mark.slow]
BIN = Path(sys.executable).parent
BUCKET = "shared-nets"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_share_one_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",  # never ask a metadata server
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        config = tiny_config(tmp_path, n_trials=3, seed_epochs=1, train_epochs=1)
        text = config.read_text(encoding="utf-8")
        config.write_text(
            text.replace(f'"{tmp_path / "art"}"', f'"s3://{BUCKET}/runs/tiny"'), encoding="utf-8"
        )
        procs = [
            subprocess.Popen(
                [str(BIN / "autosize"), "-q", "run", str(config), "--threads", "1"],
                env={**os.environ, "OMP_NUM_THREADS": "1"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err

        study = load_study(load_config(config).storage, "tiny")
        trials = study.get_trials()
        assert not [t.number for t in trials if t.state == TrialState.RUNNING]
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        seed = str(study.user_attrs["seed"]["artifact_id"])
        nets = [str(t.user_attrs["network_artifact"]) for t in complete]
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix="runs/tiny/").get("Contents", [])
        # the seed trained and stored once, one object per completed trial, nothing else
        assert sorted(o["Key"] for o in listed) == sorted(f"runs/tiny/{a}" for a in [seed, *nets])
        assert not (tmp_path / "art").exists()
        store = artifact_store(load_config(config).artifacts)
        for artifact in [seed, *nets]:
            download_network(store, artifact)
    finally:
        server.stop()
