//! The lexical choices the text watermark may make: families of two variants that mean the
//! same in every context the marker accepts. Synonym pairs come from WordNet 3.0, filtered
//! (by `scripts/watermark/build-lexicon.py`, then by a person) to pairs that are each word's
//! dominant meaning; negative contractions and a few spelling-free alternations are curated.
//! Both tables are compiled in; `data/README.md` gives their sources and licences.

use rustc_hash::FxHashMap;

const SYNONYMS: &str = include_str!("../data/synonyms.tsv");
const CURATED: &str = include_str!("../data/families.tsv");

/// One family: two ways to say the same thing.
#[derive(Debug, Clone)]
pub struct Family {
    /// Stable name: part of every keyed hash, so renaming a family orphans its evidence.
    pub name: String,
    /// The variants, lowercase; a variant is one word or two separated by one space.
    pub variants: [Variant; 2],
    /// How often writers choose variant A (0..1): the prior of the share the watermark keeps
    /// (see [`crate::shares`]).
    pub share_a: f64,
    /// Where a slot of this family is eligible.
    pub rules: Rules,
}

/// Conditions on a slot's surroundings, for families whose variants are not equivalent
/// everywhere ("it's" can be "it has"; "you are." cannot contract). They are functions of the
/// text alone, so the detector's null hypothesis stays exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// The slot's last word carries no punctuation ("as it is." stays).
    pub no_suffix: bool,
    /// Not right after these words ("what it is", "even though").
    pub not_after: Vec<String>,
    /// A one-word variant is not followed by these words ("it's been"); the marker waits for
    /// the next word to know.
    pub not_before: Vec<String>,
}

impl Rules {
    fn parse(text: &str) -> Rules {
        let mut rules = Rules::default();
        for rule in text.split(';').map(str::trim).filter(|r| !r.is_empty()) {
            let (name, words) = rule.split_once('=').unwrap_or((rule, ""));
            let words = || words.split('|').map(str::to_owned).collect();
            match name {
                "no_suffix" => rules.no_suffix = true,
                "not_after" => rules.not_after = words(),
                "not_before" => rules.not_before = words(),
                other => panic!("unknown family rule {other}"),
            }
        }
        rules
    }

    /// A one-word variant must wait for the next word.
    pub fn looks_ahead(&self) -> bool {
        !self.not_before.is_empty()
    }
}

/// One way of saying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variant {
    One(String),
    Two(String, String),
}

impl Variant {
    fn parse(text: &str) -> Variant {
        match text.split_once(' ') {
            Some((a, b)) => Variant::Two(a.to_owned(), b.to_owned()),
            None => Variant::One(text.to_owned()),
        }
    }

    /// The variant as written.
    pub fn text(&self) -> String {
        match self {
            Variant::One(w) => w.clone(),
            Variant::Two(a, b) => format!("{a} {b}"),
        }
    }

    /// Its first word.
    pub fn first(&self) -> &str {
        match self {
            Variant::One(w) | Variant::Two(w, _) => w,
        }
    }
}

/// Where a word can be a family's variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub family: u16,
    /// Which variant (0: A, 1: B).
    pub variant: u8,
}

/// All families, and the lookups the marker and the detector use.
#[derive(Debug)]
pub struct Lexicon {
    families: Vec<Family>,
    /// One-word variants.
    single: FxHashMap<String, Member>,
    /// First words of two-word variants: the second word and the member.
    first_of_two: FxHashMap<String, Vec<(String, Member)>>,
}

