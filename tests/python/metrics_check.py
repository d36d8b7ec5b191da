"""Scrapes the gateway's /metrics after the openai client test and parses it with the official
Prometheus Python client's parsers, in both formats: the classic text format and OpenMetrics.
A format either parser rejects fails here, as would a scrape by Prometheus."""

import os
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

ADMIN = os.environ["PORTCULLIS_ADMIN_URL"]
TOKEN = os.environ["PORTCULLIS_ADMIN_TOKEN"]


def scrape(accept):
    request = urllib.request.Request(
        f"{ADMIN}/metrics", headers={"authorization": f"Bearer {TOKEN}", "accept": accept}
    )
    with urllib.request.urlopen(request) as reply:
        return reply.headers["content-type"], reply.read().decode()


def samples(families):
    out = {}
    for family in families:
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            out[key] = s.value
    return out


def total(found, name, **labels):
    return sum(v for (n, l), v in found.items() if n == name and all(dict(l).get(k) == w for k, w in labels.items()))


content_type, text = scrape("text/plain")
assert content_type.startswith("text/plain; version=0.0.4"), content_type
classic = samples(parse_text(text))
content_type, om = scrape("application/openmetrics-text; version=1.0.0")
assert content_type.startswith("application/openmetrics-text"), content_type
open_metrics = samples(parse_openmetrics(om))

for found, fmt in [(classic, "text"), (open_metrics, "openmetrics")]:
    allowed = total(found, "portcullis_requests_total", model="sim-chat", decision="allowed")
    assert allowed >= 5, (fmt, allowed)
    assert total(found, "portcullis_auth_failures_total", reason="invalid_api_key") >= 1, fmt
    assert total(found, "portcullis_tokens_total", tenant="sdk-test", type="output") > 0, fmt
    assert total(found, "gen_ai_client_token_usage_count", gen_ai_request_model="sim-chat") > 0, fmt
    assert total(found, "portcullis_request_duration_seconds_count", model="sim-chat") >= allowed, fmt
print(f"metrics: {len(classic)} samples parsed as Prometheus text, {len(open_metrics)} as OpenMetrics")
