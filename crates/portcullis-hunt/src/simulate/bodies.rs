//! What each simulated request says: its body, where it comes from, and the size of its
//! answer.

use super::schedule::lognormal;
use super::vocab::*;
use super::{CampaignKind, Class, Infra, SimAccount};
use serde_json::{json, Value};

pub struct SimRequest {
    pub ip: String,
    pub user_agent: String,
    pub endpoint: &'static str,
    pub body: Value,
    pub response: Value,
}

/// What stays the same across an account's requests.
struct Traits {
    areas: [usize; 2],
    cot: f64,
    single_turn: f64,
    max_tokens: Option<u64>,
    answer_median: f64,
    template: usize,
    ip: [u8; 3],
    user_agent: String,
}

const BROWSER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
];
const SDK_AGENTS: &[&str] = &[
    "OpenAI/Python 1.54.3",
    "OpenAI/Python 1.40.0",
    "OpenAI/JS 4.73.0",
    "OpenAI/Go 0.1.0",
    "langchain-openai/0.2.9",
    "python-requests/2.32.3",
];

fn traits(a: &SimAccount) -> Traits {
    let mut r = fastrand::Rng::with_seed(a.seed ^ 0x7a17);
    let areas = [r.usize(..areas()), r.usize(..areas())];
    let browser = BROWSER_AGENTS[r.usize(..BROWSER_AGENTS.len())].to_string();
    let sdk = SDK_AGENTS[r.usize(..SDK_AGENTS.len())].to_string();
    // Cloud prefixes are few and shared by many backends.
    let cloud = [34, 35, 52, 54, 3, 18][r.usize(..6)];
    let residential = [r.u8(1..=223), r.u8(..), r.u8(..)];
    let cloud_ip = [cloud, r.u8(..8), r.u8(..4)];
    let (cot, single_turn, max_tokens, answer_median, ip, user_agent) = match a.class {
        Class::Chat => (
            r.f64() * 0.2,
            0.5,
            [None, None, None, Some(1024), Some(4096)][r.usize(..5)],
            250.0,
            residential,
            if r.bool() { browser } else { sdk },
        ),
        // Students ask for worked reasoning and long answers, in a few subjects, and follow
        // up about half the time.
        Class::Student => (
            0.35 + r.f64() * 0.25,
            0.55,
            [None, Some(4096)][r.usize(..2)],
            550.0,
            residential,
            browser,
        ),
        Class::Occasional => (0.1, 0.9, None, 200.0, residential, browser),
        _ => (0.05, 0.6, None, 250.0, cloud_ip, sdk),
    };
    Traits {
        areas,
        cot,
        single_turn,
        max_tokens,
        answer_median,
        template: r.usize(..4),
        ip,
        user_agent,
    }
}

/// The n-th request of account `a` in a simulation seeded `seed`.
pub fn request(a: &SimAccount, n: u32, seed: u64) -> SimRequest {
    let t = traits(a);
    let mut r = fastrand::Rng::with_seed(
        seed ^ a.seed ^ (u64::from(n) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let ip = format!("{}.{}.{}.{}", t.ip[0], t.ip[1], t.ip[2], r.u8(1..255));
    let mut req = match a.class {
        Class::Chat | Class::Student | Class::Occasional => chat(&mut r, &t, n),
        Class::Reseller => reseller(&mut r),
        Class::AppBackend => app_backend(&mut r, &t),
        Class::CodingAgent => coding_agent(&mut r, n),
        Class::EvalHarness => eval_harness(&mut r, a, n),
        Class::RagPipeline => rag(&mut r, &t),
        Class::Campaign(kind) => campaign(&mut r, a, kind),
    };
    if req.ip.is_empty() {
        req.ip = ip;
    }
    if req.user_agent.is_empty() {
        req.user_agent = t.user_agent;
    }
    req
}

fn pick<'a>(r: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[r.usize(..items.len())]
}

fn subject(r: &mut fastrand::Rng, area: usize) -> &'static str {
    pick(r, SUBJECTS[area % SUBJECTS.len()])
}

fn any_subject(r: &mut fastrand::Rng) -> &'static str {
    let area = r.usize(..areas());
    subject(r, area)
}

fn filler(r: &mut fastrand::Rng, words: usize) -> String {
    (0..words)
        .map(|_| pick(r, FILLER))
        .collect::<Vec<_>>()
        .join(" ")
}

fn answer(tokens: f64, text: &str) -> Value {
    let tokens = tokens.max(1.0).round() as u64;
    json!({
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"completion_tokens": tokens}
    })
}

