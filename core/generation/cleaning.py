"""Items of an answer that are not observations: refusals, apologies, chatter about the answer, the
instructions echoed back and the criterion's own text copied out.

A small or badly steered model answers "I'm sorry, but I cannot write clinical observations…", or wraps
its list in "Sure! Here are five observations:"; a server that ignores JSON mode sends that text through
the line-by-line fallback parser. None of it may become a labelled observation, so each item is checked
here before duplicates are, and a rejected item is kept in `generation_rejects` with its reason.
"""

from __future__ import annotations

import re

from rapidfuzz import fuzz

from core.text import normalise

# Each pattern is matched against the lower-cased item; the first that matches names the reason.
_REFUSAL = [
    r"^(i'?m|i am) (so |very |really )?sorry\b",
    r"^(sorry|apologies)\b",
    r"^unfortunately,? (i|as an?)\b",
    r"^i (apologi[sz]e|regret)\b",
    r"\bi (can ?not|can'?t|won'?t|will not|am unable to|'m unable to|am not able to|'m not able to)"
    r" (write|generate|provide|create|produce|assist|comply|fulfil|fulfill|help with (that|this|your)|do that|make up)\b",
    r"\bi must (decline|refuse)\b",
    r"\b(i'?m|i am) (not (comfortable|allowed|permitted)|unable)\b",
    r"\bagainst (my|openai'?s) (guidelines|policy|policies)\b",
    r"\bnot able to (help|assist|provide|generate|write|create) (with )?(that|this)\b",
]
_AI_TALK = [
    r"\bas an ai\b",
    r"\bas a (large )?language model\b",
    r"\b(i'?m|i am) (just )?an? (ai|language model|assistant)\b",
    r"\bai (language )?model\b",
]
_META = [
    r"^(sure|certainly|of course|absolutely|okay|ok|great|alright|no problem)\s*[!.,:]",
    r"^(sure|certainly|of course|absolutely)\b.*\b(here|observations|examples)\b",
    r"^here (are|is|'s)\b",
    r"^(below|following) (are|is)\b",
    r"^the following (are|is|observations|examples|sentences)\b",
    r"\b(let me know|i hope (this|these)|hope (this|these) helps?|feel free to|happy to help)\b",
    r"^(note|disclaimer|observations?|examples?)\s*:",
    r"\b(these|the above|the following) (observations|examples|sentences)\b",
    r"\b(synthetic|clinical|new) (observations|examples)\b",
    r"\b(criterion|criteria) [a-c]\d\b",
    r"\bdsm-?(5|iv|v)\b",
]
_PATTERNS = [
    ("refusal", [re.compile(p) for p in _REFUSAL]),
    ("meta: AI talk", [re.compile(p) for p in _AI_TALK]),
    ("meta: chatter about the answer", [re.compile(p) for p in _META]),
]
# An item this similar to a sentence of the prompt, or to the label's description, is copied, not written.
COPY_THRESHOLD = 90.0


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?:])\s+|\n+", text)
    return [normalise(p) for p in parts if len(p.split()) >= 4]


class Screen:
    """Checks the items of one cell's answers against what it was asked (its messages and its label)."""

    def __init__(self, messages: list[dict], criterion_texts: list[str]):
        prompt = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") != "assistant")
        self._prompt = normalise(prompt)
        self._prompt_sentences = _sentences(prompt)
        self._criteria = [normalise(t) for t in criterion_texts if t and len(t.split()) >= 3]

    def reason(self, text: str) -> str | None:
        """Why this item is not an observation, or None when it may be one."""
        low = " ".join(text.lower().replace("’", "'").split())
        for reason, patterns in _PATTERNS:
            if any(p.search(low) for p in patterns):
                return reason
        norm = normalise(text)
        for criterion in self._criteria:
            if criterion in norm or fuzz.ratio(norm, criterion) >= COPY_THRESHOLD:
                return "criterion text copied"
        if len(norm) >= 20 and norm in self._prompt:
            return "instructions echoed"
        for sentence in self._prompt_sentences:
            if fuzz.ratio(norm, sentence) >= COPY_THRESHOLD:
                return "instructions echoed"
        return None


def screen_texts(screen: Screen, texts: list[str]) -> tuple[list[str], list[dict]]:
    """(kept texts, rejected [{"text", "reason"}])."""
    kept, rejected = [], []
    for text in texts:
        reason = screen.reason(text)
        if reason:
            rejected.append({"text": text, "reason": reason})
        else:
            kept.append(text)
    return kept, rejected
