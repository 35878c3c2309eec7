"""The leakage audit: canaries and members chosen before training, attacks after it.

    tunesmith train cfg.yaml --audit.enabled=true     # the audit as a stage of training (on by default for dp)
    tunesmith audit runs/<id>                          # re-run the post-training part on a finished run

Before training (`AuditStage.prepare`, after vetting, splitting and augmenting): members are sampled from the
training split and non-members from the held-out records, canary secrets are drawn, and their copies are encoded
and added to the training examples only. Everything is written to `runs/<id>/audit/` (`plan.json`,
`members.jsonl`, `non_members.jsonl`, `inserted.jsonl`), so the audit can be re-run later on the same records.

After training (`AuditStage.run`, or `audit_run` for a finished run): canary exposure, the membership attacks
(the base model, i.e. the adapter switched off, is the reference model), the empirical epsilon bounds and the
check against `privacy_report.json`; written to `runs/<id>/audit_report.json` and shown in report.html.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.config import Config
from tunesmith.core.errors import TunesmithError
from tunesmith.core.records import PromptStyle, Record
from tunesmith.evaluate.privacy.canaries import (
    Canary,
    canary_kind,
    canary_record,
    exposure_table,
    inserted_records,
    make_canaries,
    sample_candidates,
)
from tunesmith.evaluate.privacy.report_section import AUDIT_REPORT
from tunesmith.recipes.common import console, encode_split

AUDIT_SUBDIR = "audit"
PLAN_FILE = "plan.json"
PRIVACY_FILES = ("privacy_report.json", "privacy/privacy_report.json")


def audit_enabled(cfg: Config) -> bool:
    """`audit.enabled`, where null means: on for DP runs (they claim a guarantee the audit can test)."""
    return cfg.audit.enabled if cfg.audit.enabled is not None else cfg.train.strategy == "dp"


def audit_seed(cfg: Config) -> int:
    return cfg.audit.seed if cfg.audit.seed is not None else cfg.run.seed


class AuditStage:
    """`prepare` before training (returns the encoded canary copies to train on), `run` after it."""

    def __init__(self, cfg: Config, out: Any | None = None) -> None:
        self.cfg = cfg
        self.out = out or console()

    def prepare(self, splits: Any, tokenizer: Any, style: PromptStyle, run_path: Path) -> list[Any]:
        """Choose members and canaries, write them to `<run>/audit/`, return the canary examples to train on."""
        from tunesmith.data.rows import write_records_jsonl
        from tunesmith.evaluate.privacy.membership import choose_members

        audit, seed = self.cfg.audit, audit_seed(self.cfg)
        folder = run_path / AUDIT_SUBDIR
        folder.mkdir(parents=True, exist_ok=True)
        members, non_members = choose_members(splits.train, splits.val + splits.test, audit.members,
                                              audit.non_members, seed)
        canaries = make_canaries(audit.canary_repetitions, audit.canaries_per_repetition, audit.reference_canaries,
                                 audit.secret_digits, seed)
        kind = canary_kind(splits.train)
        copies = inserted_records(canaries, audit.canary_template, audit.canary_prompt, kind)
        write_records_jsonl(folder / "members.jsonl", members)
        write_records_jsonl(folder / "non_members.jsonl", non_members)
        write_records_jsonl(folder / "inserted.jsonl", copies)
        plan = {"seed": seed, "kind": kind, "template": audit.canary_template, "prompt": audit.canary_prompt,
                "digits": audit.secret_digits, "style": asdict(style), "canaries": [asdict(c) for c in canaries],
                "member_origins": [str(r.origin) for r in members],
                "non_member_origins": [str(r.origin) for r in non_members]}
        _write_json(folder / PLAN_FILE, plan)
        examples, _ = encode_split(copies, tokenizer, style, self.cfg.encode)
        inserted = sum(c.repetitions for c in canaries)
        self.out.print(f"audit: {inserted} canary copies ({len(canaries) - audit.reference_canaries} secrets) join "
                       f"the training examples; {len(members)} members, {len(non_members)} non-members chosen")
        return examples

    def run(self, model: Any, tokenizer: Any, run_path: Path) -> dict[str, Any]:
        """Audit the tuned `model` (a peft model: the adapter switched off is the base; else the base is loaded)."""
        from tunesmith.train import distributed

        if not distributed.current().is_main:  # rank 0 audits the one model every rank holds
            return {}
        plan = read_plan(run_path)
        base_model = None
        if "reference" in self.cfg.audit.attacks and not hasattr(model, "disable_adapter"):
            base_model = _load_base(self.cfg, model)  # full fine-tuning: no adapter to switch off
        report = audit_model(self.cfg, plan, run_path, model, tokenizer, base_model)
        _write_json(run_path / AUDIT_REPORT, report)
        print_audit_summary(report, self.out)
        return report


def read_plan(run_path: Path) -> dict[str, Any]:
    path = run_path / AUDIT_SUBDIR / PLAN_FILE
    if not path.is_file():
        raise TunesmithError(
            f"{path} not found: this run was trained without the audit stage, so it has no canaries or members; "
            "train with `--audit.enabled=true` to audit a run"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def read_claim(run_path: Path) -> dict[str, Any] | None:
    """The run's DP guarantee (privacy_report.json), or None for a run without one."""
    for name in PRIVACY_FILES:
        path = run_path / name
        if path.is_file():
            claim = json.loads(path.read_text(encoding="utf-8"))
            if claim.get("epsilon") is not None and claim.get("delta") is not None:
                return claim
    return None


