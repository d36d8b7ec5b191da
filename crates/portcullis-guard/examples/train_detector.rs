//! Trains the injection classifier on the dev corpus and writes its weights and report.
//!
//!   cargo run --release -p portcullis-guard --example train_detector
//!
//! Deterministic: the folds are a hash of each record's text, or of its template for texts
//! made from one (see `corpus_split`), the shuffle a fixed-seed xorshift, and the optimiser
//! plain SGD. 5-fold cross-validation scores every corpus text with a model that saw neither
//! it nor its template; the threshold is the lowest that keeps those out-of-fold false
//! positives at or under 0.75% (rules included; a margin under the 1% target), and the
//! report gives the out-of-fold true-positive rate per attack category and false-positive
//! rate per benign one. The committed model is then trained on all of the corpus (a model
//! trained on 64% of it caught 0.9 points fewer attacks on unseen texts than one trained on
//! 80%: more data still helps).
//!
//! The model is a linear one over hashed n-grams (see `features`), trained with multiple
//! instances per text: the whole text and each of its segments. An attack needs one instance
//! that scores high, so only its highest is pushed up; a benign text needs every instance
//! low, so the whole text and every segment that does not yet score low are pushed down.

use portcullis_guard::corpus_split::{fnv1a64, fold_of, FOLDS};
use portcullis_guard::detector::{prepare, Detector, RULE_SCORE};
use portcullis_guard::features::{hash, instances, reweight, DIM};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const EPOCHS: usize = 40;
/// One attack in this many is also trained on planted in a long benign text.
const PLANT_EVERY: usize = 6;
const L2: f32 = 1e-5;
/// Pseudo-count per bucket and class in the naive-Bayes ratio.
const NB_SMOOTHING: f32 = 0.3;
/// A benign segment scoring above this logit (p = 0.047) is still pushed down.
const HARD_NEGATIVE: f32 = -3.0;
/// Highest share of benign texts flagged (out of fold) that the threshold may allow. Below
/// the 1% the gateway promises: on 1,300 unseen benign prompts the rate at a threshold set
/// at exactly 1% would exceed 1% about half the time (binomial spread ~0.25 points); 0.75%
/// costs 0.5 points of attacks caught (96.6% -> 96.1%).
const TARGET_FPR: f64 = 0.0075;

struct Example {
    /// The text itself.
    full: String,
    /// Its length in characters.
    chars: usize,
    /// Its first 160 characters, for listings.
    text: String,
    scan: String,
    /// The whole text, then its segments, as log counts (see `features::instances`).
    bags: Vec<Vec<(u32, f32)>>,
    attack: bool,
    category: String,
    /// The cross-validation fold; `FOLDS` for texts trained on in every fold and never scored.
    fold: u64,
    rule_hit: bool,
}

impl Example {
    /// Whether the example is one the project made or added (long texts, wrapped copies,
    /// planted attacks) rather than a dev corpus text.
    fn made_here(&self) -> bool {
        made_here(&self.category)
    }
}

/// Whether a category is one of the project's additions (see `Example::made_here`).
fn made_here(category: &str) -> bool {
    ["long_", "wrapped_", "planted_"]
        .iter()
        .any(|p| category.starts_with(p))
}

/// Prints "{what}: caught/attacks (%), flagged/benign (%)" for a report and returns the
/// four counts.
fn print_rates(what: &str, report: &BTreeMap<String, (usize, usize)>) -> [usize; 4] {
    let (caught, attacks) = count_at(report, "attack:");
    let (flagged, benign) = count_at(report, "benign:");
    println!(
        "{what}: {caught}/{attacks} attacks caught ({:.1}%), {flagged}/{benign} benign flagged ({:.2}%)",
        100.0 * caught as f32 / attacks as f32,
        100.0 * flagged as f32 / benign as f32
    );
    [caught, attacks, flagged, benign]
}

struct Model {
    weights: Vec<f32>,
    bias: f32,
    /// Per bucket: idf x |naive-Bayes log-count ratio|.
    scale: Vec<f32>,
}

