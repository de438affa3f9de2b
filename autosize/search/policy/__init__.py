"""What the next step is: the operations a warm-started trial applies to its parent
(:mod:`.operations`), the population sampler that picks parent and operation
(:mod:`.population`), Optuna's samplers reseeded per trial (:mod:`.sampling`), and the pruners
that stop a step behind its baseline (:mod:`.pruner`)."""
