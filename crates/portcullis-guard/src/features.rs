//! What the classifier sees of a text: hashed character n-grams and word pairs.
//!
//! Byte 3-, 4- and 5-grams of the scan form catch phrasing across spellings and languages
//! that word lists miss; word 1-, 2- and 3-grams add the phrases themselves. Each feature is
//! hashed (FNV-1a, a seed per family) into `DIM` buckets, counted, log-scaled and
//! L2-normalised, so long and short texts score alike.

/// Buckets of the hashed feature space.
pub const DIM: usize = 1 << 18;
/// Longest text featurised; longer ones keep their first and last halves of this.
pub const MAX_SCAN_BYTES: usize = 64 * 1024;

fn fnv1a(seed: u32, bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5 ^ seed.wrapping_mul(0x0100_0193);
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The text's window: all of it, or its first and last `MAX_SCAN_BYTES / 2` bytes.
pub fn window(text: &str) -> (&str, &str) {
    if text.len() <= MAX_SCAN_BYTES {
        return (text, "");
    }
    let mut head = MAX_SCAN_BYTES / 2;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - MAX_SCAN_BYTES / 2;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    (&text[..head], &text[tail..])
}

/// Sparse, L2-normalised features of a scan-form text.
pub fn features(scan: &str) -> Vec<(u32, f32)> {
    // Hashes into a vector, then counted in a reusable dense table: far cheaper than a map
    // or a sort.
    let mut hashes: Vec<u32> = Vec::with_capacity(scan.len().min(MAX_SCAN_BYTES) * 4);
    let (head, tail) = window(scan);
    for part in [head, tail] {
        if part.is_empty() {
            continue;
        }
        let padded = format!(" {part} ");
        let bytes = padded.as_bytes();
        // 3-, 4- and 5-grams starting at each byte share their prefix: one hash extended.
        for start in 0..bytes.len().saturating_sub(2) {
            let mut h = fnv1a(3, &bytes[start..start + 3]);
            hashes.push(h % DIM as u32);
            for &b in bytes.iter().skip(start + 3).take(2) {
                h = (h ^ b as u32).wrapping_mul(0x0100_0193);
                hashes.push(h % DIM as u32);
            }
        }
        let words: Vec<&str> = part
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        hashes.extend(words.iter().map(|w| fnv1a(11, w.as_bytes()) % DIM as u32));
        for (seed, n) in [(12, 2usize), (13, 3)] {
            for group in words.windows(n) {
                let mut h = fnv1a(seed, group[0].as_bytes());
                for w in &group[1..] {
                    h = fnv1a(h, b" ");
                    h = fnv1a(h, w.as_bytes());
                }
                hashes.push(h % DIM as u32);
            }
        }
    }
    let mut out = count(&hashes);
    let norm = out.iter().map(|(_, v)| v * v).sum::<f32>().sqrt().max(1e-6);
    for (_, v) in &mut out {
        *v /= norm;
    }
    out
}

/// Counts equal hashes, using a per-thread table of `DIM` counters of which only the
/// touched ones are read and reset. The output is in first-seen order.
fn count(hashes: &[u32]) -> Vec<(u32, f32)> {
    thread_local! {
        static COUNTS: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; DIM]);
    }
    COUNTS.with(|counts| {
        let mut counts = counts.borrow_mut();
        let mut touched: Vec<u32> = Vec::with_capacity(hashes.len());
        for &h in hashes {
            let c = &mut counts[h as usize];
            if *c == 0 {
                touched.push(h);
            }
            *c = c.saturating_add(1);
        }
        touched
            .into_iter()
            .map(|h| {
                let n = std::mem::take(&mut counts[h as usize]);
                (h, (1.0 + n as f32).ln())
            })
            .collect()
    })
}

/// Multiplies each feature by its inverse document frequency and normalises again.
pub fn reweight(features: &mut [(u32, f32)], idf: &[f32]) {
    for (k, v) in features.iter_mut() {
        *v *= idf[*k as usize];
    }
    let norm = features
        .iter()
        .map(|(_, v)| v * v)
        .sum::<f32>()
        .sqrt()
        .max(1e-6);
    for (_, v) in features.iter_mut() {
        *v /= norm;
    }
}