def audit_model(cfg: Config, plan: dict[str, Any], run_path: Path, model: Any, tokenizer: Any,
                base_model: Any | None) -> dict[str, Any]:
    """Exposure, membership attacks and epsilon bounds for `model`; the audit_report.json content."""
    from tunesmith.evaluate.privacy.empirical_epsilon import audit_epsilons

    audit = cfg.audit
    style = PromptStyle(**{**plan["style"], "labels": tuple(plan["style"]["labels"])})
    canaries = [Canary(**c) for c in plan["canaries"]]
    exposure, canary_lp = canary_exposure(cfg, plan, canaries, model, tokenizer, style)
    members, non_members = read_members(run_path)
    membership = membership_attacks(cfg, members, non_members, model, tokenizer, style, base_model)
    audits = canary_audits(canaries, canary_lp) + membership_audits(membership)
    claim = read_claim(run_path)
    epsilon = audit_epsilons(audits, claim, audit.confidence)
    return {"canaries": exposure, "membership": membership, "empirical_epsilon": epsilon,
            "consistency": consistency_line(epsilon)}


def canary_exposure(cfg: Config, plan: dict[str, Any], canaries: list[Canary], model: Any, tokenizer: Any,
                    style: PromptStyle) -> tuple[dict[str, Any], list[float]]:
    """Exposure of every canary against `exposure_samples` candidates (all share the prompt, so one prefix run)."""
    from tunesmith.evaluate.privacy.scoring import shared_prefix_logprobs

    audit = cfg.audit
    if not canaries:
        return {"by_repetitions": {}, "canaries": [], "method": audit.exposure_method, "samples": 0,
                "max_exposure_bits": plan["digits"] * math.log2(10), "sample_resolution_bits": 0.0,
                "template": plan["template"], "prompt": plan["prompt"], "record_kind": plan["kind"]}, []
    candidates = sample_candidates(audit.exposure_samples, plan["digits"], plan["seed"])
    secrets = [c.secret for c in canaries] + candidates
    records = [canary_record(plan["template"].replace("{secret}", s), plan["prompt"], plan["kind"], i + 1)
               for i, s in enumerate(secrets)]
    examples, report = encode_split(records, tokenizer, style, cfg.encode)
    if len(examples) != len(records):
        raise TunesmithError(f"{report.dropped} canary records were dropped by the encoder; raise "
                             "encode.max_seq_length or shorten audit.canary_template / audit.canary_prompt")
    logprobs = shared_prefix_logprobs(model, examples, audit.batch_size)
    log_ppl_bits = [-float(np.sum(lp)) / math.log(2) for lp in logprobs]  # Carlini's log-perplexity, in bits
    n = len(canaries)
    table = exposure_table(canaries, log_ppl_bits[:n], np.asarray(log_ppl_bits[n:]), plan["digits"],
                           audit.exposure_method)
    return {**table, "template": plan["template"], "prompt": plan["prompt"], "record_kind": plan["kind"]}, \
        log_ppl_bits[:n]


def read_members(run_path: Path) -> tuple[list[Record], list[Record]]:
    from tunesmith.data.load import load_records

    folder = run_path / AUDIT_SUBDIR
    loaded = []
    for name in ("members.jsonl", "non_members.jsonl"):
        path = folder / name
        records = load_records(path, "auto")[0] if path.stat().st_size else []
        loaded.append(records)
    return loaded[0], loaded[1]


def membership_attacks(cfg: Config, members: list[Record], non_members: list[Record], model: Any, tokenizer: Any,
                       style: PromptStyle, base_model: Any | None) -> dict[str, Any]:
    """Each attack's AUC and TPR at 1% FPR on the stored members and non-members."""
    from tunesmith.evaluate.privacy.membership import membership_report

    audit = cfg.audit
    logprobs: dict[str, dict[str, list[np.ndarray]]] = {"members": {}, "non_members": {}}
    texts: dict[str, list[str]] = {}
    for group, records in (("members", members), ("non_members", non_members)):
        examples, _ = encode_split(records, tokenizer, style, cfg.encode)
        texts[group] = [_target_text(e, tokenizer) for e in examples]
        logprobs[group]["tuned"] = _logprobs(model, examples, audit.batch_size)
        if "reference" in audit.attacks:
            logprobs[group]["base"] = _base_logprobs(model, base_model, examples, audit.batch_size)
    return membership_report(audit.attacks, logprobs["members"], logprobs["non_members"], texts["members"],
                             texts["non_members"], audit.min_k_fraction)


def _logprobs(model: Any, examples: list[Any], batch_size: int) -> list[np.ndarray]:
    from tunesmith.evaluate.privacy.scoring import target_logprobs

    return target_logprobs(model, examples, batch_size)


