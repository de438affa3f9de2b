"""The seed network: trained once per (data, architecture, budget, seed) and kept
as a study artifact; a resumed study downloads it."""

from __future__ import annotations

import hashlib
import json
import logging

import optuna

from autosize.errors import ConfigError, StudyError
from autosize.models import ArchSpec, Net, build_model
from autosize.search import record, training
from autosize.search.claims import claim
from autosize.search.clock import Deadline
from autosize.search.prepare import Prepared
from autosize.search.storage import artifact_store, download_network, upload_network
from autosize.search.training import (
    describe,
    metrics,
)

__all__ = ["ensure_seed", "seed_key"]

logger = logging.getLogger(__name__)


def seed_key(p: Prepared) -> str:
    c = p.config
    payload = {
        "data": {
            "name": c.data.name,
            "options": dict(c.data.options),
            "subset": [c.data.max_train, c.data.max_val, c.data.max_test],
        },
        "spec": p.seed_spec.to_dict(),
        "train": c.seed_net.train.record(),
        "seed": c.seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


class SeedNotFound(StudyError):
    """The study's trained seed network is not in the artifact store (or not loadable)."""


def ensure_seed(
    study: optuna.Study, p: Prepared, deadline: Deadline | None = None
) -> tuple[Net, ArchSpec]:
    """The trained seed network: from the study's artifacts if present, else trained now.

    Of several processes opening the study at once, one trains the seed (a claim, see
    :mod:`autosize.search.claims`) and the others wait for its artifact.
    """
    deadline = deadline or Deadline.after(None)
    store = artifact_store(p.config.artifacts)
    key = seed_key(p)

    def ready() -> bool:
        return record.seed_info(study).get("key") == key

    give_up = None if deadline.seconds is None else deadline.start + deadline.seconds
    with claim(
        p.config.storage, study.study_name, "seed", done=ready, wait=True, give_up_at=give_up
    ) as mine:
        if mine:
            _train_seed(study, p, key, deadline)
        trained_here = mine
    info = record.seed_info(study)
    if info.get("key") != key:
        raise StudyError(
            f"study {study.study_name!r}: the wall budget ended while another process was training the seed"
        )
    if not trained_here:
        logger.info("reusing the seed network (key %s, artifact %s)", key, info["artifact_id"])
    try:
        return download_network(store, str(info["artifact_id"]), owner="the seed network")
    except StudyError as exc:
        raise SeedNotFound(str(exc)) from None


def _train_seed(study: optuna.Study, p: Prepared, key: str, deadline: Deadline) -> None:
    budget = p.config.seed_net.train
    logger.info("training the seed %s on %s", p.seed_spec.summary(), p.bundle.name)
    model = build_model(p.seed_spec, seed=p.config.seed)
    model, spec, history, seconds, cut = training.train_step(
        model, p.seed_spec, p, budget, seed=p.config.seed, deadline=deadline
    )
    if history.stopped == "diverged":
        raise ConfigError(
            f"{p.config.path}: [seed]: the seed network diverged while training ({history.stop_reason}); lower seed.lr"
        )
    val, test = metrics(model, p, "val"), metrics(model, p, "test")
    artifact_id = upload_network(
        study,
        p.config.artifacts,
        model,
        spec,
        filename="seed.safetensors",
        owner="the seed network",
    )
    record.write_seed_info(
        study,
        {
            "key": key,
            "artifact_id": artifact_id,
            **describe(spec),
            "epochs": len(history.epochs),
            "seconds": round(seconds, 3),
            "cut": cut,  # short of [seed]'s budget by the wall budget
            "val": val,
            "test": test,
        },
    )
