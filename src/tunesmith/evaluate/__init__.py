"""tunesmith.evaluate: score a model on the test split, compare base with tuned, and report.

Modules: `metrics` (the METRICS registry) with its plug-ins `label_metrics`, `text_metrics`, `output_metrics`;
`predict` (answers for records), `label_match` (answer -> label; label log-likelihood), `generate` (batched
answers), `loss` (held-out loss/perplexity), `runner` (evaluate_model, compare), `significance` (bootstrap CI,
McNemar), `generalisation`, `review`, `fairness`, `counterfactual`, `robustness`, `suite` (the eval report) and
`report_html` / `run_report` (report.html from a run folder). A new metric registers itself on import; add its
module below so the registry holds it without scanning the file system. Nothing here imports torch at import.
"""

from tunesmith.evaluate import label_metrics as label_metrics  # accuracy, precision / recall / F1
from tunesmith.evaluate import metrics as metrics
from tunesmith.evaluate import output_metrics as output_metrics  # length, refusals
from tunesmith.evaluate import text_metrics as text_metrics  # exact / normalised match, BLEU, chrF, TER, ROUGE
