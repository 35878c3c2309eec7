"""The built-in monitors. Each keeps its own small state; `observe` runs on the request's thread after the answer
is complete, so checks stay cheap (regexes, one MinHash query, running sums)."""

from __future__ import annotations

import collections
import math
import statistics
from typing import Any

from tunesmith.evaluate.output_metrics import is_refusal
from tunesmith.serve.monitors.base import MONITORS, Alert, Exchange, MonitorContext


@MONITORS.register("pii")
class PiiMonitor:
    """PII in answers, found by the vetting detectors (regex engine: emails, cards, IBANs, phones, ...)."""

    name = "pii"

    def __init__(self, ctx: MonitorContext):
        """Stateless: the detectors need nothing from `ctx` (the argument is the registry's factory signature)."""

    def observe(self, exchange: Exchange) -> list[Alert]:
        spans = find_pii(exchange.output)
        if not spans:
            return []
        kinds = sorted({s.entity for s in spans})
        return [
            Alert(
                self.name,
                "pii_in_output",
                f"answer contains {', '.join(kinds)}",
                exchange.request_id,
                exchange.model,
                {"entities": kinds, "count": len(spans)},
            )
        ]

    def gauges(self) -> dict[str, float]:
        return {}


def find_pii(text: str) -> list[Any]:
    from tunesmith.vet.pii_detect import detect_pii

    return detect_pii(text)


def redact_pii(text: str) -> tuple[str, int]:
    """`text` with every PII span replaced by `<ENTITY>`, and how many spans there were."""
    from tunesmith.vet.pii_detect import redact

    spans = find_pii(text)
    return (redact(text, spans) if spans else text), len(spans)


@MONITORS.register("leakage")
class LeakageMonitor:
    """Answers that reproduce a training record verbatim or nearly. A MinHash index over word 3-gram shingles
    (built at start) finds candidates with a loose Jaccard; the verdict is containment, the share of the record's
    shingles found in the answer, so a record wrapped in a few extra words still counts. (A record buried in a
    much longer answer is missed: its Jaccard with the whole answer falls under the candidate cut.)"""

    name = "leakage"

    def __init__(self, ctx: MonitorContext):
        from tunesmith.data.neardup import NearDupIndex, shingles

        self.threshold = ctx.settings.leakage_threshold
        self.min_words = ctx.settings.leakage_min_words
        self.texts = [t for t in ctx.training_texts if len(t.split()) >= self.min_words]
        self.exact = {_normal(t) for t in self.texts}
        self.shingles = [shingles(t) for t in self.texts]
        self.index = NearDupIndex(self.texts, threshold=ctx.settings.leakage_candidate_jaccard) if self.texts else None

    def observe(self, exchange: Exchange) -> list[Alert]:
        output = exchange.output
        if self.index is None or len(output.split()) < self.min_words:
            return []
        if _normal(output) in self.exact:
            return [self._alert(exchange, "verbatim", 1.0, output)]
        from tunesmith.data.neardup import shingles

        answer = shingles(output)
        best = max(
            ((len(self.shingles[i] & answer) / max(1, len(self.shingles[i])), i) for i, _ in self.index.query(output)),
            default=(0.0, -1),
        )
        if best[0] < self.threshold:
            return []
        return [self._alert(exchange, "near", best[0], self.texts[best[1]])]

    def _alert(self, exchange: Exchange, how: str, score: float, record: str) -> Alert:
        return Alert(
            self.name,
            f"training_record_{how}",
            f"answer reproduces a training record ({how}, {score:.0%} of its word 3-grams)",
            exchange.request_id,
            exchange.model,
            {"containment": round(score, 4), "record_prefix": record[:80]},
        )

    def gauges(self) -> dict[str, float]:
        return {"leakage_index_records": float(len(self.texts))}


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


@MONITORS.register("canary")
class CanaryMonitor:
    """Canary strings planted in the training data: any one in an answer proves memorisation (or tampering)."""

    name = "canary"

    def __init__(self, ctx: MonitorContext):
        self.canaries = [c for c in ctx.settings.canaries if c.strip()]

    def observe(self, exchange: Exchange) -> list[Alert]:
        lowered = exchange.output.lower()
        found = [c for c in self.canaries if c.lower() in lowered]
        if not found:
            return []
        return [
            Alert(
                self.name,
                "canary_in_output",
                f"answer contains {len(found)} canary string(s)",
                exchange.request_id,
                exchange.model,
                {"canaries": found},
            )
        ]

    def gauges(self) -> dict[str, float]:
        return {}


