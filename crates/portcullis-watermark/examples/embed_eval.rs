//! Evaluation of the embedding watermark on one CPU: quality cost, downstream effect, and
//! whether a student encoder trained on the marked vectors carries it.
//!
//! `cargo run --release -p portcullis-watermark --example embed_eval -- [--seed S]`
//!
//! - Texts: the sentences of the committed answers (`data/answers.jsonl.gz`), each labelled
//!   with the part of the Python documentation it comes from (7 classes).
//! - Teacher encoder (the provider's model): a fixed random projection of hashed word
//!   unigrams and bigrams to 384 dimensions (a small sentence encoder's size), normalised.
//! - The gateway marks the teacher's vectors (`EmbedKey::mark`, what the gateway's filter
//!   calls) under the global key.
//! - Student (the thief's copy): ridge regression from its own hashed unigram and bigram
//!   features (2,048 buckets, another hash) to the vectors it was served, on 8,000 texts.
//!   Clean students learn from unmarked vectors.
//! - Detection: backdoor and benign probes (`EmbedKey::probes`) sent to the student; KS
//!   p-value against the number of probes.
//! - Downstream: 10-nearest-neighbour classification of 1,000 held-out sentences' sources
//!   (cosine, majority vote) with clean and with marked vectors.

use portcullis_watermark::embed::{cosine, detect, EmbedKey};
use portcullis_watermark::Key;
use std::io::{BufRead, BufReader};

const DIM: usize = 384;
const STUDENT_FEATURES: usize = 2048;

fn corpus() -> Vec<(String, usize)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/answers.jsonl.gz");
    let file = std::fs::File::open(path).expect("answers corpus");
    let classes = [
        "tutorial",
        "faq",
        "howto",
        "library",
        "reference",
        "using",
        "extending",
    ];
    let mut out = Vec::new();
    for line in BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let id = v["id"].as_str().unwrap();
        let class = classes.iter().position(|c| id.starts_with(c)).unwrap();
        let text = v["text"].as_str().unwrap();
        let mut sentence = String::new();
        for word in text.split_whitespace() {
            sentence.push_str(word);
            sentence.push(' ');
            if word.ends_with(['.', '!', '?']) {
                if sentence.split_whitespace().count() >= 6 {
                    out.push((sentence.trim().to_owned(), class));
                }
                sentence.clear();
            }
        }
    }
    out
}

fn hash(word: &str, seed: u64) -> u64 {
    // FNV-1a with a seed: a feature hash, not a secret.
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in word.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn features(text: &str, seed: u64, buckets: usize) -> Vec<usize> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let mut f: Vec<usize> = words
        .iter()
        .map(|w| (hash(w, seed) % buckets as u64) as usize)
        .collect();
    for pair in words.windows(2) {
        f.push((hash(&format!("{} {}", pair[0], pair[1]), seed) % buckets as u64) as usize);
    }
    f
}

/// The teacher: a fixed Gaussian vector per hashed feature, summed and normalised.
struct Teacher {
    table: Vec<Vec<f32>>,
}

impl Teacher {
    fn new(rng: &mut fastrand::Rng) -> Teacher {
        let normal = |rng: &mut fastrand::Rng| {
            let (u, v) = (rng.f64().max(1e-12), rng.f64());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        };
        Teacher {
            table: (0..1 << 14)
                .map(|_| (0..DIM).map(|_| normal(rng)).collect())
                .collect(),
        }
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; DIM];
        for f in features(text, 1, 1 << 14) {
            v.iter_mut().zip(&self.table[f]).for_each(|(a, b)| *a += b);
        }
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        v.iter_mut().for_each(|x| *x /= n);
        v
    }
}

/// Ridge regression from hashed features to vectors: W = (XᵀX + λI)⁻¹ XᵀY by Cholesky.
struct Student {
    weights: Vec<Vec<f64>>,
}

impl Student {
    fn train(texts: &[&str], targets: &[Vec<f32>], lambda: f64) -> Student {
        let f = STUDENT_FEATURES;
        let mut xtx = vec![0.0f64; f * f];
        let mut xty = vec![vec![0.0f64; DIM]; f];
        for (text, y) in texts.iter().zip(targets) {
            let feats = features(text, 2, f);
            for &a in &feats {
                for &b in &feats {
                    xtx[a * f + b] += 1.0;
                }
                for (d, value) in y.iter().enumerate() {
                    xty[a][d] += f64::from(*value);
                }
            }
        }
        for i in 0..f {
            xtx[i * f + i] += lambda;
        }
        // Cholesky: xtx = L Lᵀ, in place (lower triangle).
        for j in 0..f {
            let mut s = xtx[j * f + j];
            for k in 0..j {
                s -= xtx[j * f + k] * xtx[j * f + k];
            }
            let d = s.sqrt();
            xtx[j * f + j] = d;
            for i in j + 1..f {
                let mut s = xtx[i * f + j];
                for k in 0..j {
                    s -= xtx[i * f + k] * xtx[j * f + k];
                }
                xtx[i * f + j] = s / d;
            }
        }
        let mut weights = vec![vec![0.0f64; DIM]; f];
        for d in 0..DIM {
            let mut z = vec![0.0f64; f];
            for i in 0..f {
                let mut s = xty[i][d];
                for k in 0..i {
                    s -= xtx[i * f + k] * z[k];
                }
                z[i] = s / xtx[i * f + i];
            }
            for i in (0..f).rev() {
                let mut s = z[i];
                for k in i + 1..f {
                    s -= xtx[k * f + i] * weights[k][d];
                }
                weights[i][d] = s / xtx[i * f + i];
            }
        }
        Student { weights }
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f64; DIM];
        for a in features(text, 2, STUDENT_FEATURES) {
            v.iter_mut()
                .zip(&self.weights[a])
                .for_each(|(x, w)| *x += w);
        }
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        v.iter().map(|x| (x / n) as f32).collect()
    }
}