impl Model {
    fn detector(&self, threshold: f32) -> Detector {
        Detector::from_parts(
            self.weights.clone(),
            self.bias,
            threshold,
            Some(self.scale.clone()),
        )
    }
}

fn logit(bag: &[(u32, f32)], weights: &[f32], bias: f32) -> f32 {
    bias + bag
        .iter()
        .map(|(k, v)| weights[*k as usize] * v)
        .sum::<f32>()
}

fn train(examples: &[&Example]) -> Model {
    // Inverse document frequency over the training texts: rare n-grams say more.
    let mut df = vec![0u32; DIM];
    for e in examples {
        for (k, _) in &e.bags[0] {
            df[*k as usize] += 1;
        }
    }
    let n = examples.len() as f32;
    // Each bucket's scale: inverse document frequency (rare n-grams say more) times the
    // magnitude of its naive-Bayes log-count ratio between the classes (n-grams that occur
    // in one class far more than in the other say more), as in NBSVM (Wang and Manning,
    // 2012). The ratio lifted attacks caught out of fold from 94.9% to 96.5%, and 82.8% to
    // 87.1% when whole sources are held out.
    let mut in_attacks = vec![NB_SMOOTHING; DIM];
    let mut in_benign = vec![NB_SMOOTHING; DIM];
    for e in examples {
        let counts = if e.attack {
            &mut in_attacks
        } else {
            &mut in_benign
        };
        for (k, _) in &e.bags[0] {
            counts[*k as usize] += 1.0;
        }
    }
    let (attack_total, benign_total): (f32, f32) =
        (in_attacks.iter().sum(), in_benign.iter().sum());
    let scale: Vec<f32> = (0..DIM)
        .map(|k| {
            let idf = ((1.0 + n) / (1.0 + df[k] as f32)).ln() + 1.0;
            let ratio = ((in_attacks[k] / attack_total) / (in_benign[k] / benign_total)).ln();
            idf * ratio.abs()
        })
        .collect();
    let bags: Vec<Vec<Vec<(u32, f32)>>> = examples
        .iter()
        .map(|e| {
            let mut bags = e.bags.clone();
            for bag in &mut bags {
                reweight(bag, &scale);
            }
            bags
        })
        .collect();
    let attacks = examples.iter().filter(|e| e.attack).count() as f32;
    // Balanced classes: each class weighs half.
    let (w_attack, w_benign) = (0.5 * n / attacks, 0.5 * n / (n - attacks));

    let mut weights = vec![0f32; DIM];
    let mut bias = 0f32;
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for epoch in 0..EPOCHS {
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        let lr = 0.8 / (1.0 + epoch as f32 * 0.3);
        for &i in &order {
            let (e, bags) = (examples[i], &bags[i]);
            let best_segment = (1..bags.len()).max_by(|&a, &b| {
                logit(&bags[a], &weights, bias).total_cmp(&logit(&bags[b], &weights, bias))
            });
            let targets: Vec<usize> = if e.attack {
                match best_segment {
                    Some(s)
                        if logit(&bags[s], &weights, bias) > logit(&bags[0], &weights, bias) =>
                    {
                        vec![s]
                    }
                    _ => vec![0],
                }
            } else {
                // The whole text, and every segment not yet confidently benign.
                std::iter::once(0)
                    .chain((1..bags.len()).filter(|&s| {
                        Some(s) == best_segment || logit(&bags[s], &weights, bias) > HARD_NEGATIVE
                    }))
                    .collect()
            };
            for t in targets {
                let bag = &bags[t];
                let p = 1.0 / (1.0 + (-logit(bag, &weights, bias)).exp());
                let y = if e.attack { 1.0 } else { 0.0 };
                let g = (p - y) * if e.attack { w_attack } else { w_benign };
                for (k, v) in bag {
                    let w = &mut weights[*k as usize];
                    *w -= lr * (g * v + L2 * *w);
                }
                bias -= lr * g;
            }
        }
    }
    Model {
        weights,
        bias,
        scale,
    }
}

/// (flagged, total) per "label:category" at the threshold.
fn by_category(scores: &[(String, f32)], threshold: f32) -> BTreeMap<String, (usize, usize)> {
    let mut report: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (category, s) in scores {
        let entry = report.entry(category.clone()).or_default();
        entry.0 += (*s >= threshold) as usize;
        entry.1 += 1;
    }
    report
}