@MONITORS.register("drift")
class DriftMonitor:
    """Prompt token lengths over a sliding window vs the training prompts: a z-test on the window mean.

    Alerts once when the window drifts past the threshold, again only after it came back and drifted anew.
    """

    name = "drift"

    def __init__(self, ctx: MonitorContext):
        settings = ctx.settings
        lengths = [ctx.token_count(t) for t in ctx.training_prompts]
        self.train_mean = statistics.fmean(lengths) if lengths else 0.0
        self.train_std = statistics.pstdev(lengths) if len(lengths) > 1 else 0.0
        self.window: collections.deque[int] = collections.deque(maxlen=settings.drift_window)
        self.min_samples = settings.drift_min_samples
        self.threshold = settings.drift_threshold
        self.enabled = bool(lengths)
        self.drifting = False
        self.last_z = 0.0

    def observe(self, exchange: Exchange) -> list[Alert]:
        if not self.enabled:
            return []
        self.window.append(exchange.prompt_tokens)
        if len(self.window) < self.min_samples:
            return []
        mean = statistics.fmean(self.window)
        stderr = max(self.train_std, 1.0) / math.sqrt(len(self.window))
        self.last_z = (mean - self.train_mean) / stderr
        now = abs(self.last_z) >= self.threshold
        alerts = []
        if now and not self.drifting:
            alerts.append(
                Alert(
                    self.name,
                    "input_length_drift",
                    f"prompt length window mean {mean:.1f} tokens vs "
                    f"training {self.train_mean:.1f} (z={self.last_z:.1f})",
                    exchange.request_id,
                    exchange.model,
                    {
                        "window_mean": mean,
                        "train_mean": self.train_mean,
                        "z": round(self.last_z, 2),
                        "window": len(self.window),
                    },
                )
            )
        self.drifting = now
        return alerts

    def gauges(self) -> dict[str, float]:
        return {"drift_prompt_length_z": self.last_z}


@MONITORS.register("quality")
class QualityMonitor:
    """Empty answers and refusals (each an alert per answer, and a rate alert over a window); latency and
    tokens/s are exposed as gauges of the last answer (their histograms live in the app's metrics)."""

    name = "quality"

    def __init__(self, ctx: MonitorContext):
        settings = ctx.settings
        self.window: collections.deque[str] = collections.deque(maxlen=settings.quality_window)
        self.rate_alerts = {"empty": settings.empty_rate_alert, "refusal": settings.refusal_rate_alert}
        self.alerting: set[str] = set()
        self.last_latency = 0.0
        self.last_tokens_per_s = 0.0

    def observe(self, exchange: Exchange) -> list[Alert]:
        verdict = classify_answer(exchange.output)
        self.window.append(verdict)
        self.last_latency = exchange.latency_s
        self.last_tokens_per_s = exchange.completion_tokens / exchange.latency_s if exchange.latency_s > 0 else 0.0
        alerts = []
        if verdict != "ok":
            alerts.append(
                Alert(self.name, f"{verdict}_answer", f"{verdict} answer", exchange.request_id, exchange.model)
            )
        for kind, limit in self.rate_alerts.items():
            rate = self.rate(kind)
            high = len(self.window) >= 10 and rate >= limit
            if high and kind not in self.alerting:
                alerts.append(
                    Alert(
                        self.name,
                        f"{kind}_rate",
                        f"{kind} rate {rate:.0%} over the last {len(self.window)} answers (alert at {limit:.0%})",
                        exchange.request_id,
                        exchange.model,
                        {"rate": rate, "window": len(self.window)},
                    )
                )
            (self.alerting.add if high else self.alerting.discard)(kind)
        return alerts

    def rate(self, kind: str) -> float:
        return sum(v == kind for v in self.window) / len(self.window) if self.window else 0.0

    def gauges(self) -> dict[str, float]:
        return {
            "quality_empty_rate": self.rate("empty"),
            "quality_refusal_rate": self.rate("refusal"),
            "quality_last_latency_seconds": self.last_latency,
            "quality_last_tokens_per_second": self.last_tokens_per_s,
        }


def classify_answer(text: str) -> str:
    """`empty`, `refusal` (the stock phrases of the eval's `refusal_rate`, so both count alike) or `ok`."""
    if not text.strip():
        return "empty"
    return "refusal" if is_refusal(text) else "ok"
