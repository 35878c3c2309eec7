"""tunesmith.evaluate: score a model on the test split and compare base with tuned.

Modules: `metrics` (the METRICS registry), `label_match` (answer -> label; label log-likelihood), `generate`
(greedy batched answers), `loss` (held-out loss/perplexity), `runner` (evaluate_model, compare, report).
A new metric is one module that registers itself on import; add its import below so the registry holds it
without scanning the file system. Nothing here imports torch.
"""

from tunesmith.evaluate import metrics as metrics  # registers accuracy, exact_match, macro_f1, chrf, bleu
