//! Hand-written rules over the scan form: each names the technique it recognises, which
//! becomes the reason given for a decision. They catch the classic phrasings with certainty;
//! the classifier catches the paraphrases.

use crate::searcher::Searcher;
use std::sync::OnceLock;

/// (reason, pattern) over the scan form (lower case, confusables and leetspeak folded).
/// Word boundaries are ASCII (`(?-u:\b)`) and separators explicit classes: Unicode word
/// boundaries would push the regex engine off its fast path on non-ASCII text. The set runs
/// over bytes with Unicode off (`[^a-z0-9]` is one byte class, not a UTF-8 automaton: 2 us
/// less per 2 KB prompt), so non-ASCII letters are written as alternatives, `(ç|c)`, never
/// inside a class.
const RULES: &[(&str, &str)] = &[
    // Data that speaks to the model reading it ("Note to the AI assistant reading this",
    // "If you are an AI processing this"): how indirect injections in documents, resumes and
    // web pages begin. Nothing a person writes to a person reads so.
    (
        "addresses_the_model",
        r"(?-u:\b)((note|message|instructions?|reminder)[^a-z0-9]+(to|for)[^a-z0-9]+(the[^a-z0-9]+|any[^a-z0-9]+|all[^a-z0-9]+)?(ai|llm|language[^a-z0-9]+model|ai[^a-z0-9]+assistant|chatbot)s?|(if[^a-z0-9]+you[^a-z0-9]+are|you[^a-z0-9]+are|dear|attention|hey)[^a-z0-9]+(an?[^a-z0-9]+|the[^a-z0-9]+)?(ai|llm|language[^a-z0-9]+model|ai[^a-z0-9]+assistant|chatbot|ai[^a-z0-9]+agent)([^a-z0-9]+model)?[^a-z0-9]+(reading|processing|summari[sz]ing|parsing|reviewing|analy[sz]ing)[^a-z0-9]+(this|these))(?-u:\b)",
    ),
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
        "instruction_override",
        r"(?-u:\b)(ignore|disregard|forget)[^a-z0-9]+(all[^a-z0-9]+)?(the[^a-z0-9]+)?(provided|given|supplied)[^a-z0-9]+(context|articles?|documents?|instructions|information)(?-u:\b)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)(leave|put)[^a-z0-9]+(all[^a-z0-9]+)?(the[^a-z0-9]+)?(previous|prior|above|earlier)[^a-z0-9]+(information|instructions|tasks?|orders)[^a-z0-9]+behind(?-u:\b)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)(concentrate|focus)[^a-z0-9]+on[^a-z0-9]+(your|the|a)[^a-z0-9]+new[^a-z0-9]+(task|assignment|instructions?)(?-u:\b)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)(despite|regardless[^a-z0-9]+of|contrary[^a-z0-9]+to)[^a-z0-9]+(what|anything|everything|whatever)[^a-z0-9]+you[^a-z0-9]+(ve[^a-z0-9]+|have[^a-z0-9]+)?(been[^a-z0-9]+)?(told|instructed|programmed)(?-u:\b)",
    ),
    (
        "guardrail_removal",
        r"(?-u:\b)(can|should|must|may|to)[^a-z0-9]+((totally|just|now|simply|safely)[^a-z0-9]+)?(ignore|disregard|bypass)[^a-z0-9]+((the|your|all|any)[^a-z0-9]+)*(safety|ethical|ethics|moral|content[^a-z0-9]+polic)",
    ),
    (
        "role_override",
        r"(?-u:\b)you[^a-z0-9]+are[^a-z0-9]+no[^a-z0-9]+longer[^a-z0-9]+(chatgpt|an?[^a-z0-9]+(ai|assistant|language[^a-z0-9]+model|chatbot)|bound|restricted|limited|censored)(?-u:\b)",
    ),
    (
        "role_override",
        r"(?-u:\b)pretend(ing)?[^a-z0-9]+to[^a-z0-9]+be[^a-z0-9]+an?[^a-z0-9]+(evil|unrestricted|unfiltered|uncensored|malicious|unethical)(?-u:\b)",
    ),
    (
        "system_prompt_extraction",
        r"(?-u:\b)what[^a-z0-9]+are[^a-z0-9]+you[^a-z0-9]+not[^a-z0-9]+(supposed|allowed|permitted)[^a-z0-9]+to[^a-z0-9]+(tell|say|reveal|share|disclose)(?-u:\b)",
    ),
    (
        "system_prompt_extraction",
        r"(?-u:\b)(share|reveal|disclose|print|output|dump|show[^a-z0-9]+me)[^a-z0-9]+(me[^a-z0-9]+)?your[^a-z0-9]+((configuration|config)([^a-z0-9]*([.?\n]|$)|[^a-z0-9]+(for|in|with|now|so|and|as|to)(?-u:\b))|(system[^a-z0-9]+(prompt|message|instructions)|initial[^a-z0-9]+(prompt|instructions)|hidden[^a-z0-9]+instructions)(?-u:\b))",
    ),
    (
        "system_prompt_extraction",
        r"(?-u:\b)what[^a-z0-9]+(are|were)[^a-z0-9]+your[^a-z0-9]+(instructions|system[^a-z0-9]+prompt|initial[^a-z0-9]+prompt|initial[^a-z0-9]+instructions)(?-u:\b)",
    ),
    (
        "system_prompt_extraction",
        r"(?-u:\b)(text|prompt|instructions|message)[^a-z0-9]+you[^a-z0-9]+were[^a-z0-9]+given[^a-z0-9]+(initially|at[^a-z0-9]+the[^a-z0-9]+(start|beginning)|first|earlier|before)(?-u:\b)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)(answer|respond|reply)[^a-z0-9]+(only[^a-z0-9]+)?(by|from|with)[^a-z0-9]+your[^a-z0-9]+own[^a-z0-9]+knowledge[^a-z0-9]+(and[^a-z0-9]+)?(not|instead[^a-z0-9]+of)[^a-z0-9]+(by[^a-z0-9]+|from[^a-z0-9]+|with[^a-z0-9]+|using[^a-z0-9]+)?the[^a-z0-9]+(provided[^a-z0-9]+|given[^a-z0-9]+)?(articles?|documents?|context|texts?|sources)(?-u:\b)",
    ),
    // Agents told to act without asking, and SQL smuggled into a tool's arguments.
    (
        "tool_abuse",
        r"(?-u:\b)(call|use|invoke|run|trigger)[^a-z0-9]+the[^a-z0-9]+[a-z_]+[^a-z0-9]+(tool|function|api)[^a-z0-9]+without[^a-z0-9]+(any[^a-z0-9]+)?(approval|confirmation|confirming|asking|permission|authori[sz]ation)(?-u:\b)",
    ),
    (
        "tool_abuse",
        r";[^a-z0-9]*(drop|truncate)[^a-z0-9]+table[^a-z0-9]+[a-z0-9_.`\x22]+[^a-z0-9]*;?[^a-z0-9]*--",
    ),
    (
        "system_prompt_extraction",
        r"(?-u:\b)(console[^a-z0-9]+log|print|printf|echo|puts|output)[^a-z0-9]*\([^a-z0-9]*(this[^a-z0-9]*)?(system|initial|hidden)[^a-z0-9]*prompt(?-u:\b)",
    ),
    // The same overrides in Spanish, Portuguese, Italian, French, German, Dutch, Polish and
    // Croatian/Serbian/Bosnian, the languages attackers switch to when English is filtered
    // (accented letters stay as they are in the scan form).
    (
        "instruction_override",
        r"(?-u:\b)(olvid[ae]n?|ignoren?|ignora|descarta|omite|esque(ç|c)a|esquece|dimentica(te)?|ignorate|oubliez|oublie|ignorez)[^a-z0-9]+((todas|todos|toutes|tous|tutte|tutti)[^a-z0-9]+)?((las|los|as|os|les|le|tus|tes|vos|sus|suas)[^a-z0-9]+)?(instrucciones|indicaciones|instru(ç|c)(õ|o)es|istruzioni|instructions|consignes|directives|r(e|è)gles|reglas|regras|regole)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)olvid(a|ar|e)[^a-z0-9]+todo(?-u:\b)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)(ignoriere|ignorieren[^a-z0-9]+sie|vergiss|vergessen[^a-z0-9]+sie|missachte)[^a-z0-9]+((alle|die|deine|ihre)[^a-z0-9]+)?((vorherigen|bisherigen|obigen|vorigen)[^a-z0-9]+)?(anweisungen|instruktionen|befehle|regeln|aufgaben|vorgaben)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)abweichend[^a-z0-9]+(zu|von)[^a-z0-9]+(den[^a-z0-9]+)?(vorherigen|bisherigen|obigen)[^a-z0-9]+(instruktionen|anweisungen|vorgaben)",
    ),
    (
        "instruction_override",
        r"(?-u:\b)(vergeet|negeer|zapomnij|zignoruj|ignoruj|zaboravi(te)?|ignoriraj(te)?|ignori(s|š)i(te)?)[^a-z0-9]+((alle|wszystkie|sve)[^a-z0-9]+)?((vorige|eerdere|poprzednie|prethodne)[^a-z0-9]+)?(instructies|opdrachten|instrukcje|polecenia|instrukcije|upute|uputstva|naredbe)",
    ),
    // Script URLs in markdown links: a click runs the attacker's code.
    ("exfiltration_link", r"\]\(\s*javascript:"),
    (
        "fake_system_message",
        r"(^|[^a-z0-9])(\[|<\|?|#+[^a-z0-9]*)(system|admin|developer)(\]|\|?>)[^a-z0-9]*(override|instruction|message|update)",
    ),
];

