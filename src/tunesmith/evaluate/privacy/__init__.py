"""Leakage audits of a tuned model: canary exposure, membership inference, empirical epsilon.

- `canaries`: random secrets inserted into the training split; exposure in bits (Carlini et al. 2019).
- `scoring`: per-token log-probabilities of encoded examples (and of many candidates sharing one prefix).
- `membership`: member / non-member choice and the loss, reference, min-k% and zlib attacks; AUC, TPR at 1% FPR.
- `empirical_epsilon`: Clopper-Pearson lower bounds on epsilon from attack scores and the check against a claim.
- `report_section`: the audit's report.html section.

The recipe that runs them around training is `tunesmith.recipes.audit`.
"""
