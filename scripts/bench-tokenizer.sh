#!/usr/bin/env bash
# Tokenizer throughput: the gateway's counter (bpe-openai) against the `tiktoken` Python
# package, on the same text (the benign dev corpus, about 1 MB), one thread each, best of 5.
# tiktoken's vocabulary files are taken from the tiktoken-rs crate's assets (MIT), placed
# where tiktoken caches downloads, so nothing is fetched from OpenAI.
#
#   bash scripts/bench-tokenizer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=data/corpora/dev/benign.jsonl
venv="${PORTCULLIS_BENCH_VENV:-$HOME/.cache/portcullis/tiktoken-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q 'tiktoken==0.14.0'

cargo fetch --quiet
assets=$(cargo metadata --format-version 1 --quiet | python3 -c '
import json, sys, os
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "tiktoken-rs":
        print(os.path.join(os.path.dirname(p["manifest_path"]), "assets"))
        break')
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
for name in o200k_base cl100k_base; do
  url="https://openaipublic.blob.core.windows.net/encodings/$name.tiktoken"
  cp "$assets/$name.tiktoken" "$cache/$(printf %s "$url" | sha1sum | cut -d' ' -f1)"
done

cargo run --release --quiet -p portcullis-openai --example tokenizer_throughput -- "$corpus" | tee "$cache/rust.jsonl"
TIKTOKEN_CACHE_DIR="$cache" "$venv/bin/python" - "$corpus" <<'PY' | tee "$cache/python.jsonl"
import json, sys, time
import tiktoken
text = "\n".join(json.loads(l)["text"] for l in open(sys.argv[1]) if l.strip())
data = text.encode()
for name in ("o200k_base", "cl100k_base"):
    enc = tiktoken.get_encoding(name)
    enc.encode_ordinary("warm up")
    best, tokens = float("inf"), 0
    for _ in range(5):
        start = time.perf_counter()
        tokens = len(enc.encode_ordinary(text))
        best = min(best, time.perf_counter() - start)
    print(json.dumps({"implementation": f"tiktoken {tiktoken.__version__}", "encoding": name,
                      "bytes": len(data), "tokens": tokens, "mb_per_s": round(len(data) / best / 1e6, 1)}))
PY
python3 - "$cache/rust.jsonl" "$cache/python.jsonl" <<'PY'
import json, sys
rust = {r["encoding"]: r for r in map(json.loads, open(sys.argv[1]))}
py = {r["encoding"]: r for r in map(json.loads, open(sys.argv[2]))}
for name in rust:
    same = "same token count" if rust[name]["tokens"] == py[name]["tokens"] else "TOKEN COUNTS DIFFER"
    print(f"{name}: portcullis {rust[name]['mb_per_s']} MB/s, tiktoken {py[name]['mb_per_s']} MB/s, "
          f"ratio {rust[name]['mb_per_s'] / py[name]['mb_per_s']:.2f} ({same})")
PY
