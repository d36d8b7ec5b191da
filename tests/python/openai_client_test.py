"""The official `openai` package against the gateway, with nothing changed but base_url and
api_key. Run by scripts/openai-client-test.sh, which starts the simulator and the gateway.

Prints one line per check and a closing 'N passed, N failed' line; exits non-zero on failure.
"""

import json
import os
import sys
import traceback
import urllib.request

import openai
from openai import OpenAI

BASE_URL = os.environ["PORTCULLIS_BASE_URL"]
SIM_URL = os.environ["PORTCULLIS_SIM_URL"]
client = OpenAI(base_url=BASE_URL, api_key=os.environ["PORTCULLIS_API_KEY"], max_retries=0, timeout=20)
MESSAGES = [{"role": "user", "content": "Say hello through the gateway."}]


def set_sim_options(options):
    request = urllib.request.Request(
        f"{SIM_URL}/_sim/options",
        data=json.dumps(options).encode(),
        method="PUT",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5).read()


def chat_completion():
    reply = client.chat.completions.create(model="sim-chat", messages=MESSAGES, max_tokens=8)
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content.strip(), reply
    assert reply.usage.completion_tokens == 8, reply.usage


def chat_completion_stream():
    stream = client.chat.completions.create(
        model="sim-chat",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, chunks = "", None, 0
    for chunk in stream:
        chunks += 1
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage:
            usage = chunk.usage
    assert chunks > 3, chunks
    assert len(text.split()) == 16, text
    assert usage is not None and usage.completion_tokens == 16, usage


def legacy_completion():
    reply = client.completions.create(model="sim-chat", prompt="Once upon a time", max_tokens=4)
    assert reply.choices[0].text.strip(), reply


def embeddings():
    reply = client.embeddings.create(model="sim-embed", input=["first text", "second text"])
    assert len(reply.data) == 2
    assert len(reply.data[0].embedding) == 8
    assert reply.data[0].embedding != reply.data[1].embedding


def model_list():
    ids = sorted(m.id for m in client.models.list())
    assert ids == ["sim-chat", "sim-embed"], ids


def unknown_model_is_not_found():
    try:
        client.chat.completions.create(model="gpt-imaginary", messages=MESSAGES)
    except openai.NotFoundError as e:
        assert e.code == "model_not_found", e.body
        assert e.response.headers.get("x-request-id")
        return
    raise AssertionError("expected NotFoundError")


def short_lived_token_works_as_api_key():
    request = urllib.request.Request(
        f"{BASE_URL}/auth/token",
        data=json.dumps({"expires_in": 300}).encode(),
        method="POST",
        headers={
            "content-type": "application/json",
            "authorization": f"Bearer {os.environ['PORTCULLIS_API_KEY']}",
        },
    )
    token = json.load(urllib.request.urlopen(request, timeout=5))["access_token"]
    with_token = OpenAI(base_url=BASE_URL, api_key=token, max_retries=0, timeout=20)
    reply = with_token.chat.completions.create(model="sim-chat", messages=MESSAGES, max_tokens=4)
    assert reply.choices[0].message.content.strip(), reply


def invalid_key_is_an_authentication_error():
    bad = OpenAI(base_url=BASE_URL, api_key="pc_live_not_a_real_key", max_retries=0)
    try:
        bad.chat.completions.create(model="sim-chat", messages=MESSAGES)
    except openai.AuthenticationError as e:
        assert e.code == "invalid_api_key", e.body
        return
    raise AssertionError("expected AuthenticationError")


def upstream_failure_is_an_api_error():
    set_sim_options({"fault": {"kind": "status", "status": 500}})
    try:
        client.chat.completions.create(model="sim-chat", messages=MESSAGES)
    except openai.APIStatusError as e:
        assert e.status_code == 502, e.status_code
        assert "CUDA" not in str(e.body), e.body
    else:
        raise AssertionError("expected a 502")
    finally:
        set_sim_options({})


def broken_stream_raises_an_api_error():
    set_sim_options({"fault": {"kind": "reset_mid_stream", "after_chunks": 3}})
    received = 0
    try:
        for chunk in client.chat.completions.create(model="sim-chat", messages=MESSAGES, stream=True):
            received += 1
    except openai.APIError as e:
        assert received >= 3, received
        assert "invalid response" in e.message, e.message
    else:
        raise AssertionError("expected the SDK to raise on the error event")
    finally:
        set_sim_options({})


def stream_without_usage_option_has_no_usage_chunk():
    # The gateway asks the upstream for usage (to account for it) and removes it again.
    chunks = list(client.chat.completions.create(model="sim-chat", messages=MESSAGES, stream=True))
    assert all(c.usage is None for c in chunks), chunks[-1]
    assert all(c.choices for c in chunks), "an empty usage-only chunk reached the caller"


def rate_limit_headers_and_429():
    tight = OpenAI(base_url=BASE_URL, api_key=os.environ["PORTCULLIS_TIGHT_KEY"], max_retries=0, timeout=20)
    raw = tight.chat.completions.with_raw_response.create(model="sim-chat", messages=MESSAGES, max_tokens=4)
    assert raw.headers["x-ratelimit-limit-requests"] == "1", raw.headers
    assert raw.headers["x-ratelimit-remaining-requests"] == "0", raw.headers
    assert raw.headers["x-ratelimit-limit-tokens"], raw.headers
    assert raw.parse().choices[0].message.content
    try:
        tight.chat.completions.create(model="sim-chat", messages=MESSAGES, max_tokens=4)
    except openai.RateLimitError as e:
        assert e.status_code == 429
        assert e.code == "rate_limit_exceeded", e.code
        assert int(e.response.headers["retry-after"]) > 0
        assert int(e.response.headers["retry-after-ms"]) > 0
    else:
        raise AssertionError("expected RateLimitError")


def spent_quota_is_not_retried():
    sent = []
    http_client = openai.DefaultHttpx2Client(event_hooks={"request": [lambda request: sent.append(request.url)]})
    metered = OpenAI(base_url=BASE_URL, api_key=os.environ["PORTCULLIS_METERED_KEY"], max_retries=3,
                     timeout=20, http_client=http_client)
    try:
        for _ in range(10):
            metered.chat.completions.create(model="sim-chat", messages=MESSAGES, max_tokens=8)
    except openai.RateLimitError as e:
        assert e.code == "insufficient_quota", e.code
        assert e.response.headers["x-should-retry"] == "false"
    else:
        raise AssertionError("expected the quota to run out")
    before = len(sent)
    try:
        metered.chat.completions.create(model="sim-chat", messages=MESSAGES, max_tokens=8)
    except openai.RateLimitError:
        pass
    # max_retries=3, yet exactly one request went out: x-should-retry: false was obeyed.
    assert len(sent) - before == 1, len(sent) - before


def responses_create():
    reply = client.responses.create(model="sim-chat", input="Say hello through the gateway.", max_output_tokens=8)
    assert reply.output_text.strip(), reply
    assert reply.usage.output_tokens == 8, reply.usage


def responses_stream():
    text, completed, names = "", None, set()
    for event in client.responses.create(model="sim-chat", input="Say hello.", instructions="Be brief.",
                                         stream=True):
        names.add(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        elif event.type == "response.completed":
            completed = event.response
    assert len(text.split()) == 16, text
    assert completed is not None, names
    assert completed.output_text == text, completed
    assert completed.usage.output_tokens == 16, completed.usage


def responses_are_redacted_whole_and_streamed():
    set_sim_options({"reply": "Mail jane.doe@example.com about it.", "chunk_chars": 3})
    try:
        reply = client.responses.create(model="sim-chat", input="Who do I mail?")
        assert reply.output_text == "Mail [REDACTED:EMAIL] about it.", reply.output_text
        streamed = "".join(e.delta for e in client.responses.create(model="sim-chat", input="Who?", stream=True)
                           if e.type == "response.output_text.delta")
        assert streamed == "Mail [REDACTED:EMAIL] about it.", streamed
    finally:
        set_sim_options({})


def responses_broken_stream_raises_an_api_error():
    set_sim_options({"fault": {"kind": "reset_mid_stream", "after_chunks": 3}})
    try:
        for _ in client.responses.create(model="sim-chat", input="Say hello.", stream=True):
            pass
    except openai.APIError as e:
        assert "invalid response" in e.message, e.message
    else:
        raise AssertionError("expected the SDK to raise on the error event")
    finally:
        set_sim_options({})


CHECKS = [
    stream_without_usage_option_has_no_usage_chunk,
    rate_limit_headers_and_429,
    spent_quota_is_not_retried,
    chat_completion,
    chat_completion_stream,
    legacy_completion,
    embeddings,
    model_list,
    unknown_model_is_not_found,
    short_lived_token_works_as_api_key,
    invalid_key_is_an_authentication_error,
    upstream_failure_is_an_api_error,
    broken_stream_raises_an_api_error,
    responses_create,
    responses_stream,
    responses_are_redacted_whole_and_streamed,
    responses_broken_stream_raises_an_api_error,
]

if __name__ == "__main__":
    passed = failed = 0
    for check in CHECKS:
        try:
            check()
            passed += 1
            print(f"ok      {check.__name__}")
        except Exception:
            failed += 1
            print(f"FAILED  {check.__name__}")
            traceback.print_exc()
    print(f"openai: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
