"""Bad input end to end: every case runs a real ``autosize`` process and must end with
exactly one line on stderr naming the file, key or value, exit code 2, and leave the
storage and the artifact folder byte for byte as they were.

Each case gets its own copy of one finished tiny study (an SQLite file and its
artifact folder, made once per module); every file under the case's folder is hashed
before and after the run, so a storage or artifact that changes, or one that appears,
fails the case. PostgreSQL cases compare a digest of every table's rows, S3 cases (moto's
server) every object's key and ETag. The cases are
docs/troubleshooting.md's table (keep the two in step).

Permission cases (a config nobody may read, an artifact folder nobody may write) need
a process that file modes apply to: as root, the process runs with ``setpriv`` without
the capabilities that bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest

from autosize.search import load_config, run_study
from studies import STUDY_MARKS, tiny_config

pytestmark = STUDY_MARKS
optuna.logging.set_verbosity(optuna.logging.WARNING)
BIN = Path(sys.executable).parent
DROP_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


@dataclass(frozen=True)
class Template:
    """One finished tiny study: storage, artifacts, and the numbers of its trials."""

    root: Path
    seed_artifact: str
    trial_artifacts: dict[int, str]


@dataclass
class World:
    """A case's own copy of the template."""

    root: Path
    template: Template
    pg_url: str | None = None
    s3: Any = None  # a boto3 client of moto's S3 server, for the cases that need it

    @property
    def config(self) -> Path:
        return self.root / "study.toml"

    @property
    def db(self) -> Path:
        return self.root / "s.db"

    @property
    def art(self) -> Path:
        return self.root / "art"

    def edit(self, old: str, new: str, *, to: str | None = None) -> Path:
        """The config with one edit, written next to it (as ``to``) or over it."""
        text = self.config.read_text(encoding="utf-8")
        assert old in text, old
        path = self.root / to if to else self.config
        path.write_text(text.replace(old, new), encoding="utf-8")
        return path


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    root = tmp_path_factory.mktemp("bad-input")
    config = load_config(tiny_config(root, n_trials=1, seed_epochs=1, train_epochs=1))
    study = run_study(config)
    seed = str(study.user_attrs["seed"]["artifact_id"])
    trials = {
        t.number: str(t.user_attrs["network_artifact"])
        for t in study.get_trials()
        if "network_artifact" in t.user_attrs
    }
    return Template(root, seed, trials)


