"""The trials of a study, in the order they run: the seed network (:mod:`.seed`), the
from-scratch baselines (:mod:`.baselines`), warm-started steps one at a time
(:mod:`.warmstart`) or as a cohort trained together (:mod:`.cohort`); all of them train through
the one training path and end the same way (:mod:`.training`), reporting every epoch to Optuna
through :mod:`.reporter`."""
