"""Rules that span fields or bound values; types and choices are already checked by the loader."""

from __future__ import annotations

from tunesmith.config.adversarial_schema import adversarial_problems
from tunesmith.config.audit_schema import audit_problems
from tunesmith.config.augment_schema import augment_problems
from tunesmith.config.federated_schema import federated_problems
from tunesmith.config.launch_schema import launch_problems
from tunesmith.config.privacy_schema import privacy_problems
from tunesmith.config.rules import need_into
from tunesmith.config.schema import Config
from tunesmith.config.search_schema import search_problems
from tunesmith.core.errors import Problem


def validate_config(cfg: Config) -> list[Problem]:
    """Every rule broken by `cfg`, each naming the field, the value and what is expected."""
    problems: list[Problem] = []
    need = need_into(problems)

    d, t, e, a = cfg.data, cfg.train, cfg.encode, cfg.adapter
    need(0 <= d.val_fraction < 1, "data.val_fraction", d.val_fraction, "a fraction in [0, 1)")
    need(0 <= d.test_fraction < 1, "data.test_fraction", d.test_fraction, "a fraction in [0, 1)")
    need(
        d.val_fraction + (0 if d.eval_file else d.test_fraction) < 1,
        "data.val_fraction",
        d.val_fraction,
        "val_fraction + test_fraction below 1",
        "leave some records for training",
    )
    need(d.max_records is None or d.max_records > 0, "data.max_records", d.max_records, "a positive integer")
    need(e.max_seq_length >= 16, "encode.max_seq_length", e.max_seq_length, "at least 16 tokens")
    need("{text}" in e.label_prompt, "encode.label_prompt", e.label_prompt, "a template containing {text}")
    need(a.r > 0, "adapter.r", a.r, "a positive rank")
    need(a.alpha > 0, "adapter.alpha", a.alpha, "a positive number")
    need(0 <= a.dropout < 1, "adapter.dropout", a.dropout, "a probability in [0, 1)")
    need(a.num_virtual_tokens > 0, "adapter.num_virtual_tokens", a.num_virtual_tokens, "a positive integer")
    need(t.learning_rate > 0, "train.learning_rate", t.learning_rate, "a positive number", "typical: 1e-4 to 3e-4")
    need(t.weight_decay >= 0, "train.weight_decay", t.weight_decay, "0 or more")
    need(t.batch_size > 0, "train.batch_size", t.batch_size, "a positive integer")
    need(t.grad_accum_steps > 0, "train.grad_accum_steps", t.grad_accum_steps, "a positive integer")
    need(t.epochs > 0, "train.epochs", t.epochs, "a positive number")
    need(t.max_steps is None or t.max_steps > 0, "train.max_steps", t.max_steps, "a positive integer or null")
    need(t.warmup_steps is None or t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "0 or more")
    need(t.max_grad_norm is None or t.max_grad_norm > 0, "train.max_grad_norm", t.max_grad_norm, "positive or null")
    need(t.save_every_steps > 0, "train.save_every_steps", t.save_every_steps, "a positive integer")
    need(t.keep_checkpoints > 0, "train.keep_checkpoints", t.keep_checkpoints, "a positive integer")
    need(t.log_every_steps > 0, "train.log_every_steps", t.log_every_steps, "a positive integer")
    need(cfg.eval.max_new_tokens > 0, "eval.max_new_tokens", cfg.eval.max_new_tokens, "a positive integer")
    need(cfg.eval.batch_size > 0, "eval.batch_size", cfg.eval.batch_size, "a positive integer")
    ev = cfg.eval
    need(ev.bootstrap_samples >= 0, "eval.bootstrap_samples", ev.bootstrap_samples, "0 or more")
    need(0 < ev.confidence < 1, "eval.confidence", ev.confidence, "a probability in (0, 1)", "typical: 0.95")
    need(ev.generalisation_samples >= 0, "eval.generalisation_samples", ev.generalisation_samples, "0 or more")
    need(ev.review_samples >= 0, "eval.review_samples", ev.review_samples, "0 or more")
    need(ev.robustness_samples > 0, "eval.robustness_samples", ev.robustness_samples, "a positive integer")
    need(0 < ev.robustness_rate <= 1, "eval.robustness_rate", ev.robustness_rate, "a share in (0, 1]")
    threads = cfg.model.num_threads
    need(threads is None or threads > 0, "model.num_threads", threads, "a positive integer or null")
    problems.extend(augment_problems(cfg.augment))
    problems.extend(privacy_problems(cfg.privacy, cfg.train))
    problems.extend(audit_problems(cfg.audit))
    problems.extend(launch_problems(cfg.launch))
    problems.extend(adversarial_problems(cfg.adversarial))
    problems.extend(federated_problems(cfg.federated))
    problems.extend(search_problems(cfg.search, Config))
    return problems
