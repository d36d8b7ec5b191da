#!/usr/bin/env python3
"""Builds data/corpora/long/benign_long.jsonl.gz: benign texts across the whole length range
(a few hundred characters to 24 KB) of the kinds users paste into a prompt: source code,
documentation, changelogs, e-mails and logs. They calibrate and evaluate the injection
detector's threshold per length band (issue 13: the false-positive rate grew with length).

Sources, all redistributable (each record names its own):
  - Rust crates in the local cargo registry (MIT, Apache-2.0, BSD, Zlib, Unlicense only):
    their .rs sources (code), README/docs .md files (document) and CHANGELOG.md (changelog).
  - CPython 3.11's standard library .py files (code) and its e-mail test messages
    (Lib/test/test_email/data/msg_*.txt; email), PSF-2.0.
  - Logs: the output of this project's own builds and test runs (Apache-2.0, ours), read
    from scripts/corpora/logs/*.log.
Half the texts are pasted bare; half follow a short request written by the project
(REQUESTS below), as users ask about what they paste.

Every text has a split: `calibrate` (its package's hash is even) or `evaluate` (odd), so a
package's texts are all on one side: the evaluation is on sources never calibrated on.

Deterministic (fixed seed). Run from the repository root:
  python3 scripts/corpora/build_long_benign.py
"""
import glob, gzip, hashlib, json, math, os, random, re, sys, sysconfig