def _world(template: Template, root: Path) -> World:
    shutil.copy2(template.root / "s.db", root / "s.db")
    shutil.copytree(template.root / "art", root / "art")
    tiny_config(root, n_trials=1, seed_epochs=1, train_epochs=1)
    return World(root, template)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_db(url: str, db: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + db


def _with_user(url: str, user: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}@{rest.split('@', 1)[1]}"


def _pg_study(w: World) -> Path:
    """The tiny study run to completion on PostgreSQL, in a database emptied first."""
    assert w.pg_url is not None
    storage = optuna.storages.RDBStorage(w.pg_url)
    for s in optuna.get_all_study_summaries(storage):
        optuna.delete_study(study_name=s.study_name, storage=storage)
    config = tiny_config(w.root / "pg", storage=w.pg_url, n_trials=1, seed_epochs=1, train_epochs=1)
    run_study(load_config(config))
    return config


def _junk(path: Path, data: bytes = b"\x00not what it should be\xff" * 10) -> Path:
    path.write_bytes(data)
    return path


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _tampered_airfoil(w: World) -> Path:
    mirror = os.environ.get("AUTOSIZE_DATA_DIR")
    source = Path(mirror) / "airfoil" / "airfoil_self_noise.dat" if mirror else None
    if source is None or not source.exists():
        pytest.skip("needs the airfoil file from the data mirror (AUTOSIZE_DATA_DIR)")
    target = w.root / "data" / "airfoil" / "airfoil_self_noise.dat"
    target.parent.mkdir(parents=True)
    data = bytearray(source.read_bytes())
    data[100] = ord("9") if data[100] != ord("9") else ord("8")
    target.write_bytes(bytes(data))
    return w.edit(
        'name = "add10"', f'name = "airfoil"\ndata_dir = "{w.root / "data"}"', to="airfoil.toml"
    )


@dataclass(frozen=True)
class Case:
    id: str
    # The arguments after `autosize`, from the case's world (which it may prepare).
    argv: Callable[[World], list[str]]
    # What the one line must name (formatted with the world: {root}, {seed}, ...).
    names: Callable[[World], str]
    unprivileged: bool = False
    postgres: bool = False
    # Needs moto's S3 server (S3_MOTO, with the bucket S3_BUCKET).
    s3: bool = False
    env: dict[str, str] = field(default_factory=dict)


def _run(w: World, *extra: str, config: Path | None = None) -> list[str]:
    return ["run", str(config or w.config), *extra]


def _seed_file(w: World) -> Path:
    return w.art / w.template.seed_artifact


def _a_trial(w: World) -> tuple[int, Path]:
    number, artifact = sorted(w.template.trial_artifacts.items())[-1]
    return number, w.art / artifact


S3_BUCKET = "autosize-nets"
S3_URL = f"s3://{S3_BUCKET}/tiny"
# Nothing listens at the first; moto's S3 server (the moto_s3 fixture) at the second.
S3_DOWN = f"http://127.0.0.1:{_free_port()}"
S3_MOTO = f"http://127.0.0.1:{_free_port()}"


def _aws(endpoint: str, *, login: bool = True) -> dict[str, str]:
    """boto3's environment: an endpoint, a login or none; no credentials file is read and
    no instance metadata server is ever asked."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "someone" if login else "",
        "AWS_SECRET_ACCESS_KEY": "secret" if login else "",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[Any]:
    """moto's S3 server on 127.0.0.1 with the bucket S3_BUCKET; a client of it."""
    moto_server = pytest.importorskip("moto.server")
    import boto3

    host, port = S3_MOTO.removeprefix("http://").split(":")
    server = moto_server.ThreadedMotoServer(ip_address=host, port=int(port), verbose=False)
    server.start()
    try:
        env = _aws(S3_MOTO)
        client = boto3.client(
            "s3",
            endpoint_url=S3_MOTO,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=S3_BUCKET)
        yield client
    finally:
        server.stop()


def _s3(w: World, url: str = S3_URL) -> Path:
    return w.edit(f'artifacts = "{w.art}"', f'artifacts = "{url}"', to="s3.toml")


def _in_s3(w: World) -> str:
    """The world's artifact folder copied to the bucket, under a prefix of its own (as
    `aws s3 sync ART s3://BUCKET/PREFIX/` moves a study's folder); returns the URL."""
    assert w.s3 is not None
    prefix = f"{w.root.name}/art"
    for path in w.art.iterdir():
        w.s3.upload_file(str(path), S3_BUCKET, f"{prefix}/{path.name}")
    return f"s3://{S3_BUCKET}/{prefix}"


def _truncate_in_s3(w: World, artifact: str) -> None:
    assert w.s3 is not None
    key = f"{w.root.name}/art/{artifact}"
    body = w.s3.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read()
    w.s3.put_object(Bucket=S3_BUCKET, Key=key, Body=body[: len(body) // 2])


def _without_boto3(w: World) -> Path:
    """A ``boto3`` that cannot be imported, first on the process's PYTHONPATH (no-boto3/,
    relative to the folder the case runs in)."""
    shim = w.root / "no-boto3" / "boto3"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("no boto3 here")\n', encoding="utf-8")
    return _s3(w)


def _export(w: World, *extra: str) -> list[str]:
    return ["export", str(w.config), *extra]


def _chmod(path: Path, mode: int) -> Path:
    path.chmod(mode)
    return path


def _second_study(w: World) -> list[str]:
    optuna.create_study(study_name="other", storage=f"sqlite:///{w.db}")
    return ["report", "--storage", f"sqlite:///{w.db}", "--out", str(w.root / "report")]


CASES: list[Case] = [
    # --- the command line ---
    Case("workers-0", lambda w: _run(w, "--workers", "0"), lambda w: "--workers"),
    Case("timeout-negative", lambda w: _run(w, "--timeout", "-5"), lambda w: "--timeout"),
    Case("n-trials-not-a-number", lambda w: _run(w, "--n-trials", "ten"), lambda w: "'ten'"),
    Case("threads-0", lambda w: _run(w, "--threads", "0"), lambda w: "--threads"),
    Case("unknown-option", lambda w: _run(w, "--n-trails", "3"), lambda w: "--n-trails"),
    Case(
        "grace-period-not-a-number",
        lambda w: _run(w, "--n-trials", "2"),
        lambda w: "AUTOSIZE_HEARTBEAT_GRACE",
        env={"AUTOSIZE_HEARTBEAT_GRACE": "soon"},
    ),
    Case(
        "storage-retry-not-a-number",
        lambda w: _run(w, "--n-trials", "2"),
        lambda w: "AUTOSIZE_STORAGE_RETRY",
        env={"AUTOSIZE_STORAGE_RETRY": "a minute"},
    ),
    # --- the config file ---
    Case("config-missing", lambda w: _run(w, config=w.root / "nope.toml"), lambda w: "nope.toml"),
    Case("config-is-a-folder", lambda w: _run(w, config=w.art), lambda w: str(w.art)),
    Case(
        "config-not-toml",
        lambda w: _run(w, config=_junk(w.root / "junk.toml")),
        lambda w: "junk.toml",
    ),
    Case(
        "config-not-readable",
        lambda w: _run(w, config=_chmod(w.config, 0o000)),
        lambda w: str(w.config),
        unprivileged=True,
    ),
    # --- storage URLs ---
    Case(
        "storage-unknown-scheme",
        lambda w: _run(w, "--storage", "nosuchdb://host/x"),
        lambda w: "nosuchdb://host/x",
    ),
    Case(
        "storage-not-a-url",
        lambda w: _run(w, "--storage", "not a url"),
        lambda w: "not a url",
    ),
    Case(
        "storage-sqlite-under-a-file",
        lambda w: _run(w, "--storage", f"sqlite:///{w.config}/s.db"),
        lambda w: f"{w.config}/s.db",
    ),
    Case(
        "storage-sqlite-not-a-database",
        lambda w: _run(w, "--storage", f"sqlite:///{_junk(w.root / 'junk.db')}"),
        lambda w: "junk.db",
    ),
    Case(
        "storage-journal-not-a-journal",
        lambda w: _run(w, "--storage", f"journal:{_junk(w.root / 'junk.log')}"),
        lambda w: "junk.log",
    ),
    Case(
        "storage-journal-under-a-file",
        lambda w: _run(w, "--storage", f"journal:{w.config}/s.log"),
        lambda w: f"{w.config}/s.log",
    ),
    Case(
        "storage-driver-not-installed",
        lambda w: _run(w, "--storage", "mysql://user@127.0.0.1/autosize"),
        lambda w: "mysql",
    ),
    Case(
        "storage-postgres-unreachable",
        lambda w: _run(w, "--storage", f"postgresql://postgres@127.0.0.1:{_free_port()}/x"),
        lambda w: "127.0.0.1",
    ),
    Case(
        "storage-postgres-login-refused",
        lambda w: _run(w, "--storage", _with_user(w.pg_url or "", "intruder")),
        lambda w: "intruder",
        postgres=True,
    ),
    Case(
        "storage-postgres-no-such-database",
        lambda w: _run(w, "--storage", _with_db(w.pg_url or "", "nosuchdb")),
        lambda w: "nosuchdb",
        postgres=True,
    ),
    # --- an existing study that the config does not match ---
    Case(
        "study-other-directions",
        lambda w: _run(w, config=w.edit("[study]", '[study]\nsecond_objective = "params"')),
        lambda w: "directions",
    ),
    Case(
        "study-other-objective",
        lambda w: _run(w, config=w.edit('objective = "val_rmse"', 'objective = "val_loss"')),
        lambda w: "study.objective",
    ),
    Case(
        "study-other-data",
        lambda w: _run(w, config=w.edit("max_train = 600", "max_train = 500")),
        lambda w: "[data]",
    ),
    Case(
        "study-other-objective-postgres",
        lambda w: _run(
            w, config=_edit(_pg_study(w), 'objective = "val_rmse"', 'objective = "val_loss"')
        ),
        lambda w: "study.objective",
        postgres=True,
    ),
    # --- data ---
    Case("data-tampered", lambda w: _run(w, config=_tampered_airfoil(w)), lambda w: "airfoil"),
    Case(
        "data-unknown-dataset",
        lambda w: _run(w, config=w.edit('name = "add10"', 'name = "add11"')),
        lambda w: "add11",
    ),
    Case("data-fetch-unknown", lambda w: ["data", "fetch", "add11"], lambda w: "add11"),
    # --- network artifacts ---
    Case(
        "seed-artifact-truncated",
        lambda w: (_truncate(_seed_file(w)), _run(w, "--n-trials", "2"))[1],
        lambda w: w.template.seed_artifact,
    ),
    Case(
        "seed-artifact-foreign",
        lambda w: (_junk(_seed_file(w)), _run(w, "--n-trials", "2"))[1],
        lambda w: w.template.seed_artifact,
    ),
    Case(
        "seed-artifact-missing",
        lambda w: (_seed_file(w).unlink(), _run(w, "--n-trials", "2"))[1],
        lambda w: w.template.seed_artifact,
    ),
    Case(
        "trial-artifact-truncated-on-export",
        lambda w: (
            _truncate(_a_trial(w)[1]),
            _export(w, "--trial", str(_a_trial(w)[0]), "--out", str(w.root / "out")),
        )[1],
        lambda w: f"trial {_a_trial(w)[0]}",
    ),
    Case(
        "artifacts-is-a-file",
        lambda w: _run(
            w, config=w.edit(f'artifacts = "{w.art}"', f'artifacts = "{w.config}"', to="f.toml")
        ),
        lambda w: str(w.config),
    ),
    Case(
        "artifacts-not-writable-new-study",
        lambda w: (
            _chmod(w.art, 0o555),
            _run(w, config=w.edit('name = "tiny"', 'name = "fresh"', to="fresh.toml")),
        )[1],
        lambda w: str(w.art),
        unprivileged=True,
    ),
    Case(
        "artifacts-not-writable-resumed-study",
        lambda w: (_chmod(w.art, 0o555), _run(w, "--n-trials", "2"))[1],
        lambda w: str(w.art),
        unprivileged=True,
    ),
    # --- artifacts in S3 (boto3 reads the AWS_* variables; see _aws) ---
    Case(
        "artifacts-s3-unreachable",
        lambda w: _run(w, config=_s3(w)),
        lambda w: f"[study] artifacts: {S3_URL}: cannot reach the bucket at {S3_DOWN}",
        env=_aws(S3_DOWN),
    ),
    Case(
        "artifacts-s3-no-credentials",
        lambda w: _run(w, config=_s3(w)),
        lambda w: f"[study] artifacts: {S3_URL}: no AWS credentials",
        env=_aws(S3_DOWN, login=False),
    ),
    Case(
        "artifacts-s3-unreachable-on-export",
        lambda w: _export(w, "--artifacts", S3_URL, "--out", str(w.root / "out")),
        lambda w: f"--artifacts: {S3_URL}: cannot reach the bucket",
        env=_aws(S3_DOWN),
    ),
    Case(
        "artifacts-s3-no-such-bucket",
        lambda w: _run(w, config=_s3(w, "s3://no-such-bucket/x")),
        lambda w: (
            f"[study] artifacts: s3://no-such-bucket/x: no bucket 'no-such-bucket' at {S3_MOTO}"
        ),
        env=_aws(S3_MOTO),
        s3=True,
    ),
    Case(
        "seed-artifact-truncated-in-s3",
        lambda w: (
            url := _in_s3(w),
            _truncate_in_s3(w, w.template.seed_artifact),
            _run(w, "--n-trials", "2", config=_s3(w, url)),
        )[2],
        lambda w: f"the seed network: artifact {w.template.seed_artifact}: not a network",
        env=_aws(S3_MOTO),
        s3=True,
    ),
    Case(
        "trial-artifact-truncated-in-s3-on-export",
        lambda w: (
            url := _in_s3(w),
            _truncate_in_s3(w, _a_trial(w)[1].name),
            _export(
                w, "--trial", str(_a_trial(w)[0]), "--artifacts", url, "--out", str(w.root / "o")
            ),
        )[2],
        lambda w: f"trial {_a_trial(w)[0]}: artifact {_a_trial(w)[1].name}: not a network",
        env=_aws(S3_MOTO),
        s3=True,
    ),
    Case(
        "artifacts-s3-without-boto3",
        lambda w: _run(w, config=_without_boto3(w)),
        lambda w: f"[study] artifacts: {S3_URL} needs boto3: pip install 'autosize[s3]'",
        env={"PYTHONPATH": "no-boto3"},
    ),
    Case(
        "artifacts-unsupported-url",
        lambda w: _run(
            w, config=w.edit(f'artifacts = "{w.art}"', 'artifacts = "gs://b/x"', to="g.toml")
        ),
        lambda w: "[study] artifacts: 'gs://b/x'",
    ),
    # --- export, report, train ---
    Case(
        "export-folder-exists",
        lambda w: _export(w, "--out", str(w.art)),
        lambda w: str(w.art),
    ),
    Case(
        "export-no-such-trial",
        lambda w: _export(w, "--trial", "999", "--out", str(w.root / "out")),
        lambda w: "999",
    ),
    Case(
        "export-no-such-storage",
        lambda w: [
            "export",
            "--storage",
            f"sqlite:///{w.root / 'none.db'}",
            "--out",
            str(w.root / "out"),
        ],
        lambda w: "none.db",
    ),
    Case(
        "export-no-such-study",
        lambda w: _export(w, "--study-name", "nope", "--out", str(w.root / "out")),
        lambda w: "'nope'",
    ),
    Case(
        "report-storage-with-two-studies",
        _second_study,
        lambda w: "--study-name",
    ),
    Case(
        "train-no-such-architecture",
        lambda w: ["train", str(w.root / "none.json")],
        lambda w: "none.json",
    ),
    Case(
        "train-architecture-not-json",
        lambda w: ["train", str(_junk(w.root / "arch.json"))],
        lambda w: "arch.json",
    ),
]


def _edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text(encoding="utf-8")
    assert old in text
    out = path.with_name("edited.toml")
    out.write_text(text.replace(old, new), encoding="utf-8")
    return out


def _tree(root: Path) -> dict[str, str]:
    """sha256 (and mode) of every file under ``root``, by relative path."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_dir():
            out[rel + "/"] = oct(path.stat().st_mode)
        else:
            out[rel] = f"{oct(path.stat().st_mode)} {hashlib.sha256(path.read_bytes()).hexdigest()}"
    return out


def _pg_digest(url: str) -> dict[str, str]:
    """Row count and md5 of the sorted rows of every table in the database."""
    import psycopg

    with psycopg.connect(url) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        digest = {}
        for table in tables:
            row = con.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM \"{table}\" t"
            ).fetchone()
            digest[table] = f"{row[0]} {row[1]}" if row else ""
    return digest


def _bucket_digest(client: Any) -> dict[str, str]:
    """Every object in the bucket: key -> ETag."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    case: Case, template: Template, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    w = _world(template, tmp_path)
    if case.postgres:
        w.pg_url = request.getfixturevalue("postgres_url")
    if case.s3:
        w.s3 = request.getfixturevalue("moto_s3")
    prefix: list[str] = []
    if case.unprivileged and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: file modes do not apply to root")
        prefix = DROP_DAC
    argv = case.argv(w)
    before = _tree(tmp_path)
    pg_before = _pg_digest(w.pg_url) if w.pg_url else None
    s3_before = _bucket_digest(w.s3) if w.s3 else None
    env = {**os.environ, "OMP_NUM_THREADS": "1", **case.env}
    proc = subprocess.run(
        [*prefix, str(BIN / "autosize"), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("autosize") and ": error: " in lines[0], lines[0]
    assert case.names(w) in lines[0], lines[0]
    after = _tree(tmp_path)
    if case.unprivileged:  # modes back, for pytest's clean-up
        for path in (w.config, w.art):
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert after == before, "the run changed files"
    if pg_before is not None:
        assert _pg_digest(str(w.pg_url)) == pg_before, "the run changed the database"
    if s3_before is not None:
        assert _bucket_digest(w.s3) == s3_before, "the run changed the bucket"