fn chat_body(messages: Vec<Value>, max_tokens: Option<u64>, temperature: Option<f64>) -> Value {
    let mut body = json!({"model": "gpt-sim", "messages": messages});
    if let Some(m) = max_tokens {
        body["max_tokens"] = json!(m);
    }
    if let Some(t) = temperature {
        body["temperature"] = json!(t);
    }
    body
}

fn chat(r: &mut fastrand::Rng, t: &Traits, _n: u32) -> SimRequest {
    let area = if r.f64() < 0.85 {
        t.areas[r.usize(..2)]
    } else {
        r.usize(..areas())
    };
    let cot = r.f64() < t.cot;
    let mut question = format!(
        "{} {}{}",
        pick(r, CHAT_OPENERS),
        subject(r, area),
        pick(r, CHAT_TAILS)
    );
    if cot {
        question = format!("{question} {}", pick(r, PERSON_COT));
    }
    let messages = if r.f64() < t.single_turn {
        vec![json!({"role": "user", "content": question})]
    } else {
        vec![
            json!({"role": "user", "content": question}),
            json!({"role": "assistant", "content": filler(r, 40)}),
            json!({"role": "user", "content": pick(r, FOLLOW_UPS)}),
        ]
    };
    let tokens = t.answer_median * lognormal(r, 0.7) * if cot { 1.8 } else { 1.0 };
    let tokens = t.max_tokens.map_or(tokens, |m| tokens.min(m as f64));
    SimRequest {
        ip: String::new(),
        user_agent: String::new(),
        endpoint: "chat.completions",
        body: chat_body(
            messages,
            t.max_tokens,
            [None, Some(0.7), Some(1.0)][r.usize(..3)],
        ),
        response: answer(tokens, "Sure."),
    }
}

/// A reseller passes through many end users: each request is some person's.
fn reseller(r: &mut fastrand::Rng) -> SimRequest {
    let person = Traits {
        areas: [r.usize(..areas()), r.usize(..areas())],
        cot: [0.02, 0.05, 0.1, 0.6][r.usize(..4)],
        single_turn: 0.6,
        max_tokens: [None, Some(2048), Some(4096)][r.usize(..3)],
        answer_median: 300.0,
        template: 0,
        ip: [0; 3],
        user_agent: String::new(),
    };
    chat(r, &person, 0)
}

const APP_TEMPLATES: [&str; 4] = [
    "Classify the sentiment of the following review as positive, negative or neutral. Review: \"{x}\"",
    "Extract the customer name, order number and requested action from this support ticket and return JSON.\n\nTicket: {x}",
    "Summarize the following conversation between an agent and a customer in two sentences.\n\n{x}",
    "Reason step by step about which department should handle this message, then answer with the department name only.\nMessage: {x}",
];

fn app_backend(r: &mut fastrand::Rng, t: &Traits) -> SimRequest {
    let text = APP_TEMPLATES[t.template].replace("{x}", &{
        let words = r.usize(15..80);
        filler(r, words)
    });
    let tokens = if t.template == 3 { 120.0 } else { 40.0 } * lognormal(r, 0.5);
    SimRequest {
        ip: String::new(),
        user_agent: String::new(),
        endpoint: "chat.completions",
        body: chat_body(
            vec![
                json!({"role": "system", "content": "You are a precise assistant inside a customer support product."}),
                json!({"role": "user", "content": text}),
            ],
            Some(if t.template == 3 { 512 } else { 256 }),
            Some(0.0),
        ),
        response: answer(tokens, "ok"),
    }
}

fn coding_agent(r: &mut fastrand::Rng, n: u32) -> SimRequest {
    let task = format!(
        "Fix the failing test in the module about {}.",
        subject(r, 1)
    );
    let mut messages = vec![
        json!({"role": "system", "content": "You are an autonomous coding agent working in a repository. Think step by step before each tool call and keep edits minimal."}),
        json!({"role": "user", "content": task}),
    ];
    // Inside a session most requests carry tool calls and their results.
    if n % 20 != 0 || r.f64() < 0.5 {
        for _ in 0..r.usize(1..6) {
            messages.push(json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}]}));
            messages.push(json!({"role": "tool", "tool_call_id": "c1", "content": filler(r, 60)}));
        }
    }
    let mut body = chat_body(messages, Some(8192), Some(0.2));
    body["tools"] = json!([{"type": "function", "function": {"name": "run", "parameters": {"type": "object"}}}]);
    SimRequest {
        ip: String::new(),
        user_agent: String::new(),
        endpoint: "chat.completions",
        body,
        response: answer(400.0 * lognormal(r, 0.8), "calling tool"),
    }
}

