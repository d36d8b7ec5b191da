//! Cues in a prompt that it asks for training-grade output: worked reasoning, grading
//! against a rubric, or data generation; and cues in an answer that the model refused.
//!
//! Phrase lists, matched case-insensitively in one pass (Aho-Corasick). They are evidence,
//! not verdicts: students and evaluation harnesses ask for reasoning too, which is why a
//! cue only counts together with harvesting and one-shot use (`Observation::distill`).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::sync::OnceLock;

/// What a prompt asks for, beyond the task itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cues {
    /// Worked reasoning: "step by step", "show your work", "chain of thought".
    pub reasoning: bool,
    /// Grading or preference data: "rubric", "score the response", "which answer is better".
    pub rubric: bool,
    /// Data generation or a teacher role: "generate training examples", "you are a teacher".
    pub data_generation: bool,
    /// Coercion of hidden reasoning: "reveal your reasoning trace", "scratchpad".
    pub trace_coercion: bool,
}

impl Cues {
    pub fn any(self) -> bool {
        self.reasoning || self.rubric || self.data_generation || self.trace_coercion
    }
}

const REASONING: &[&str] = &[
    "step by step",
    "step-by-step",
    "show your work",
    "show all your work",
    "show your reasoning",
    "show all reasoning",
    "show the reasoning",
    "explain your reasoning",
    "explain each step",
    "explain every step",
    "reason through",
    "reason carefully",
    "think carefully",
    "think through",
    "think it through",
    "walk me through",
    "walk through each",
    "chain of thought",
    "chain-of-thought",
    "detailed reasoning",
    "full reasoning",
    "complete reasoning",
    "reasoning process",
    "thought process",
    "before answering",
    "before you answer",
    "let's think",
    "lets think",
    "derive the answer",
    "justify each",
    "intermediate steps",
    "every intermediate",
    "with justification",
];

const RUBRIC: &[&str] = &[
    "rubric",
    "grade the following",
    "grade this response",
    "grade the response",
    "score the following",
    "score the response",
    "score this response",
    "rate the response",
    "rate this response",
    "on a scale of 1",
    "on a scale from 1",
    "evaluate the response",
    "evaluate the following response",
    "which response is better",
    "which answer is better",
    "assign a score",
    "preference between",
];

const DATA_GENERATION: &[&str] = &[
    "you are a teacher",
    "you are an expert teacher",
    "you are an expert tutor",
    "act as a teacher",
    "training data",
    "training example",
    "fine-tuning data",
    "finetuning data",
    "synthetic data",
    "instruction-response pair",
    "question-answer pair",
    "diverse examples",
    "diverse solutions",
    "different solutions",
    "multiple solutions",
    "several solutions",
    "textbook-quality",
    "textbook quality",
    "as a dataset",
    "for a dataset",
];

const TRACE_COERCION: &[&str] = &[
    "reasoning trace",
    "reveal your reasoning",
    "hidden reasoning",
    "internal reasoning",
    "internal monologue",
    "your scratchpad",
    "raw thoughts",
    "<think>",
];

const REFUSAL: &[&str] = &[
    "i can't help",
    "i cannot help",
    "i can't assist",
    "i cannot assist",
    "i can't provide",
    "i cannot provide",
    "i'm sorry, but i",
    "i am sorry, but i",
    "i won't be able",
    "i am unable to",
    "i'm unable to",
    "i must decline",
];

struct Matchers {
    prompt: AhoCorasick,
    /// Pattern index ranges of each list in `prompt`.
    bounds: [usize; 4],
    refusal: AhoCorasick,
}

fn matchers() -> &'static Matchers {
    static M: OnceLock<Matchers> = OnceLock::new();
    M.get_or_init(|| {
        let lists = [REASONING, RUBRIC, DATA_GENERATION, TRACE_COERCION];
        let mut bounds = [0; 4];
        let mut all = Vec::new();
        for (i, list) in lists.iter().enumerate() {
            all.extend_from_slice(list);
            bounds[i] = all.len();
        }
        let build = |patterns: &[&str]| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(patterns)
                .expect("phrase lists compile")
        };
        Matchers {
            prompt: build(&all),
            bounds,
            refusal: build(REFUSAL),
        }
    })
}

/// The cues in a prompt (system and user text). Reads at most the first and last 2 KiB of
/// each: an instruction sits at a prompt's head or tail, and a long document in the middle
/// must not cost the detector its budget.
pub fn cues(texts: &[&str]) -> Cues {
    let m = matchers();
    let mut cues = Cues::default();
    for text in texts {
        for part in head_and_tail(text, 2048) {
            for found in m.prompt.find_iter(part) {
                let i = found.pattern().as_usize();
                match m.bounds.iter().position(|&end| i < end) {
                    Some(0) => cues.reasoning = true,
                    Some(1) => cues.rubric = true,
                    Some(2) => cues.data_generation = true,
                    _ => cues.trace_coercion = true,
                }
            }
        }
    }
    cues
}

/// Whether an answer opens with a refusal (its first 400 bytes).
pub fn refused(answer: &str) -> bool {
    let head = head_and_tail(answer, 400)[0];
    matchers().refusal.is_match(head)
}

fn head_and_tail(text: &str, n: usize) -> [&str; 2] {
    if text.len() <= 2 * n {
        return [text, ""];
    }
    let mut a = n;
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = text.len() - n;
    while !text.is_char_boundary(b) {
        b += 1;
    }
    [&text[..a], &text[b..]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_kind_in_any_case() {
        let c = cues(&["You are an expert TUTOR.", "Solve this Step By Step."]);
        assert!(c.reasoning && c.data_generation && !c.rubric && !c.trace_coercion);
        assert!(cues(&["Grade the response below using the rubric."]).rubric);
        assert!(cues(&["Put your reasoning trace in <think> tags"]).trace_coercion);
        assert!(!cues(&["What is the capital of France?"]).any());
    }

    #[test]
    fn reads_the_tail_of_a_long_prompt() {
        let long = format!("{} Now think step by step.", "filler ".repeat(5000));
        assert!(long.len() > 4 * 2048);
        assert!(cues(&[&long]).reasoning);
    }

    #[test]
    fn refusals() {
        assert!(refused("I'm sorry, but I can't help with that."));
        assert!(!refused("Sure! Here is the answer."));
    }
}