impl Lexicon {
    /// The compiled-in lexicon.
    pub fn builtin() -> &'static Lexicon {
        static LEXICON: std::sync::OnceLock<Lexicon> = std::sync::OnceLock::new();
        LEXICON.get_or_init(|| Lexicon::from_tables(SYNONYMS, CURATED))
    }

    fn from_tables(synonyms: &str, curated: &str) -> Lexicon {
        let mut families = Vec::new();
        for line in data_lines(synonyms) {
            let f: Vec<&str> = line.split('\t').collect();
            let (a, b): (f64, f64) = (f[3].parse().unwrap_or(1.0), f[4].parse().unwrap_or(1.0));
            families.push(Family {
                name: format!("{}/{}", f[1], f[2]),
                variants: [Variant::parse(f[1]), Variant::parse(f[2])],
                share_a: a / (a + b),
                rules: Rules::default(),
            });
        }
        for line in data_lines(curated) {
            let f: Vec<&str> = line.split('\t').collect();
            families.push(Family {
                name: f[0].to_owned(),
                variants: [Variant::parse(f[1]), Variant::parse(f[2])],
                share_a: f[3].parse().unwrap_or(0.5),
                rules: Rules::parse(f.get(4).copied().unwrap_or("")),
            });
        }
        let mut single = FxHashMap::default();
        let mut first_of_two: FxHashMap<String, Vec<(String, Member)>> = FxHashMap::default();
        for (i, family) in families.iter().enumerate() {
            for (v, variant) in family.variants.iter().enumerate() {
                let member = Member {
                    family: i as u16,
                    variant: v as u8,
                };
                match variant {
                    Variant::One(w) => {
                        let previous = single.insert(w.clone(), member);
                        assert!(previous.is_none(), "{w} is in two families");
                    }
                    Variant::Two(a, b) => first_of_two
                        .entry(a.clone())
                        .or_default()
                        .push((b.clone(), member)),
                }
            }
        }
        Lexicon {
            families,
            single,
            first_of_two,
        }
    }

    pub fn families(&self) -> &[Family] {
        &self.families
    }

    pub fn family(&self, id: u16) -> &Family {
        &self.families[id as usize]
    }

    /// The family a one-word variant belongs to (`word` lowercase).
    pub fn single(&self, word: &str) -> Option<Member> {
        self.single.get(word).copied()
    }

    /// Whether `word` (lowercase) starts a two-word variant.
    pub fn starts_two(&self, word: &str) -> bool {
        self.first_of_two.contains_key(word)
    }

    /// The family `first second` (lowercase) is a variant of.
    pub fn two(&self, first: &str, second: &str) -> Option<Member> {
        self.first_of_two
            .get(first)?
            .iter()
            .find(|(s, _)| s == second)
            .map(|(_, m)| *m)
    }
}

fn data_lines(table: &str) -> impl Iterator<Item = &str> {
    table
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The indefinite article a word takes ("a" or "an"), for the words in the lexicon: a vowel
/// letter takes "an" except where it sounds like a consonant ("usually", "one").
pub fn takes_an(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    let vowel = w.starts_with(['a', 'e', 'i', 'o', 'u']);
    let consonant_sound = ["uni", "use", "usu", "uti", "eu", "one", "once"]
        .iter()
        .any(|p| w.starts_with(p));
    let silent_h = ["hour", "honest", "honor", "honour", "heir"]
        .iter()
        .any(|p| w.starts_with(p));
    (vowel && !consonant_sound) || silent_h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_lexicon_has_both_sources_and_no_word_in_two_families() {
        let lexicon = Lexicon::builtin();
        assert!(
            lexicon.families().len() >= 60,
            "{}",
            lexicon.families().len()
        );
        let nearly = lexicon.single("nearly").unwrap();
        assert_eq!(lexicon.single("almost").unwrap().family, nearly.family);
        assert_ne!(lexicon.single("almost").unwrap().variant, nearly.variant);
        let dont = lexicon.single("don't").unwrap();
        assert_eq!(lexicon.two("do", "not").unwrap().family, dont.family);
        for f in lexicon.families() {
            assert!(f.share_a > 0.0 && f.share_a < 1.0, "{}", f.name);
        }
    }

    #[test]
    fn articles() {
        assert!(takes_an("immense"));
        assert!(!takes_an("huge"));
        assert!(!takes_an("usually"));
        assert!(takes_an("hour"));
    }
}