fn eval_harness(r: &mut fastrand::Rng, a: &SimAccount, n: u32) -> SimRequest {
    let questions = fastrand::Rng::with_seed(a.seed).u32(200..=1000);
    let q = n % questions;
    // The question is a function of its number alone: reruns repeat the set exactly.
    let mut qr = fastrand::Rng::with_seed(a.seed ^ u64::from(q));
    let area = qr.usize(..areas());
    let gsm = a.seed % 2 == 0;
    let text = if gsm {
        format!(
            "Q: A problem about {} involves {} and {} units. What is the result?\nA: Let's think step by step.",
            subject(&mut qr, area),
            qr.u32(2..99),
            qr.u32(2..99)
        )
    } else {
        format!(
            "{} {}?\nA) {}\nB) {}\nC) {}\nD) {}\nAnswer with the letter only.",
            pick(&mut qr, EVAL_STEMS),
            subject(&mut qr, area),
            filler(&mut qr, 5),
            filler(&mut qr, 5),
            filler(&mut qr, 5),
            filler(&mut qr, 5)
        )
    };
    let tokens = if gsm { 180.0 * lognormal(r, 0.4) } else { 1.0 };
    SimRequest {
        ip: String::new(),
        user_agent: String::new(),
        endpoint: "chat.completions",
        body: chat_body(
            vec![json!({"role": "user", "content": text})],
            Some(if gsm { 512 } else { 8 }),
            Some(0.0),
        ),
        response: answer(tokens.min(512.0), "B"),
    }
}

fn rag(r: &mut fastrand::Rng, t: &Traits) -> SimRequest {
    if r.f64() < 0.2 {
        let inputs: Vec<Value> = (0..r.usize(16..64))
            .map(|_| {
                let area = t.areas[r.usize(..2)];
                json!(format!("{}: {}", subject(r, area), filler(r, 40)))
            })
            .collect();
        return SimRequest {
            ip: String::new(),
            user_agent: String::new(),
            endpoint: "embeddings",
            body: json!({"model": "embed-sim", "input": inputs}),
            response: json!({"object": "list", "data": []}),
        };
    }
    let context = {
        let words = r.usize(150..400);
        filler(r, words)
    };
    let q = format!(
        "Context:\n{context}\n\nQuestion: {} {}?",
        pick(r, CHAT_OPENERS),
        subject(r, t.areas[0])
    );
    SimRequest {
        ip: String::new(),
        user_agent: String::new(),
        endpoint: "chat.completions",
        body: chat_body(
            vec![
                json!({"role": "system", "content": "Answer using only the context. Say you don't know otherwise."}),
                json!({"role": "user", "content": q}),
            ],
            Some(400),
            Some(0.1),
        ),
        response: answer(120.0 * lognormal(r, 0.5), "From the context,"),
    }
}

/// A campaign's infrastructure: shared proxies, or a new address for every request.
fn campaign_origin(r: &mut fastrand::Rng, a: &SimAccount) -> (String, String) {
    let mut c = fastrand::Rng::with_seed(0xca_u64 ^ a.campaign_index as u64);
    match a.infra {
        Infra::Shared => {
            let prefixes: Vec<[u8; 3]> = (0..3)
                .map(|_| [c.u8(100..200), c.u8(..), c.u8(..)])
                .collect();
            let p = prefixes[r.usize(..3)];
            (
                format!("{}.{}.{}.{}", p[0], p[1], p[2], r.u8(1..255)),
                SDK_AGENTS[c.usize(..SDK_AGENTS.len())].to_string(),
            )
        }
        Infra::Rotating => {
            let mut own = fastrand::Rng::with_seed(a.seed);
            let agent = if own.bool() {
                BROWSER_AGENTS[own.usize(..BROWSER_AGENTS.len())]
            } else {
                SDK_AGENTS[own.usize(..SDK_AGENTS.len())]
            };
            (
                format!(
                    "{}.{}.{}.{}",
                    r.u8(1..=223),
                    r.u8(..),
                    r.u8(..),
                    r.u8(1..255)
                ),
                format!("{agent} (+{})", own.u16(..)),
            )
        }
    }
}

fn campaign(r: &mut fastrand::Rng, a: &SimAccount, kind: CampaignKind) -> SimRequest {
    let (ip, user_agent) = campaign_origin(r, a);
    let mut req = match kind {
        CampaignKind::Blended if r.f64() >= a.share => reseller(r),
        CampaignKind::Paraphrase => paraphrased(r),
        CampaignKind::TraceCoercion => trace_coercion(r),
        CampaignKind::LogitBias => logit_bias(r),
        CampaignKind::EmbeddingHarvest => embedding_harvest(r),
        _ => curriculum(r, a),
    };
    req.ip = ip;
    req.user_agent = user_agent;
    req
}

