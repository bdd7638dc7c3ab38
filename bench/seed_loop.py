"""The seed guide's sequential cascade (classify, answer, escalate on short answers), as written there.

Used by the latency benchmark as the "before" figure: one query at a time.

    python bench/seed_loop.py BASE_URL INPUT.jsonl
"""

from __future__ import annotations

import json
import sys

from openai import OpenAI

TIERS = {"simple": "Qwen3.5-0.8B", "moderate": "Qwen3.6-35B-A3B-FP8", "complex": "Mistral-Medium-3.5-128B"}
CLASSIFIER_SYSTEM = "Classify the complexity of the user's question with exactly one word: simple, moderate, or complex."

client = OpenAI(base_url=sys.argv[1], api_key="bench", max_retries=0)


def classify(query: str) -> str:
    resp = client.chat.completions.create(
        model="Qwen3.5-0.8B",
        messages=[{"role": "system", "content": CLASSIFIER_SYSTEM}, {"role": "user", "content": query}],
        temperature=0.0, max_tokens=5)
    label = (resp.choices[0].message.content or "").strip().lower()
    return label if label in TIERS else "moderate"


def answer(query: str, model: str) -> str:
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": query}],
                                          temperature=0.7)
    return resp.choices[0].message.content or ""


def cascade_with_escalation(query: str, min_words: int = 20) -> dict[str, str]:
    tier = classify(query)
    model = TIERS[tier]
    text = answer(query, model)
    tiers = list(TIERS.keys())
    current_idx = tiers.index(tier)
    while len(text.split()) < min_words and current_idx < len(tiers) - 1:
        current_idx += 1
        tier = tiers[current_idx]
        model = TIERS[tier]
        text = answer(query, model)
    return {"tier": tier, "model": model, "answer": text}


with open(sys.argv[2]) as fh:
    for line in fh:
        cascade_with_escalation(json.loads(line)["query"])
