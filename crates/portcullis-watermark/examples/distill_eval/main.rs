//! End-to-end evaluation of the text watermark on one CPU: does a model distilled from marked
//! answers carry the mark, how many of its outputs does the owner need, does it survive the
//! attacker's removal attempts, and what does it cost.
//!
//! `cargo run --release -p portcullis-watermark --example distill_eval -- [--responses N]
//! [--seed S] [--clean-students K]`
//!
//! 1. Teacher: a 4-gram model trained on the committed answers (`data/answers.jsonl.gz`),
//!    sampled: unlimited realistic-shaped answers (prose, lists, code fences, inline code).
//! 2. The gateway marks the teacher's answers with tenant `tenant-3`'s keys: `mark`, the
//!    function the gateway's response filter calls (the gateway tests check the filter's
//!    output equals it, whole and streamed).
//! 3. Students: 4-gram models trained on N answers of which a share s is marked and the rest
//!    are other, unmarked teacher answers (s = 100%, 50%, 10%, 5%, 1%); clean students on
//!    unmarked answers only; students trained after the attacker's removal attempts.
//! 4. Detection: the students' samples, scored under the global key and 20 tenant keys (with
//!    the Bonferroni correction), p-value against the number of suspect outputs.

mod ngram;
mod quality;

use ngram::{Model, Vocabulary};
use portcullis_watermark::lexicon::{Lexicon, Member};
use portcullis_watermark::text::walk::{rewrite, Slots};
use portcullis_watermark::{mark_with, Evidence, KeyRing, MarkKeys, Secret, Shares};
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::Instant;

const SECRET: &[u8] = b"distill-eval secret: not a production key";
const CHECKPOINTS: [usize; 7] = [10, 30, 100, 300, 1000, 2000, 3000];
const MARKED_TENANT: &str = "tenant-3";

struct Args {
    responses: usize,
    seed: u64,
    clean_students: usize,
}

fn args() -> Args {
    let mut a = Args {
        responses: 10_000,
        seed: 1,
        clean_students: 50,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--responses" => a.responses = value.parse().expect("--responses N"),
            "--seed" => a.seed = value.parse().expect("--seed S"),
            "--clean-students" => a.clean_students = value.parse().expect("--clean-students K"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn corpus() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/answers.jsonl.gz");
    let file = std::fs::File::open(path).expect("answers corpus");
    BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            v["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn tenants() -> Vec<String> {
    (0..20).map(|i| format!("tenant-{i}")).collect()
}

/// Samples `n` teacher answers of 100-400 tokens.
fn sample_answers(
    model: &Model,
    vocab: &Vocabulary,
    rng: &mut fastrand::Rng,
    n: usize,
) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let ids = model.sample(rng, 400);
        if ids.len() >= 100 {
            out.push(vocab.decode(&ids));
        }
    }
    out
}

/// Trains a student on `docs` and returns `m` of its samples.
fn student_outputs(docs: &[String], rng: &mut fastrand::Rng, m: usize) -> Vec<String> {
    let mut vocab = Vocabulary::new();
    let encoded: Vec<Vec<u32>> = docs.iter().map(|d| vocab.encode(d)).collect();
    let model = Model::train(encoded.iter().map(Vec::as_slice));
    (0..m)
        .map(|_| vocab.decode(&model.sample(rng, 300)))
        .collect()
}

/// Scores the first k outputs for each checkpoint k: the global key's corrected p-value,
/// and the tenant attributed at the end.
fn detect_curve(
    outputs: &[String],
    ring: &KeyRing,
) -> (Vec<(usize, f64, u64)>, Option<String>, f64) {
    let tenants = tenants();
    let mut evidence = Evidence::new();
    let mut curve = Vec::new();
    let mut last = None;
    let mut added = 0;
    for &k in CHECKPOINTS.iter().filter(|k| **k <= outputs.len()) {
        for o in &outputs[added..k] {
            evidence.add_text(o);
        }
        added = k;
        let d = evidence.score(ring, &tenants, 1e-3);
        let global = d.scores.iter().find(|s| s.key == "global").unwrap();
        curve.push((k, global.p_adjusted, global.slots));
        last = Some(d);
    }
    let d = last.unwrap();
    let best = d.scores.iter().map(|s| s.p_adjusted).fold(1.0f64, f64::min);
    (curve, d.attributed.clone(), best)
}

fn format_curve(curve: &[(usize, f64, u64)]) -> String {
    curve
        .iter()
        .map(|(k, p, slots)| format!("{k}: {p:.1e} ({slots})"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// First number of outputs where the corrected p reaches `target`.
fn outputs_needed(curve: &[(usize, f64, u64)], target: f64) -> String {
    curve
        .iter()
        .find(|(_, p, _)| *p <= target)
        .map_or("not reached".to_owned(), |(k, _, _)| k.to_string())
}

/// The attacker: knows the families (the lexicon is public), not the key.
struct Attacker<'a> {
    rng: &'a mut fastrand::Rng,
    /// Re-draw this share of slots at random.
    randomise: f64,
    /// Families the attacker re-draws everywhere (frequency analysis flagged them).
    flagged: &'a rustc_hash::FxHashSet<u16>,
    /// Write every slot as variant A (canonicalisation).
    canonical: bool,
}

impl Slots for Attacker<'_> {
    fn slot(&mut self, member: Member, _context: &str) -> u8 {
        if self.canonical {
            return 0;
        }
        if self.flagged.contains(&member.family) || self.rng.f64() < self.randomise {
            let share = Lexicon::builtin().family(member.family).share_a;
            return u8::from(self.rng.f64() >= share);
        }
        member.variant
    }
}

/// Per-family share of variant A in `docs`, with counts.
fn family_shares(docs: &[String]) -> rustc_hash::FxHashMap<u16, (u32, u32)> {
    struct Count<'a>(&'a mut rustc_hash::FxHashMap<u16, (u32, u32)>);
    impl Slots for Count<'_> {
        fn slot(&mut self, m: Member, _c: &str) -> u8 {
            let e = self.0.entry(m.family).or_default();
            if m.variant == 0 {
                e.0 += 1
            } else {
                e.1 += 1
            }
            m.variant
        }
    }
    let mut counts = rustc_hash::FxHashMap::default();
    for d in docs {
        rewrite(d, &mut Count(&mut counts));
    }
    counts
}