/// (reason, pattern) over the NFKC text, any case, for scripts the scan form garbles (it folds
/// Cyrillic letters to their Latin look-alikes): overrides in Russian and Chinese. Run only
/// when the text holds such letters. `~` stands for a separator (anything but letters and
/// digits).
const NON_LATIN_RULES: &[(&str, &str)] = &[
    (
        "instruction_override",
        r"(забудь(те)?|игнорируй(те)?|проигнорируй(те)?)~((все|всё)~)?((предыдущие|прошлые)~)?(инструкции|указания|правила|что)",
    ),
    (
        "instruction_override",
        r"(忽略|忘记|忘掉|无视)(之前|以上|上面|先前|前面|所有|全部)",
    ),
];

/// Markdown images whose URL query holds a placeholder for the model to fill (`?q=[QUERY]`,
/// `?d={data}`, `?data=SECRET`): the classic exfiltration channel of indirect injection. A query alone is
/// not one: every README badge has `?style=flat` (pasted READMEs were flagged). Matched on
/// the NFKC text, since the scan form folds `!` and digits.
const EXFILTRATION: &str = r"(?i)!\[[^\]]{0,200}\]\(\s*https?://[^)\s]{1,200}[?&][^)\s=]{0,40}=\s*(?:\[|\{|<|\$|%7b|%5b|%3c|(?-i:[A-Z][A-Z_]{3,})\b)";