def _base_logprobs(model: Any, base_model: Any | None, examples: list[Any], batch_size: int) -> list[np.ndarray]:
    """The reference model's log-probs: `base_model` when given, else the peft model with its adapter off."""
    if base_model is not None:
        return _logprobs(base_model, examples, batch_size)
    with model.disable_adapter():
        return _logprobs(model, examples, batch_size)


def _load_base(cfg: Config, model: Any) -> Any:
    from tunesmith.models.load import load_model_and_tokenizer

    base, _ = load_model_and_tokenizer(cfg.model)
    return base.to(next(model.parameters()).device)


def _target_text(example: Any, tokenizer: Any) -> str:
    """The text of the tokens the attacks score (the answer), for the zlib attack."""
    return str(tokenizer.decode([t for t in example.labels if t != -100]))


def canary_audits(canaries: list[Canary], log_ppl_bits: list[float]) -> list[Any]:
    """One membership game per repetition count: its inserted canaries against the reference canaries."""
    from tunesmith.evaluate.privacy.empirical_epsilon import Audit

    score = {c.secret: -lp for c, lp in zip(canaries, log_ppl_bits, strict=True)}  # higher = more likely inserted
    references = [score[c.secret] for c in canaries if c.repetitions == 0]
    counts = sorted({c.repetitions for c in canaries if c.repetitions > 0})
    return [Audit(f"canaries x{k} vs reference", [score[c.secret] for c in canaries if c.repetitions == k],
                  references, group_size=k) for k in counts]


def membership_audits(membership: dict[str, Any]) -> list[Any]:
    from tunesmith.evaluate.privacy.empirical_epsilon import Audit

    return [Audit(f"membership: {name}", figures["member_scores"], figures["non_member_scores"])
            for name, figures in membership["attacks"].items()]


def consistency_line(epsilon: dict[str, Any]) -> str:
    """One sentence for the console and the report."""
    verdict, bound = epsilon["verdict"], epsilon["max_epsilon_lower_bound"]
    bound_text = "no bound" if bound is None else f"empirical epsilon >= {bound:.3f}"
    if verdict == "NO_CLAIM":
        return f"no DP claim to check ({bound_text} at {epsilon['confidence']:.0%} confidence)"
    claimed = epsilon["claimed"]["epsilon"]
    if verdict == "FAIL":
        failed = [a["audit"] for a in epsilon["audits"] if a["status"] == "FAIL"]
        return (f"FAIL: {bound_text} exceeds the claimed epsilon {claimed:.3f} (group-adjusted) in "
                f"{', '.join(failed)}; the DP guarantee does not hold for this run")
    return f"PASS: {bound_text}, consistent with the claimed epsilon {claimed:.3f}"


def print_audit_summary(report: dict[str, Any], out: Any) -> None:
    from rich.table import Table

    canaries = report["canaries"]
    table = Table(title=f"canary exposure (bits, of {canaries['max_exposure_bits']:.1f}; {canaries['method']})")
    for column in ("copies", "canaries", "mean exposure", "sampled", "skew-normal"):
        table.add_column(column, justify="right")
    for count, row in canaries["by_repetitions"].items():
        table.add_row("reference" if count == "0" else count, str(row["canaries"]), f"{row['mean_exposure']:.2f}",
                      f"{row['mean_exposure_sample']:.2f}", f"{row['mean_exposure_skewnorm']:.2f}")
    out.print(table)
    attacks = report["membership"]["attacks"]
    if attacks:
        out.print("membership: " + "; ".join(f"{name} AUC {a['auc']:.3f}, TPR@1%FPR {a['tpr_at_1pct_fpr']:.3f}"
                                             for name, a in attacks.items()))
    out.print(f"audit: {report['consistency']}")


def audit_run(run_path: str | Path) -> Path:
    """`tunesmith audit runs/<id>`: load the run's base model and adapter and redo the post-training audit."""
    from tunesmith.config.loader import load_config
    from tunesmith.models.export import load_tuned, load_tuned_tokenizer
    from tunesmith.recipes.common import setup_runtime

    run_path = Path(run_path)
    adapter_dir = run_path / "adapter"
    if not (run_path / "config.yaml").is_file() or not adapter_dir.is_dir():
        raise TunesmithError(f"{run_path} is not a finished run folder (needs config.yaml and adapter/); "
                             "pass runs/<id>")
    read_plan(run_path)  # fails early, with the fix, for runs trained without the audit stage
    cfg = load_config(run_path / "config.yaml")
    device, _ = setup_runtime(cfg)
    tuned = load_tuned(cfg.model, adapter_dir).to(device)
    tokenizer = load_tuned_tokenizer(cfg.model, adapter_dir)
    AuditStage(cfg).run(tuned, tokenizer, run_path)  # the reference attack's base: the adapter switched off
    return run_path / AUDIT_REPORT


def _write_json(path: Path, content: Any) -> None:
    from tunesmith.core.durable import atomic_write_text

    atomic_write_text(path, json.dumps(content, indent=2, ensure_ascii=False) + "\n")