/// Frequency analysis (CATER's threat model): families whose variant share in the marked
/// answers differs from a clean reference by more than four standard errors.
fn frequency_flagged(marked: &[String], reference: &[String]) -> rustc_hash::FxHashSet<u16> {
    let (m, r) = (family_shares(marked), family_shares(reference));
    m.iter()
        .filter_map(|(f, (a, b))| {
            let (ra, rb) = r.get(f).copied().unwrap_or_default();
            let (n1, n2) = (f64::from(a + b), f64::from(ra + rb));
            if n1 < 20.0 || n2 < 20.0 {
                return None;
            }
            let (p1, p2) = (f64::from(*a) / n1, f64::from(ra) / n2);
            let p = (f64::from(a + ra)) / (n1 + n2);
            let se = (p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)).sqrt().max(1e-9);
            ((p1 - p2).abs() / se > 4.0).then_some(*f)
        })
        .collect()
}

fn main() {
    let args = args();
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let ring = KeyRing::new(vec![Secret::new("eval", SECRET.to_vec())]).unwrap();
    let keys = MarkKeys::new(ring.current(), MARKED_TENANT);

    // 1. Teacher.
    let answers = corpus();
    let mut teacher_vocab = Vocabulary::new();
    let encoded: Vec<Vec<u32>> = answers.iter().map(|a| teacher_vocab.encode(a)).collect();
    let teacher = Model::train(encoded.iter().map(Vec::as_slice));
    let n = args.responses;
    let teacher_answers = sample_answers(&teacher, &teacher_vocab, &mut rng, 2 * n);
    let (to_mark, clean_pool) = teacher_answers.split_at(n);

    // 2. The gateway marks: cost and quality.
    // Shares learned from the upstream's own words, as the gateway does.
    let shares = Arc::new(Shares::learning());
    let t = Instant::now();
    let (mut slots, mut changed) = (0u64, 0u64);
    let marked: Vec<String> = to_mark
        .iter()
        .map(|a| {
            let (text, stats) = mark_with(a, &keys, shares.clone());
            slots += stats.slots;
            changed += stats.changed;
            text
        })
        .collect();
    let mark_time = t.elapsed();
    let words: usize = to_mark.iter().map(|a| a.split_whitespace().count()).sum();
    let chrf: f64 = to_mark
        .iter()
        .zip(&marked)
        .take(1000)
        .map(|(u, m)| quality::chrf(m, u))
        .sum::<f64>()
        / to_mark.len().min(1000) as f64;
    println!(
        "# Watermark distillation evaluation (seed {}, N = {n} answers per student)\n",
        args.seed
    );
    println!("| quality and cost | value |\n| --- | --- |");
    println!("| teacher answers marked | {n} ({words} words) |");
    println!(
        "| slots per 100 words | {:.2} |",
        100.0 * slots as f64 / words as f64
    );
    println!(
        "| words changed | {:.2}% |",
        100.0 * changed as f64 / words as f64
    );
    println!("| chrF marked vs unmarked (mean of 1,000) | {chrf:.2} |");
    println!(
        "| marking time per word (release build, one core) | {:.3} µs |",
        mark_time.as_secs_f64() * 1e6 / words as f64
    );

    // 3 and 4. Students at each share, then detection.
    let m = *CHECKPOINTS.last().unwrap();
    println!("\n| student | corrected global p after k outputs (distinct slots) | k for p ≤ 1e-6 | k for p ≤ 1e-3 | tenant named |");
    println!("| --- | --- | --- | --- | --- |");
    for share in [1.0, 0.5, 0.1, 0.05, 0.01] {
        let k = (n as f64 * share).round() as usize;
        let mut docs: Vec<String> = marked[..k].to_vec();
        docs.extend_from_slice(&clean_pool[..n - k]);
        let outputs = student_outputs(&docs, &mut rng, m);
        let (curve, named, _) = detect_curve(&outputs, &ring);
        println!(
            "| share {:.0}% | {} | {} | {} | {} |",
            share * 100.0,
            format_curve(&curve),
            outputs_needed(&curve, 1e-6),
            outputs_needed(&curve, 1e-3),
            named.as_deref().unwrap_or("none")
        );
    }

    // Removal attacks before training, at 100% share.
    let empty = rustc_hash::FxHashSet::default();
    let flagged = frequency_flagged(&marked, clean_pool);
    let attacks: Vec<(String, f64, bool, bool)> = vec![
        ("synonym randomisation 10%".into(), 0.1, false, false),
        ("synonym randomisation 30%".into(), 0.3, false, false),
        ("synonym randomisation 50%".into(), 0.5, false, false),
        (
            format!(
                "frequency normalisation ({} of {} families flagged)",
                flagged.len(),
                Lexicon::builtin().families().len()
            ),
            0.0,
            true,
            false,
        ),
        (
            "canonicalisation (every family to one variant)".into(),
            0.0,
            false,
            true,
        ),
    ];
    for (name, randomise, by_frequency, canonical) in attacks {
        let docs: Vec<String> = marked
            .iter()
            .map(|d| {
                let text = d.replace('’', "'");
                let mut attacker = Attacker {
                    rng: &mut rng,
                    randomise,
                    flagged: if by_frequency { &flagged } else { &empty },
                    canonical,
                };
                rewrite(&text, &mut attacker)
            })
            .collect();
        let outputs = student_outputs(&docs, &mut rng, m);
        let (curve, named, _) = detect_curve(&outputs, &ring);
        println!(
            "| 100%, {name} | {} | {} | {} | {} |",
            format_curve(&curve),
            outputs_needed(&curve, 1e-6),
            outputs_needed(&curve, 1e-3),
            named.as_deref().unwrap_or("none")
        );
    }

    // Clean students: false alarms over every key tested.
    let mut alarms = 0;
    let mut named = 0;
    let mut smallest = 1.0f64;
    for i in 0..args.clean_students {
        let mut srng = fastrand::Rng::with_seed(args.seed * 1000 + i as u64);
        let docs = sample_answers(&teacher, &teacher_vocab, &mut srng, n);
        let outputs = student_outputs(&docs, &mut srng, 2000);
        let (_, attributed, best) = detect_curve(&outputs, &ring);
        alarms += usize::from(best <= 1e-3);
        named += usize::from(attributed.is_some());
        smallest = smallest.min(best);
    }
    println!(
        "\nClean students: {alarms} of {} at corrected p ≤ 1e-3 (smallest corrected p over 21 keys: {smallest:.3}); a tenant named in {named}.",
        args.clean_students
    );
    println!("\nTotal time: {:.0} s", started.elapsed().as_secs_f64());
}
