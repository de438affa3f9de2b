"""Where a study lives and what it keeps: the Optuna storage, opened and reconnected
(:mod:`.storage`); the one typed record of a trial and of a study (:mod:`.record`, the only
module that spells autosize's user attributes); trials read back as plain objects
(:mod:`.results`); the networks' artifact store, a folder or S3 (:mod:`.artifacts`); and the
claims by which one process of many does shared work once (:mod:`.claims`)."""
