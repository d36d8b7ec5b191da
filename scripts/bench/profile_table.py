"""Turns the perf reports of scripts/bench/profile.sh into CPU microseconds per request: the
request path's stages (inclusive share of the function that does each) and components (self
time grouped by crate), scaled by the CPU per request measured without the profiler."""

import json
import re
import sys

work = sys.argv[1]
u0, s0, u1, s1, hz = map(int, sys.argv[2:7])
measured = json.load(open(f"{work}/measured.json"))
requests = measured["requests"]
user_us = (u1 - u0) / hz * 1e6 / requests
sys_us = (s1 - s0) / hz * 1e6 / requests
total_us = user_us + sys_us

line = re.compile(r"^\s+([\d.]+)%\s+([\d.]+)%\s+\[.\]\s+(.*?)(\s+-\s+-)?\s*$")
inclusive = {}
for raw in open(f"{work}/children.txt", errors="replace"):
    m = line.match(raw)
    if m:
        name = m.group(3)
        inclusive[name] = max(inclusive.get(name, 0.0), float(m.group(1)))


def share(*patterns):
    """Largest inclusive share among symbols matching any pattern (a stage's entry point)."""
    best = 0.0
    for name, pct in inclusive.items():
        if any(re.search(p, name) for p in patterns):
            best = max(best, pct)
    return best


# A stage's functions, as they appear in the symbols: each pattern's largest match is one
# entry of the stage (nested calls are inside it), and a stage is the sum of its entries.
stages = [
    ("authentication (key lookup, hash check)", [r"^portcullis_gateway::policy::authn::authenticate$"]),
    ("request parse (strict JSON, request model)", [r"^portcullis_openai::request::InferenceRequest::parse$"]),
    ("schema and per-plan bounds", [r"^portcullis_gateway::policy::bounds::check$"]),
    ("input screening (normalise, decode, rules, classifier)", [r"^portcullis_guard::detector::prepare$", r"^portcullis_guard::detector::Detector::scan_prepared$"]),
    ("token counting", [r"^portcullis_openai::tokens::Encoding::count(_content|_inputs|_json)?$"]),
    ("admission (limits, reservation)", [r"^portcullis_limits::limiter::Limiter::checks$", r"^<portcullis_limits::backend::memory::MemoryBackend as .*>::admit$"]),
    ("upstream call (client, write, read; kernel included)", [r"^portcullis_gateway::pipeline::forward::\{\{closure\}\}$"]),
    ("response filtering (prune, redact, leak checks)", [r"^portcullis_gateway::filters::Chain::end"]),
    ("accounting (settlement)", [r"^portcullis_limits::limiter::Reservation::(finish|settle)"]),
    ("telemetry on the path (record, metrics, alerts)", [r"^portcullis_telemetry::Telemetry::finish$", r"^portcullis_gateway::pipeline::record::arrived$"]),
    ("audit trail writer (off the path, same core)", [r"^portcullis_telemetry::audit::write_loop"]),
    ("socket writes (kernel, both sides)", [r"^__GI___writev$", r"^do_writev$"]),
    ("socket reads (kernel, both sides)", [r"^__libc_recv$", r"^__GI___libc_recvfrom$", r"^__sys_recvfrom$"]),
]

print(f"CPU per request: {total_us:.1f} us ({user_us:.1f} user, {sys_us:.1f} kernel), "
      f"{measured['requests_per_s']:.0f} req/s saturated, one worker on one core")
print()
print(f"{'stage':55} {'share':>7} {'us/request':>11}")
for label, patterns in stages:
    pct = sum(share(p) for p in patterns)
    if label.startswith("socket"):
        # The same system call seen at two levels (libc and kernel entry): not a sum.
        pct = max(share(p) for p in patterns)
    print(f"{label:55} {pct:6.1f}% {pct / 100 * total_us:10.2f}")

# Self time by component.
self_line = re.compile(r"^\s+([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*?)(\s+-\s+-)?\s*$")
groups = [
    ("kernel", lambda dso, sym: dso.startswith("[kernel")),
    ("allocator (mimalloc)", lambda dso, sym: sym.startswith(("mi_", "_mi_"))),
    ("memcpy/memcmp (libc)", lambda dso, sym: "libc" in dso),
    ("input guard (portcullis_guard)", lambda dso, sym: "portcullis_guard" in sym or "regex_automata" in sym or sym.startswith("regex::")),
    ("tokenizer (bpe, pieces)", lambda dso, sym: sym.startswith("bpe") or "portcullis_openai::tokens" in sym),
    ("JSON (serde_json)", lambda dso, sym: "serde_json" in sym or "serde_core" in sym),
    ("HTTP (hyper, http, headers)", lambda dso, sym: sym.startswith(("hyper", "<hyper", "http::", "<http", "httparse", "h2", "bytes::", "<bytes"))),
    ("async runtime (tokio, mio)", lambda dso, sym: "tokio" in sym or "mio::" in sym),
    ("telemetry (portcullis_telemetry)", lambda dso, sym: "portcullis_telemetry" in sym or "prometheus" in sym or "opentelemetry" in sym),
    ("hashing (sha2, siphash)", lambda dso, sym: "sha2" in sym or "sip::" in sym or "hmac" in sym),
    ("other gateway code (portcullis_*)", lambda dso, sym: "portcullis" in sym),
    ("vdso (clock reads)", lambda dso, sym: "vdso" in dso),
]
totals = {label: 0.0 for label, _ in groups}
totals["other"] = 0.0
for raw in open(f"{work}/self.txt", errors="replace"):
    m = self_line.match(raw)
    if not m:
        continue
    pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
    for label, test in groups:
        if test(dso, sym):
            totals[label] += pct
            break
    else:
        totals["other"] += pct
print()
print(f"{'component (self time)':55} {'share':>7} {'us/request':>11}")
for label, pct in sorted(totals.items(), key=lambda kv: -kv[1]):
    print(f"{label:55} {pct:6.1f}% {pct / 100 * total_us:10.2f}")
