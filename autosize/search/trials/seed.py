"""The seed network: trained once per (data, architecture, budget, seed) and kept
as a study artifact; a resumed study downloads it."""

from __future__ import annotations

import hashlib
import json
import logging

import optuna

from autosize.errors import ConfigError, StudyError
from autosize.models import ArchSpec, Net, build_model
from autosize.search.deadline import Deadline
from autosize.search.prepare import Prepared
from autosize.search.store import record
from autosize.search.store.claims import claim
from autosize.search.store.networks import artifact_store, download_network, upload_network
from autosize.search.trials import training
from autosize.search.trials.training import (
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
    :mod:`autosize.search.store.claims`) and the others wait for its artifact.
    """
    deadline = deadline or Deadline.after(None)
    store = artifact_store(p.config.artifacts)
    key = seed_key(p)

    def ready() -> bool:
        info = record.seed_info(study)
        if info.get("key") != key:
            return False
        # A seed an earlier run's wall budget cut short is trained again in full, as a cut
        # baseline is redone, while no trial has grown from it; once one has, it stays.
        stale_cut = info.get("cut") and info.get("run_started") != deadline.start
        return not (stale_cut and not _grown_from(study))

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
        if info.get("cut") and info.get("run_started") != deadline.start:
            logger.warning(
                "the seed network had %s epochs: the wall budget of the run that trained it "
                "cut it short, and trials have grown from it since, so it stays",
                info.get("epochs"),
            )
    try:
        return download_network(store, str(info["artifact_id"]), owner="the seed network")
    except StudyError as exc:
        raise SeedNotFound(str(exc)) from None


def _grown_from(study: optuna.Study) -> bool:
    """Whether any warm-started trial (in any state) has started from the study's networks."""
    return any(record.role(t) == record.WARMSTART for t in study.get_trials(deepcopy=False))


def _train_seed(study: optuna.Study, p: Prepared, key: str, deadline: Deadline) -> None:
    budget = p.config.seed_net.train
    before = record.seed_info(study)
    if before.get("key") == key and before.get("cut"):
        logger.info(
            "training the seed again in full: an earlier run's wall budget cut it at %s epochs "
            "and no trial has grown from it yet",
            before.get("epochs"),
        )
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
            "run_started": deadline.start,  # the run (its workers share it) that trained it
            "val": val,
            "test": test,
        },
    )