/// What `~` in [`NON_LATIN_RULES`] stands for.
const SEPARATOR: &str = r"[^\p{L}\p{N}]+";

struct Rules {
    scan: Searcher,
    non_latin: Searcher,
    exfiltration: Searcher,
}

fn rule_set() -> &'static Rules {
    static SET: OnceLock<Rules> = OnceLock::new();
    SET.get_or_init(|| Rules {
        scan: Searcher::bytes_set(
            &RULES
                .iter()
                .map(|(_, p)| format!("(?-u){p}"))
                .collect::<Vec<_>>(),
        )
        .expect("rules compile"),
        non_latin: Searcher::text_set(
            &NON_LATIN_RULES
                .iter()
                .map(|(_, p)| format!("(?i){}", p.replace('~', SEPARATOR)))
                .collect::<Vec<_>>(),
        )
        .expect("rules compile"),
        exfiltration: Searcher::text(EXFILTRATION).expect("rule compiles"),
    })
}

/// The reasons of the rules that match, deduplicated, in rule order. `non_latin`: whether
/// the text holds Cyrillic or CJK letters (the rules for those run only then).
pub fn matches(scan: &str, nfkc: &str, non_latin: bool) -> Vec<&'static str> {
    let rules = rule_set();
    let mut reasons: Vec<&'static str> = Vec::new();
    let mut add = |reason: &'static str| {
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    };
    for i in rules.scan.matching_patterns(scan.as_bytes()) {
        add(RULES[i].0);
    }
    if non_latin {
        for i in rules.non_latin.matching_patterns(nfkc.as_bytes()) {
            add(NON_LATIN_RULES[i].0);
        }
    }
    if rules.exfiltration.is_match(nfkc.as_bytes()) {
        add("exfiltration_link");
    }
    reasons
}

/// Loads the rules now, so the first request does not compile them.
pub fn warm_up() {
    rule_set();
}
