"""Instruction-hijack patterns: text that tries to take over a model rather than answer the task.

Used by the `poison` filter. Each pattern has a name (reported in the quarantine) and targets one known move:

| name                 | what it catches                                                                     |
|----------------------|-------------------------------------------------------------------------------------|
| ignore_instructions  | "ignore / disregard / forget ... previous / above / system ... instructions"        |
| role_override        | "you are now DAN / jailbroken / unrestricted", "developer mode enabled"             |
| system_prompt_leak   | "reveal / print your system prompt", raw chat-template tokens inside a message      |
| exfiltration_url     | markdown images or links whose query string carries data, "send ... to https://..." |
| shell_pipe           | `curl ... | sh`, `wget ... | bash`, `rm -rf /`, encoded PowerShell, eval(base64...) |
| base64_blob          | an unbroken base64 run of 80+ characters mixing cases and digits                    |

A response that matches teaches the model to do it, so the filter removes it. A prompt that matches is often
legitimate (red-team and refusal training data), so the filter only lists it. Known false positives: answers
that legitimately show `curl ... | sh` install lines or embed base64 data; allow-list them or set
`vet.poison.hijack=false`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_GAP = r"[^.\n]{0,40}?"  # a few words on the same line and in the same sentence


@dataclass(frozen=True)
class HijackPattern:
    name: str
    regex: re.Pattern[str]


def _pattern(name: str, *alternatives: str) -> HijackPattern:
    return HijackPattern(name, re.compile("|".join(f"(?:{a})" for a in alternatives), re.IGNORECASE))


HIJACK_PATTERNS: tuple[HijackPattern, ...] = (
    _pattern(
        "ignore_instructions",
        rf"\b(?:ignore|disregard|forget|override|bypass)\b{_GAP}\b(?:previous|prior|above|earlier|preceding|"
        rf"all|any|your|system|original)\b{_GAP}\b(?:instructions?|prompts?|rules|directions|guidelines|directives)\b",
    ),
    _pattern(
        "role_override",
        rf"\byou are now\b{_GAP}\b(?:DAN|jailbroken|unrestricted|unfiltered|uncensored|in developer mode|"
        rf"no longer bound|free (?:from|of) (?:all|any)|without (?:any )?(?:rules|restrictions|limits|filters))",
        rf"\b(?:act as|pretend to be|roleplay as)\b{_GAP}\b(?:DAN|jailbroken|unrestricted|unfiltered|uncensored)\b",
        r"\bdeveloper mode\s+(?:enabled|activated|on)\b",
    ),
    _pattern(
        "system_prompt_leak",
        rf"\b(?:reveal|print|repeat|show|output|leak|dump|tell me)\b{_GAP}\b(?:system prompt|"
        r"(?:initial|hidden|secret|original) (?:prompt|instructions))\b",
        r"\bmy (?:system prompt|hidden instructions) (?:is|are|says?)\b",
        r"<\|im_start\|>|<\|system\|>|<<SYS>>|<\|start_header_id\|>|\[/?INST\]",
    ),
    _pattern(
        "exfiltration_url",
        r"!\[[^\]]*\]\(\s*https?://[^)\s]+\?[^)\s]*=",
        r"\b(?:send|post|upload|forward|exfiltrate|transmit)\b[^.\n]{0,60}?\b(?:to|at)\s+https?://",
        r"https?://\S+[?&][\w-]*=\s*(?:\{|\$\{|%7B)",
    ),
    _pattern(
        "shell_pipe",
        r"\b(?:curl|wget)\b[^\n|;]{0,200}\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b",
        r"\brm\s+-rf\s+(?:/|~)(?:\s|$|\*)",
        r"\bpowershell(?:\.exe)?\b[^\n]{0,40}\s-e(?:nc|ncodedcommand)?\s+[A-Za-z0-9+/=]{20,}",
        r"\b(?:eval|exec)\s*\(\s*(?:base64|atob|b64decode|base64\.b64decode)",
    ),
    _pattern("base64_blob", r"(?<![A-Za-z0-9+/])(?=[A-Za-z0-9+/]*\d)(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[A-Z])"
             r"[A-Za-z0-9+/]{80,}={0,2}(?![A-Za-z0-9+/=])"),
)


def find_hijack(text: str) -> tuple[str, str] | None:
    """(pattern name, matched text) of the first pattern found in `text`, or None."""
    for pattern in HIJACK_PATTERNS:
        match = pattern.regex.search(text)
        if match:
            return pattern.name, match.group(0)[:120]
    return None
