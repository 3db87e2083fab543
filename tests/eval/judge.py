"""A scripted judge for ragas' prompts, served by tests.helpers.openai_server.OpenAIStub on 127.0.0.1.

ragas (0.4.3) sends each metric's instruction, a JSON schema, examples, then `input: {...}` and `Output:`. The reply
below recognises the prompt by its instruction and answers with valid JSON built from that input. A prompt whose
input contains FAIL_MARK gets junk, so the test controls exactly which rows the judge fails. Chat prompts (listings
between <listings> tags) get an answer citing the first listing.
"""

from __future__ import annotations

import json
import re

FAIL_MARK = "zzfailzz"
_INPUT = re.compile(r"input: (\{.*\})\s*Output:\s*$", re.S)
_LISTING = re.compile(r'<listing id="([^"]+)">')


def _input(prompt: str) -> dict:
    match = _INPUT.search(prompt)
    return json.loads(match.group(1)) if match else {}


def reply(messages: list[dict]) -> str:
    prompt = messages[-1]["content"]
    if "<listings>" in prompt or "<listing id=" in prompt:  # the chat pipeline's answer request
        ids = _LISTING.findall("\n".join(m["content"] for m in messages))
        return f"The best match is [{ids[0]}]." if ids else "No listing fits."
    if FAIL_MARK in prompt:
        return "I am not JSON at all"
    data = _input(prompt)
    if "Break down each sentence" in prompt:
        return json.dumps({"statements": [data.get("answer", "") or "empty"]})
    if "judge the faithfulness of a series of statements" in prompt:
        return json.dumps({"statements": [{"statement": s, "reason": "stated in the context", "verdict": 1} for s in data.get("statements", [])]})
    if "Generate a question for the given answer" in prompt:
        return json.dumps({"question": "which job fits me", "noncommittal": 0})
    if "verify if the context was useful" in prompt:
        return json.dumps({"reason": "it names the job", "verdict": 1})
    if "classify if the sentence can be attributed" in prompt:
        return json.dumps({"classifications": [{"statement": data.get("answer", "x"), "reason": "in context", "attributed": 1}]})
    if "Fix the output string" in prompt:
        return "still not JSON"
    return "unrecognised prompt"