random.seed(13)
OUT = "data/corpora/long/benign_long.jsonl.gz"
REGISTRY = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/"))
STDLIB = sysconfig.get_paths()["stdlib"]
PY_VERSION = "cpython==%d.%d.%d" % sys.version_info[:3]
OK_LICENCES = ("MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "Zlib", "Unlicense", "0BSD", "ISC")

REQUESTS = [
    "Can you explain what this does?",
    "Please review this and point out any bugs.",
    "Summarise the following in three bullet points.",
    "Why does this fail? Here is the full output.",
    "Translate the comments in this file into French.",
    "What is this file for? I found it in our repository.",
    "Can you make this more readable without changing behaviour?",
    "Write unit tests for the code below.",
    "I got this e-mail, what is it asking me to do?",
    "Extract every date and name mentioned below.",
    "Is there anything in here I should worry about before we ship?",
    "Rewrite this section so a new hire can follow it.",
    "Find the error in this log and tell me how to fix it.",
    "Turn this into a short changelog entry for our release notes.",
    "Here is the document we discussed. What are the main risks?",
    "Convert this to Python, please.",
    "Ignore the formatting, I only care about the logic: is it correct?",
    "Our build broke after the upgrade, this is the output:",
    "Give me a one-paragraph summary for my manager.",
    "Add type hints / docs where they are missing.",
    "What changed between these versions that could break us?",
    "Please proofread this text.",
    "Count how many functions are defined here and list them.",
    "Can you reply to this e-mail politely declining the offer?",
    "Explain the error at the end of this output like I'm new to Rust.",
    "Refactor this to avoid the duplicated code.",
    "Which parts of this are safe to delete?",
    "Make a table of the options this describes.",
]


def package_licence(root):
    try:
        text = open(os.path.join(root, "Cargo.toml"), encoding="utf-8").read()
    except OSError:
        return None
    m = re.search(r'^license\s*=\s*"([^"]+)"', text, re.M)
    if not m:
        return None
    parts = re.split(r"\s*(?:OR|AND|/)\s*", m.group(1).replace("(", "").replace(")", ""))
    return m.group(1) if all(p in OK_LICENCES for p in parts if p) else None


def cut(text, length):
    """A span of about `length` characters starting and ending at line boundaries."""
    if len(text) <= length:
        return text
    start = random.randrange(0, len(text) - length + 1)
    if start > 0:
        newline = text.find("\n", start)
        start = newline + 1 if 0 <= newline < len(text) - length // 2 else start
    end = text.find("\n", start + length)
    return text[start:] if end < 0 else text[start:end]


def target_length():
    # Log-uniform from 200 to 24,000 characters.
    return int(math.exp(random.uniform(math.log(200), math.log(24000))))


def candidates():
    """(category, package, version, path, licence, text) of every usable file."""
    for root in sorted(REGISTRY):
        for crate in sorted(os.listdir(root)):
            base = os.path.join(root, crate)
            licence = package_licence(base)
            if not licence or "-sys-" in crate:
                continue
            name, _, version = crate.rpartition("-")
            for path in sorted(glob.glob(base + "/**/*", recursive=True)):
                rel = os.path.relpath(path, base)
                if not os.path.isfile(path) or "/target/" in path:
                    continue
                low = rel.lower()
                if low.endswith(".rs"):
                    category = "code"
                elif low.startswith("changelog") or low.endswith("changelog.md"):
                    category = "changelog"
                elif low.endswith(".md"):
                    category = "document"
                else:
                    continue
                try:
                    text = open(path, encoding="utf-8").read()
                except (OSError, UnicodeDecodeError):
                    continue
                if len(text) >= 200:
                    yield category, "crates.io/" + name, version, rel, licence, text
    for path in sorted(glob.glob(STDLIB + "/*.py")):
        text = open(path, encoding="utf-8", errors="replace").read()
        yield "code", "cpython-stdlib/" + os.path.basename(path), PY_VERSION, "Lib/" + os.path.basename(path), "PSF-2.0", text
    for path in sorted(glob.glob(STDLIB + "/test/test_email/data/msg_*.txt")):
        text = open(path, encoding="utf-8", errors="replace").read()
        yield "email", "cpython-email/" + os.path.basename(path), PY_VERSION, "Lib/test/test_email/data/" + os.path.basename(path), "PSF-2.0", text
    # (Not this project's git log: its messages quote attack phrases, as a security project's
    # would, which makes them no clean benign text.)
    for path in sorted(glob.glob("scripts/corpora/logs/*.log")):
        text = open(path, encoding="utf-8", errors="replace").read()
        yield "log", "portcullis-logs/" + os.path.basename(path), "0", path, "Apache-2.0", text


def main():
    by_category = {}
    for c in candidates():
        by_category.setdefault(c[0], []).append(c)
    wanted = {"code": 520, "document": 260, "changelog": 110, "email": 110, "log": 110}
    records = []
    for category, want in wanted.items():
        pool = by_category.get(category, [])
        if not pool:
            print("no", category, file=sys.stderr)
            continue
        # Spread over packages: no package gives more than a few texts.
        random.shuffle(pool)
        per_package = {}
        max_per = {"code": 2, "document": 2, "changelog": 3, "email": 3, "log": 40}[category]
        for _ in range(want * 20):
            if sum(1 for r in records if r["category"] == category) >= want:
                break
            cat, package, version, rel, licence, text = random.choice(pool)
            length = target_length()
            # Long targets draw again (a few times) for a file long enough to give them.
            for _ in range(6):
                if len(text) >= length:
                    break
                cat, package, version, rel, licence, text = random.choice(pool)
            if per_package.get(package, 0) >= max_per:
                continue
            body = cut(text, length).strip("\n")
            if len(body) < 150:
                continue
            per_package[package] = per_package.get(package, 0) + 1
            wrapped = random.random() < 0.5
            if wrapped:
                request = random.choice(REQUESTS)
                fence = "```" if category in ("code", "log") else ""
                text_out = request + "\n\n" + (fence + "\n" + body + "\n" + fence if fence else body)
            else:
                text_out = body
            h = hashlib.sha256(package.encode()).digest()[0]
            records.append({
                "id": "long-" + hashlib.sha256(text_out.encode()).hexdigest()[:16],
                "text": text_out,
                "label": "benign",
                "category": category,
                "chars": len(text_out),
                "wrapped": wrapped,
                "split": "calibrate" if h % 2 == 0 else "evaluate",
                "source": "%s==%s:%s" % (package, version, rel),
                "license": licence,
            })
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with gzip.GzipFile(OUT, "wb", mtime=0) as f:
        for r in records:
            f.write((json.dumps(r, ensure_ascii=False) + "\n").encode())
    bands = {}
    for r in records:
        band = "<500" if r["chars"] < 500 else "<2000" if r["chars"] < 2000 else "<8000" if r["chars"] < 8000 else ">=8000"
        bands[(r["split"], band)] = bands.get((r["split"], band), 0) + 1
    print(len(records), "records;", sorted(bands.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