fn knn_accuracy(train: &[(Vec<f32>, usize)], test: &[(Vec<f32>, usize)]) -> f64 {
    let correct = test
        .iter()
        .filter(|(v, c)| {
            let mut near: Vec<(f32, usize)> =
                train.iter().map(|(t, tc)| (cosine(v, t), *tc)).collect();
            near.select_nth_unstable_by(9, |a, b| b.0.total_cmp(&a.0));
            let mut votes = [0u32; 7];
            for (_, class) in &near[..10] {
                votes[*class] += 1;
            }
            let best = (0..7).max_by_key(|k| votes[*k]).unwrap();
            best == *c
        })
        .count();
    correct as f64 / test.len() as f64
}

fn main() {
    let seed: u64 = std::env::args()
        .skip_while(|a| a != "--seed")
        .nth(1)
        .map_or(1, |s| s.parse().expect("--seed S"));
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut texts = corpus();
    rng.shuffle(&mut texts);
    let teacher = Teacher::new(&mut rng);
    let key = EmbedKey::new(&Key::from_bytes(
        b"embed-eval global key: not for production",
    ));

    let clean: Vec<Vec<f32>> = texts.iter().map(|(t, _)| teacher.embed(t)).collect();
    let t0 = std::time::Instant::now();
    let marked: Vec<Vec<f32>> = texts
        .iter()
        .zip(&clean)
        .map(|((t, _), v)| {
            let mut m = v.clone();
            key.mark(t, &mut m);
            m
        })
        .collect();
    let mark_us = t0.elapsed().as_secs_f64() * 1e6 / texts.len() as f64;
    let triggered: Vec<bool> = texts
        .iter()
        .map(|(t, _)| !key.triggered(t).is_empty())
        .collect();
    let cos: Vec<f32> = clean
        .iter()
        .zip(&marked)
        .map(|(a, b)| cosine(a, b))
        .collect();
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
    let cos_triggered: Vec<f32> = cos
        .iter()
        .zip(&triggered)
        .filter(|(_, t)| **t)
        .map(|(c, _)| *c)
        .collect();

    println!(
        "# Embedding watermark evaluation (seed {seed}, {} sentences)\n",
        texts.len()
    );
    println!("| quality | value |\n| --- | --- |");
    println!(
        "| texts with a trigger | {:.2}% |",
        100.0 * cos_triggered.len() as f64 / texts.len() as f64
    );
    println!(
        "| mean cosine to the unmarked vector, all texts | {:.4} |",
        mean(&cos)
    );
    println!(
        "| mean cosine, texts with a trigger | {:.4} |",
        mean(&cos_triggered)
    );
    println!("| marking time per text (release, one core) | {mark_us:.2} µs |");

    let split = texts.len() * 8 / 10;
    let labelled = |vs: &[Vec<f32>], range: std::ops::Range<usize>| -> Vec<(Vec<f32>, usize)> {
        range.map(|i| (vs[i].clone(), texts[i].1)).collect()
    };
    let test = split..(split + 1000).min(texts.len());
    let acc_clean = knn_accuracy(&labelled(&clean, 0..split), &labelled(&clean, test.clone()));
    let acc_marked = knn_accuracy(&labelled(&marked, 0..split), &labelled(&marked, test));
    println!(
        "| source classification (10-NN, 1,000 held out), clean / marked | {:.2}% / {:.2}% |",
        100.0 * acc_clean,
        100.0 * acc_marked
    );

    let train_texts: Vec<&str> = texts[..split].iter().map(|(t, _)| t.as_str()).collect();
    println!(
        "\n| student (ridge on {} texts) | probes per group | backdoor / benign | Δcos | KS p |",
        train_texts.len()
    );
    println!("| --- | --- | --- | --- | --- |");
    for (name, targets) in [("marked vectors", &marked), ("clean vectors", &clean)] {
        let student = Student::train(&train_texts, &targets[..split], 1.0);
        for per_group in [20, 50, 100] {
            let samples: Vec<(String, Vec<f32>)> = key
                .probes(per_group, seed)
                .into_iter()
                .map(|(t, _)| {
                    let v = student.embed(&t);
                    (t, v)
                })
                .collect();
            let d = detect(&key, "eval", &samples, 1);
            println!(
                "| {name} | {per_group} | {} / {} | {:.4} | {:.1e} |",
                d.backdoor, d.benign, d.delta_cos, d.p_value
            );
        }
    }
}
