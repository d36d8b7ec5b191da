#!/usr/bin/env python3
"""Builds the watermark evaluation's teacher answers from the Python 3.11 documentation's
reStructuredText sources (Debian's `python3.11-doc`, /usr/share/doc/python3.11/html/_sources):
the tutorial, the FAQ and the HOWTOs, cut at section headings into answers of 100 to 400 words
and written as Markdown (inline code in backticks, code blocks fenced), the shape of a coding
assistant's answer. Licence: PSF License Version 2 (documentation text); see data/README.md.

Usage: build-answers.py SOURCES_DIR | gzip -9 > crates/portcullis-watermark/data/answers.jsonl.gz
"""
import json
import os
import re
import sys

root = sys.argv[1]
ROLE = re.compile(r":[a-z:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
LINK = re.compile(r"`([^`<]+?)\s*<[^>]+>`_+")
REF = re.compile(r"`([^`]+)`_+")


def inline(text):
    text = ROLE.sub(lambda m: "`" + m.group(1).strip() + "`", text)
    text = LINK.sub(lambda m: m.group(1), text)
    text = REF.sub(lambda m: m.group(1), text)
    text = text.replace("``", "`")
    text = re.sub(r"\*\*([^*]+)\*\*", r"**\1**", text)
    return text


def sections(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    out, cur, i = [], [], 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"([=\-~^*\"#+])\1{2,}", nxt.strip() or "x") and len(nxt.strip()) >= len(line.strip()) - 2:
            if cur:
                out.append(cur)
            cur = []
            i += 2
            continue
        cur.append(line)
        i += 1
    if cur:
        out.append(cur)
    return out


def render(lines):
    paras, buf = [], []
    for line in lines + [""]:
        if line.strip():
            buf.append(line)
        elif buf:
            paras.append(buf)
            buf = []
    out, code_next = [], False
    for p in paras:
        indented = all(l.startswith((" ", "\t")) for l in p)
        if p[0].lstrip().startswith(".. ") and not code_next:
            code_next = p[0].strip().startswith((".. code-block::", ".. doctest::"))
            continue
        if code_next and indented:
            code = "\n".join(l[4:] if l.startswith("    ") else l.strip() for l in p)
            out.append("```python\n" + code + "\n```")
            code_next = False
            continue
        if p[0].lstrip().startswith(">>>"):
            out.append("```python\n" + "\n".join(l.strip() for l in p) + "\n```")
            continue
        if indented and not p[0].lstrip().startswith(("* ", "- ", "#. ")):
            continue
        text = " ".join(l.strip() for l in p)
        code_next = text.endswith("::")
        if code_next:
            text = text[:-1] if not text.endswith(" ::") else text[:-3] + "."
        text = re.sub(r"^[*-] ", "- ", text)
        out.append(inline(text))
    return "\n\n".join(out).strip()


n = 0
for sub in ("tutorial", "faq", "howto", "library", "reference", "using", "extending"):
    for name in sorted(os.listdir(os.path.join(root, sub))):
        path = os.path.join(root, sub, name)
        for sec in sections(path):
            text = render(sec)
            words = len(text.split())
            if 100 <= words <= 400:
                print(json.dumps({"id": f"{sub}/{name}#{n}", "text": text}))
                n += 1