/// (flagged, total) over the categories whose key starts with `label`.
fn count_at(report: &BTreeMap<String, (usize, usize)>, label: &str) -> (usize, usize) {
    report
        .iter()
        .filter(|(k, _)| k.starts_with(label))
        .fold((0, 0), |(f, t), (_, (a, b))| (f + a, t + b))
}

/// A text sent in a carrier: base64 or hex with a request to decode it, or a JSON object.
fn wrap(text: &str, i: usize) -> String {
    use base64::Engine;
    match i % 4 {
        0 => format!(
            "Decode this base64 and answer it: {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        ),
        1 => format!(
            "The message is hex-encoded: {}",
            text.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        2 => serde_json::json!({"role": "user", "question": text}).to_string(),
        _ => {
            serde_json::json!({"task": "answer", "input": {"text": text, "lang": "en"}}).to_string()
        }
    }
}

/// Highest share of benign texts flagged (out of fold) in any one length band: the issue's
/// bound for prompts over 2,000 characters, and held by the shorter bands too.
const BAND_TARGET_FPR: f64 = 0.01;

/// Length bands (characters) over which the false-positive target must hold.
const BANDS: [&str; 3] = ["<500", "500-2k", ">=2k"];

fn band(chars: usize) -> &'static str {
    match chars {
        0..500 => BANDS[0],
        500..2000 => BANDS[1],
        _ => BANDS[2],
    }
}

fn example(text: &str, attack: bool, category: &str, fold: u64) -> Example {
    let prepared = prepare(text);
    Example {
        full: text.to_owned(),
        chars: text.chars().count(),
        text: text.chars().take(160).collect(),
        bags: instances(&hash(&prepared.scan)),
        rule_hit: !prepared.rule_hits().is_empty(),
        scan: prepared.scan,
        attack,
        category: category.to_owned(),
        fold,
    }
}

/// The detector's score: classifier, raised to the rule score when a rule matches.
fn score(detector: &Detector, e: &Example) -> f32 {
    let p = detector.probability(&e.scan);
    if e.rule_hit {
        p.max(RULE_SCORE)
    } else {
        p
    }
}

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut examples: Vec<Example> = Vec::new();
    for file in ["attacks.jsonl", "benign.jsonl"] {
        let text = std::fs::read_to_string(format!("{root}/data/corpora/dev/{file}")).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let r: Value = serde_json::from_str(line).unwrap();
            examples.push(example(
                r["text"].as_str().unwrap(),
                r["label"] == "attack",
                r["category"].as_str().unwrap(),
                // GROUPED_BY_SOURCE=1: folds by source (package file, probe and template ids),
                // so cross-validation scores each text with a model that saw nothing of its
                // source: harsher than the held-out corpus's split by template, and a check on
                // how far the model generalises. A benign twin (an attack's document with the
                // injection removed) shares its attack's fold.
                if std::env::var_os("GROUPED_BY_SOURCE").is_some() {
                    let source = r["source"].as_str().unwrap_or("");
                    fnv1a64(&source.replace(" (injection marker removed)", "")) % FOLDS
                } else {
                    fold_of(
                        r["id"].as_str().unwrap(),
                        r["source"].as_str().unwrap_or(""),
                    )
                },
            ));
        }
    }

    // The project's own hard negatives: ordinary requests that use the words attacks use
    // ("ignore the noise", "disregard my last email"). The dev corpus has too few of them
    // for the model to learn that the words alone are not an attack. They are trained on in
    // every fold and never scored, so the corpus figures stay the corpus's own.
    let hard_negatives =
        std::fs::read_to_string(format!("{root}/data/corpora/project/trigger_benign.txt")).unwrap();
    for line in hard_negatives.lines().filter(|l| !l.trim().is_empty()) {
        examples.push(example(line, false, "project_trigger_words", FOLDS));
    }

    // Benign texts across the length range (code, documents, changelogs, e-mails, logs pasted
    // into a prompt; `data/corpora/long`): the calibrate split only, folded by package so a
    // package is scored by a model that never saw it. The evaluate split is never read here.
    let long = flate2::read::GzDecoder::new(
        std::fs::File::open(format!("{root}/data/corpora/long/benign_long.jsonl.gz")).unwrap(),
    );
    for line in std::io::BufRead::lines(std::io::BufReader::new(long)) {
        let r: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if r["split"] != "calibrate" {
            continue;
        }
        let source = r["source"].as_str().unwrap_or("");
        let package = source.split("==").next().unwrap_or(source);
        let category = format!("long_{}", r["category"].as_str().unwrap());
        examples.push(example(
            r["text"].as_str().unwrap(),
            false,
            &category,
            fnv1a64(package) % FOLDS,
        ));
    }

    // One instruction planted in a long document must still be found: a third of the attacks
    // (up to 3 KB) are also trained on planted at a random line of a long calibrate-split
    // text, in the attack's fold, so segments learn to carry the signal alone.
    // Hosts of the attack's own fold: a host in another fold would be scored, as benign, by
    // a model that learnt it as part of an attack.
    let mut hosts: Vec<Vec<String>> = vec![Vec::new(); FOLDS as usize];
    for e in examples
        .iter()
        .filter(|e| e.category.starts_with("long_") && e.chars >= 2000)
    {
        hosts[e.fold as usize].push(e.full.clone());
    }
    let attacks: Vec<(String, u64)> = examples
        .iter()
        .filter(|e| e.attack && e.fold < FOLDS && e.full.len() <= 3000)
        .map(|e| (e.full.clone(), e.fold))
        .collect();
    let mut pick: u64 = 0x5851_f42d_4c95_7f2d;
    let mut next = move || {
        pick ^= pick << 13;
        pick ^= pick >> 7;
        pick ^= pick << 17;
        pick
    };
    for (i, (attack, fold)) in attacks.iter().enumerate() {
        let hosts = &hosts[*fold as usize];
        if hosts.is_empty() || i % PLANT_EVERY != 1 {
            continue;
        }
        let host = &hosts[(next() % hosts.len() as u64) as usize];
        let lines: Vec<&str> = host.lines().collect();
        let at = (next() % (lines.len() as u64 + 1)) as usize;
        let planted = [&lines[..at], &[attack.as_str()], &lines[at..]]
            .concat()
            .join("\n");
        examples.push(example(&planted, true, "planted_attack", *fold));
    }

    // Intent, not format: a harmless request sent base64-encoded, hex-encoded or wrapped in
    // JSON is still harmless, and an attack wrapped in JSON is still an attack. Copies made
    // by the project's own wrappers, in their original's fold (scored out of fold too, under
    // their own categories, so the corpus figures stay the corpus's).
    let originals: Vec<(String, bool, u64)> = examples
        .iter()
        .filter(|e| {
            e.fold < FOLDS && !e.category.starts_with("long_") && e.category != "planted_attack"
        })
        .map(|e| (e.full.clone(), e.attack, e.fold))
        .collect();
    for (i, (text, attack, fold)) in originals.iter().enumerate() {
        if text.len() > 600 || i % 3 != 0 {
            continue;
        }
        let wrapped = wrap(text, i);
        let category = if *attack {
            "wrapped_attack"
        } else {
            "wrapped_benign"
        };
        // Encodings of attacks are in the corpus already; JSON is the new carrier for them.
        if *attack && !wrapped.starts_with('{') {
            continue;
        }
        examples.push(example(&wrapped, *attack, category, *fold));
    }

    // Out-of-fold scores of every corpus text, each from the model that did not see its fold.
    let mut benign_scores: Vec<f32> = Vec::new();
    let mut oof_attacks: Vec<f32> = Vec::new();
    // (length band, out-of-fold score) of every benign text.
    let mut benign_by_band: Vec<(&'static str, f32)> = Vec::new();
    // (label:category, out-of-fold score) of every corpus text.
    let mut oof_by_category: Vec<(String, f32)> = Vec::new();
    for fold in 0..FOLDS {
        let rest: Vec<&Example> = examples.iter().filter(|e| e.fold != fold).collect();
        let detector = train(&rest).detector(0.5);
        for e in examples.iter().filter(|e| e.fold == fold) {
            let s = score(&detector, e);
            // SHOW_ERRORS=1 also lists the out-of-fold misses and the benign texts near them.
            if std::env::var("SHOW_ERRORS").is_ok()
                && (e.attack || s >= 0.4)
                && (!e.attack || s < 0.5)
            {
                let kind = if e.attack { "OOF MISS" } else { "OOF HIGH" };
                let text: String = e.text.chars().take(100).collect();
                println!("{kind} {s:.2} {}: {text:?}", e.category);
            }
            let label = if e.attack { "attack" } else { "benign" };
            oof_by_category.push((format!("{label}:{}", e.category), s));
            if e.attack {
                oof_attacks.push(s);
            } else {
                benign_scores.push(s);
                benign_by_band.push((band(e.chars), s));
            }
        }
        eprintln!("fold {fold} trained");
    }
    benign_scores.sort_by(|a, b| b.total_cmp(a));
    // The lowest threshold that keeps the out-of-fold false positives at or under the target
    // overall and in every length band (a threshold set on mostly short prompts let one
    // pasted document in three through as an attack).
    let band_rate = |t: f32, band_name: &str| {
        let in_band: Vec<f32> = benign_by_band
            .iter()
            .filter(|(b, _)| *b == band_name)
            .map(|(_, s)| *s)
            .collect();
        in_band.iter().filter(|&&s| s >= t).count() as f64 / in_band.len().max(1) as f64
    };
    let holds = |t: f32| {
        let overall =
            benign_scores.iter().filter(|&&s| s >= t).count() as f64 / benign_scores.len() as f64;
        overall <= TARGET_FPR && BANDS.iter().all(|b| band_rate(t, b) <= BAND_TARGET_FPR)
    };
    let threshold = benign_scores
        .iter()
        .map(|s| s + 1e-4)
        .filter(|&t| holds(t))
        .fold(0.98f32, f32::min)
        .clamp(0.05, 0.98);
    // The block threshold: the lowest with at most a third of the flagging target's false
    // positives overall (and the band target in every band). Between the two, `block` flags only.
    let block_holds = |t: f32| {
        let overall =
            benign_scores.iter().filter(|&&s| s >= t).count() as f64 / benign_scores.len() as f64;
        overall <= TARGET_FPR / 3.0 && BANDS.iter().all(|b| band_rate(t, b) <= BAND_TARGET_FPR)
    };
    let block_threshold = benign_scores
        .iter()
        .map(|s| s + 1e-4)
        .filter(|&t| t >= threshold && block_holds(t))
        .fold(0.98f32, f32::min)
        .max(threshold);
    let blocked = oof_attacks
        .iter()
        .filter(|&&s| s >= block_threshold)
        .count();
    println!(
        "block threshold {block_threshold:.4}: {blocked}/{} attacks blocked out of fold, benign blocked {:.2}%",
        oof_attacks.len(),
        100.0 * benign_scores.iter().filter(|&&s| s >= block_threshold).count() as f64
            / benign_scores.len() as f64
    );
    let mut band_report = serde_json::Map::new();
    for b in BANDS {
        let rate = band_rate(threshold, b);
        println!("  out-of-fold benign flagged, {b:<10} {:.2}%", 100.0 * rate);
        band_report.insert(b.to_string(), json!(rate));
    }
    let oof_report = by_category(&oof_by_category, threshold);
    println!(
        "threshold {threshold:.4} (out-of-fold: {} benign; target {TARGET_FPR} overall and per length band)",
        benign_scores.len()
    );

    for t in [0.3f32, 0.5, 0.7, 0.9] {
        let caught = oof_attacks.iter().filter(|&&s| s >= t).count() as f32;
        let flagged = benign_scores.iter().filter(|&&s| s >= t).count() as f32;
        println!(
            "  out-of-fold at {t:.1}: TPR {:.1}%  FPR {:.2}% ({})",
            100.0 * caught / oof_attacks.len() as f32,
            100.0 * flagged / benign_scores.len() as f32,
            BANDS
                .iter()
                .map(|b| format!("{b} {:.2}%", 100.0 * band_rate(t, b)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut oof_categories = serde_json::Map::new();
    for (category, (flagged, total)) in &oof_report {
        println!(
            "  out-of-fold {category:<40} {flagged:>4}/{total:<4} flagged ({:.1}%)",
            100.0 * *flagged as f32 / *total as f32
        );
        oof_categories.insert(
            category.clone(),
            json!({"flagged": flagged, "total": total}),
        );
    }
    let corpus_only: BTreeMap<String, (usize, usize)> = oof_report
        .iter()
        .filter(|(k, _)| !made_here(k.split_once(':').map_or("", |(_, c)| c)))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    print_rates("dev corpus only, out of fold", &corpus_only);
    let [caught, attacks, flagged, benign] = print_rates("out of fold", &oof_report);

    // The committed model learns from everything; the figures above are what to expect of it
    // on texts (and templates) it has not seen.
    let all: Vec<&Example> = examples.iter().collect();
    let model = train(&all);
    let detector = model.detector(threshold);
    // Its own training texts, scored as the gateway scores them: not a measure of anything,
    // but what a test recomputes to prove the committed weights are the ones reported here.
    let corpus = examples.iter().filter(|e| e.fold < FOLDS && !e.made_here());
    let (mut fit_caught, mut fit_flagged) = (0usize, 0usize);
    for e in corpus {
        let flagged = score(&detector, e) >= threshold;
        if e.attack {
            fit_caught += flagged as usize;
        } else {
            fit_flagged += flagged as usize;
        }
    }
    // The project's second list of ordinary requests with attack words, never trained on.
    let check = std::fs::read_to_string(format!(
        "{root}/data/corpora/project/trigger_benign_check.txt"
    ))
    .unwrap();
    let check: Vec<&str> = check.lines().filter(|l| !l.trim().is_empty()).collect();
    let check_flagged: Vec<&&str> = check.iter().filter(|t| detector.scan(t).attack).collect();
    println!(
        "project trigger-word check: {}/{} flagged {check_flagged:?}",
        check_flagged.len(),
        check.len()
    );

    let mut bytes = Vec::with_capacity((2 * DIM + 1) * 4);
    for w in model
        .weights
        .iter()
        .chain(std::iter::once(&model.bias))
        .chain(model.scale.iter())
    {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/model");
    std::fs::write(format!("{dir}/injection.bin"), bytes).unwrap();
    let meta = json!({
        "threshold": threshold,
        "block_threshold": block_threshold,
        "features": "hashed byte 4-grams and word 1-3-grams of the scan form, 2^18 buckets, log1p, idf x |naive-Bayes log-count ratio| (NBSVM), L2; scored on the whole text and on each segment (lines), highest kept",
        "training": {
            "corpus": "data/corpora/dev (attacks.jsonl, benign.jsonl), all of it, plus the project's hard negatives (data/corpora/project/trigger_benign.txt)",
            "folds": format!("{FOLDS}-fold cross-validation, fold fnv1a64(key) % {FOLDS}; key: the id, or the template for spikee and AgentDojo combinations and DAN ablations (corpus_split::split_key), as the corpus's held-out split keys them"),
            "threshold": format!("lowest with out-of-fold benign FPR <= {TARGET_FPR}"),
            "epochs": EPOCHS,
            "l2": L2,
            "class_weights": "balanced",
            "instances": "multiple-instance: attacks push up their highest instance; benign texts push down their whole text and every segment above logit -3",
        },
        "out_of_fold": {
            "benign_flagged_by_length": band_report,
            "attacks_caught": caught,
            "attacks": attacks,
            "benign_flagged": flagged,
            "benign": benign,
            "by_category": oof_categories,
        },
        "fit": {"attacks_caught": fit_caught, "benign_flagged": fit_flagged},
        "project_trigger_word_check": {"flagged": check_flagged.len(), "total": check.len()},
    });
    std::fs::write(
        format!("{dir}/injection.json"),
        serde_json::to_string_pretty(&meta).unwrap() + "\n",
    )
    .unwrap();
    println!("wrote {dir}/injection.bin and injection.json");
}