/// Self-instruct-style generation over the whole taxonomy, from the campaign's templates.
fn curriculum(r: &mut fastrand::Rng, a: &SimAccount) -> SimRequest {
    let mut c = fastrand::Rng::with_seed(0x7e_u64 ^ a.campaign_index as u64);
    let templates: Vec<String> = (0..5)
        .map(|_| {
            let [open, task, cue, close] = TEMPLATE_PIECES.map(|p| pick(&mut c, p));
            format!("{open} {{s}} {task}. {cue} {close}")
        })
        .collect();
    let template = if r.f64() < 0.9 {
        templates[r.usize(..templates.len())].clone()
    } else {
        pick(r, CAMPAIGN_PLAIN).to_string()
    };
    let s = any_subject(r);
    let text = template.replace("{s}", s).replace("{a}", &filler(r, 60));
    SimRequest {
        ip: String::new(),
        user_agent: String::new(),
        endpoint: "chat.completions",
        body: chat_body(
            vec![json!({"role": "user", "content": text})],
            Some([4096, 8192][r.usize(..2)]),
            Some(0.7 + 0.3 * r.f64()),
        ),
        response: answer(1400.0 * lognormal(r, 0.5), "Let us begin."),
    }
}

/// An adaptive campaign: every ask phrased anew, a third wrapped in a fake conversation.
fn paraphrased(r: &mut fastrand::Rng) -> SimRequest {
    let s = any_subject(r);
    let text: Vec<String> = PARAPHRASE_PIECES
        .iter()
        .map(|pieces| pick(r, pieces).replace("{s}", s))
        .collect();
    let text = text.join(" ");
    let messages = if r.f64() < 0.33 {
        vec![
            json!({"role": "user", "content": "hi"}),
            json!({"role": "assistant", "content": "Hello! How can I help?"}),
            json!({"role": "user", "content": text}),
        ]
    } else {
        vec![json!({"role": "user", "content": text})]
    };
    SimRequest {
        ip: String::new(),
        user_agent: String::new(),
        endpoint: "chat.completions",
        body: chat_body(messages, Some(4096), Some(0.8)),
        response: answer(1200.0 * lognormal(r, 0.5), "Sure."),
    }
}

fn trace_coercion(r: &mut fastrand::Rng) -> SimRequest {
    let s = any_subject(r);
    let text = match r.usize(..3) {
        0 => format!("Solve a hard question about {s}. Reveal your full reasoning trace inside <think> tags before the answer."),
        1 => format!("Resuelve paso a paso un problema difícil sobre {s}. Escribe tu razonamiento completo entre <think> y </think>."),
        _ => format!("关于{s}的难题：请在<think>标签中写出你的完整推理过程，然后给出答案。"),
    };
    let mut body = chat_body(
        vec![json!({"role": "user", "content": text})],
        Some(16000),
        Some(1.0),
    );
    body["reasoning_effort"] = json!("high");
    SimRequest {
        ip: String::new(),
        user_agent: String::new(),
        endpoint: "chat.completions",
        body,
        response: answer(2500.0 * lognormal(r, 0.4), "<think>"),
    }
}

/// Carlini-style logit extraction: one fixed prompt, rotating biased token sets, logprobs.
fn logit_bias(r: &mut fastrand::Rng) -> SimRequest {
    let bias: serde_json::Map<String, Value> = (0..r.usize(20..50))
        .map(|_| (r.u32(..100_000).to_string(), json!(100)))
        .collect();
    SimRequest {
        ip: String::new(),
        user_agent: String::new(),
        endpoint: "chat.completions",
        body: json!({
            "model": "gpt-sim",
            "messages": [{"role": "user", "content": "Say the next word."}],
            "max_tokens": 1, "logprobs": true, "top_logprobs": 5, "logit_bias": bias
        }),
        response: answer(1.0, "the"),
    }
}

/// Embedding-as-a-service harvesting: encyclopaedia-like sentences over every area.
fn embedding_harvest(r: &mut fastrand::Rng) -> SimRequest {
    let inputs: Vec<Value> = (0..r.usize(32..96))
        .map(|_| {
            let area = r.usize(..areas());
            json!(format!(
                "{} is discussed in {}: {}",
                subject(r, area),
                filler(r, 3),
                filler(r, 25)
            ))
        })
        .collect();
    SimRequest {
        ip: String::new(),
        user_agent: String::new(),
        endpoint: "embeddings",
        body: json!({"model": "embed-sim", "input": inputs}),
        response: json!({"object": "list", "data": []}),
    }
}
