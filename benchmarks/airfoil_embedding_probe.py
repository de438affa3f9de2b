"""Why studies/airfoil.toml has no ``[seed] embedding`` (reports/search_vs_scratch.md, run 9).

The shipped Airfoil seed (``fc256-fc256-fc256``) trained alone with autosize's ``fit`` as a step
trains it (25 s, cosine, lr 3e-3, batch 128, best-validation epoch kept), without an embedding
and with a periodic one of all 5 columns at three sigmas, 2 seeds each; prints validation RMSE
(held-out chord 0.2286) and test MSE (chord 0.1016):

    AUTOSIZE_DATA_DIR=../shared/data .venv/bin/python benchmarks/airfoil_embedding_probe.py
"""

from __future__ import annotations

from autosize.callbacks import CosineSchedule
from autosize.evaluation import evaluate
from autosize.models import ArchSpec, DenseLayer, PeriodicEmbedding, build_model
from autosize.search import load_config
from autosize.search.prepare import load_bundle
from autosize.train import fit

SECONDS = 25

if __name__ == "__main__":
    bundle = load_bundle(load_config("studies/airfoil.toml"))
    for sigma in (None, 0.3, 1.0, 3.0):
        for seed in (0, 1):
            emb = None if sigma is None else PeriodicEmbedding(features=5, sigma=sigma)
            spec = ArchSpec(
                input_shape=bundle.input_shape,
                n_outputs=1,
                layers=(DenseLayer(256),) * 3,
                embedding=emb,
                target_shift=bundle.target_mean,
                target_scale=bundle.target_std,
            )
            model = build_model(spec, seed=seed)
            history = fit(
                model,
                bundle,
                max_seconds=SECONDS,
                lr=3e-3,
                batch_size=128,
                seed=seed,
                callbacks=[CosineSchedule(max_seconds=SECONDS)],
                restore_best=True,
            )
            val = evaluate(model, bundle, "val")["rmse"]
            test = evaluate(model, bundle, "test")["rmse"] ** 2
            print(
                f"sigma {sigma} seed {seed}: {len(history.epochs)} epochs, "
                f"val RMSE {val:.4f}, test MSE {test:.3f}",
                flush=True,
            )
