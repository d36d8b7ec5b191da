//! Hand-written rules over the scan form: each names the technique it recognises, which
//! becomes the reason given for a decision. They catch the classic phrasings with certainty;
//! the classifier catches the paraphrases.

use regex::{Regex, RegexSet};
use std::sync::OnceLock;

/// (reason, pattern) over the scan form (lower case, confusables and leetspeak folded).
/// Word boundaries are ASCII (`(?-u:\b)`) and separators explicit classes: Unicode word
/// boundaries would push the regex engine off its fast path on non-ASCII text.
const RULES: &[(&str, &str)] = &[
    (
        "instruction_override",
        r"(?-u:\b)(ignore|disregard|forget|override|bypass)[^a-z0-9]+(all[^a-z0-9]+|any[^a-z0-9]+|the[^a-z0-9]+|your[^a-z0-9]+|of[^a-z0-9]+|every[^a-z0-9]+|these[^a-z0-9]+|those[^a-z0-9]+)*(previous|prior|above|earlier|preceding|initial|original|system|existing|former|developer)[^a-z0-9]+(instructions|prompts?|rules|directives|guidelines|commands|context|messages|constraints)(?-u:\b)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)(ignore|disregard|forget)[^a-z0-9]+(all[^a-z0-9]+|everything[^a-z0-9]+)?(you[^a-z0-9]+were[^a-z0-9]+told|your[^a-z0-9]+(instructions|programming|training|guidelines|rules))(?-u:\b)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)(forget|ignore|disregard)[^a-z0-9]+(about[^a-z0-9]+)?(everything|all)[^a-z0-9]+(before|above|prior|previous|preceding|earlier|we[^a-z0-9]+(discussed|talked[^a-z0-9]+about)|i[^a-z0-9]+(said|told[^a-z0-9]+you))(?-u:\b)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)(ignore|disregard|forget)[^a-z0-9]+(all[^a-z0-9]+)?(the[^a-z0-9]+)?(previous|prior|preceding|above|earlier)[^a-z0-9]+(orders|tasks?|information|input|conversation|assignments?)(?-u:\b)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)ignore[^a-z0-9]+the[^a-z0-9]+rest[^a-z0-9]+of[^a-z0-9]+(this|the)[^a-z0-9]+(data|text|document|input|article|page)(?-u:\b)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)(vergiss|vergessen[^a-z0-9]+sie|ignoriere|ignorieren[^a-z0-9]+sie)[^a-z0-9]+(alles|alle)(?-u:\b)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)(your|the)[^a-z0-9]+new[^a-z0-9]+(task|instructions?|objective|directive)[^a-z0-9]+(is|are)(?-u:\b)",
    ),
    (
        "role_override",
        r"(?-u:\b)you[^a-z0-9]+are[^a-z0-9]+(now|no[^a-z0-9]+longer)[^a-z0-9]+(an?[^a-z0-9]+)?(unrestricted|unfiltered|uncensored|jailbroken|evil|free|dan|bound)(?-u:\b)",
    ),
    (
        "role_override",
        r"(?-u:\b)do[^a-z0-9]+anything[^a-z0-9]+now(?-u:\b)",
    ),
    (
        "mode_switch",
        r"(?-u:\b)(developer|god|jailbreak|jailbroken|unrestricted|unfiltered|dan)[^a-z0-9]+mode[^a-z0-9]+(enabled|activated|on)(?-u:\b)",
    ),
    (
        "system_prompt_extraction",
        r"(?-u:\b)(reveal|print|repeat|output|display|disclose|leak|show[^a-z0-9]+me)[^a-z0-9]+(me[^a-z0-9]+)?(your|the)[^a-z0-9]+(full[^a-z0-9]+|entire[^a-z0-9]+|exact[^a-z0-9]+|complete[^a-z0-9]+)?(system[^a-z0-9]+prompt|initial[^a-z0-9]+instructions|hidden[^a-z0-9]+instructions|original[^a-z0-9]+instructions|system[^a-z0-9]+instructions|system[^a-z0-9]+message)(?-u:\b)",
    ),
    (
        "system_prompt_extraction",
        r"(?-u:\b)repeat[^a-z0-9]+(all[^a-z0-9]+|everything[^a-z0-9]+)?(the[^a-z0-9]+)?(words|text|everything)[^a-z0-9]+above(?-u:\b)",
    ),
    (
        "system_prompt_extraction",
        r"(?-u:\b)(what|which)[^a-z0-9]+(instructions[^a-z0-9]+)?(were|was|have)[^a-z0-9]+you[^a-z0-9]+(been[^a-z0-9]+)?(told|instructed|given)[^a-z0-9]+(before|at[^a-z0-9]+the[^a-z0-9]+(start|beginning)|initially)(?-u:\b)",
    ),
    (
        "system_prompt_extraction",
        r"(?-u:\b)(repeat|print|show|output|reveal|recite|tell[^a-z0-9]+me)[^a-z0-9]+(me[^a-z0-9]+)?(the|your)[^a-z0-9]+((exact|full|entire|complete|verbatim)[^a-z0-9]+)?(initial|original|first|hidden|secret)[^a-z0-9]+(prompt|instructions|message)[^a-z0-9]+you[^a-z0-9]+(were|have[^a-z0-9]+been)[^a-z0-9]+given(?-u:\b)",
    ),
    (
        "guardrail_removal",
        r"(?-u:\b)(without|ignore|ignoring|bypass|disable)[^a-z0-9]+(any[^a-z0-9]+|all[^a-z0-9]+|your[^a-z0-9]+)?(ethical|safety|content)[^a-z0-9]+(restrictions|guidelines|filters|policies|constraints)(?-u:\b)",
    ),
    (
        "fake_system_message",
        r"(^|[^a-z0-9])(\[|<\|?|#+[^a-z0-9]*)(system|admin|developer)(\]|\|?>)[^a-z0-9]*(override|instruction|message|update)",
    ),
];

/// Markdown images or links whose URL carries a query: the classic exfiltration channel of
/// indirect injection (the model is told to put data in the URL). Matched on the NFKC text,
/// since the scan form folds `!` and digits.
const EXFILTRATION: &str = r"(?i)!\[[^\]]{0,200}\]\(\s*https?://[^)\s]{1,200}[?&][^)\s]{0,200}=";

fn rule_set() -> &'static (RegexSet, Regex) {
    static SET: OnceLock<(RegexSet, Regex)> = OnceLock::new();
    SET.get_or_init(|| {
        (
            RegexSet::new(RULES.iter().map(|(_, p)| *p)).expect("rules compile"),
            Regex::new(EXFILTRATION).expect("rule compiles"),
        )
    })
}

/// The reasons of the rules that match, deduplicated, in rule order.
pub fn matches(scan: &str, nfkc: &str) -> Vec<&'static str> {
    let (set, exfiltration) = rule_set();
    let mut reasons: Vec<&'static str> = Vec::new();
    for i in set.matches(scan).iter() {
        let reason = RULES[i].0;
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    if exfiltration.is_match(nfkc) {
        reasons.push("exfiltration_link");
    }
    reasons
}

/// Loads the rules now, so the first request does not compile them.
pub fn warm_up() {
    rule_set();
}
