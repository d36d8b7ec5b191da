//! Words the simulated traffic is made of: subjects by area, and the phrasings people and
//! programs use. Hand-written for the simulator (no corpus); the detector's own keyword
//! lists are not reused, so the topic feature is not tested on its own vocabulary.

/// Subjects by area (the taxonomy a curriculum sweeps).
pub const SUBJECTS: &[&[&str]] = &[
    // math
    &[
        "the quadratic formula",
        "integration by parts",
        "Bayes' rule",
        "modular arithmetic",
        "eigen decomposition",
        "the central limit theorem",
        "proof by induction",
        "geometric series",
        "conditional expectation",
        "the law of cosines",
        "linear regression by least squares",
        "graph colouring",
    ],
    // code
    &[
        "a lock-free queue in Rust",
        "memoization in Python",
        "binary search on a sorted slice",
        "a REST handler in Go",
        "SQL window functions",
        "React state hooks",
        "garbage collection in the JVM",
        "tail recursion",
        "a trie for autocomplete",
        "async cancellation in Tokio",
        "regular expression backtracking",
        "dependency injection in Java",
    ],
    // science
    &[
        "photosynthesis",
        "plate tectonics",
        "the Krebs cycle",
        "quantum tunnelling",
        "entropy in closed systems",
        "natural selection",
        "black hole evaporation",
        "ocean acidification",
        "nuclear fusion in stars",
        "the double slit experiment",
        "enzyme kinetics",
        "the water cycle",
    ],
    // medicine
    &[
        "type 2 diabetes management",
        "how vaccines train immunity",
        "antibiotic resistance",
        "hypertension treatment",
        "the stages of sleep",
        "migraine triggers",
        "iron deficiency",
        "how statins work",
        "asthma inhalers",
        "concussion recovery",
    ],
    // law
    &[
        "adverse possession",
        "fair use in copyright",
        "the duty of care in negligence",
        "non-compete clauses",
        "GDPR data subject rights",
        "consideration in contract law",
        "strict liability",
        "the statute of frauds",
        "trademark dilution",
        "the exclusionary rule",
    ],
    // finance
    &[
        "compound interest",
        "bond duration",
        "dollar cost averaging",
        "the Black-Scholes model",
        "index fund fees",
        "inflation hedging",
        "discounted cash flow valuation",
        "capital gains tax",
        "mortgage amortization",
        "the yield curve",
    ],
    // history
    &[
        "the fall of the Western Roman Empire",
        "the Meiji Restoration",
        "the Hanseatic League",
        "the causes of the First World War",
        "the Silk Road",
        "the printing press in Europe",
        "the Haitian Revolution",
        "the Marshall Plan",
        "the Mughal Empire",
        "the Cold War arms race",
    ],
    // writing
    &[
        "a cover letter for a nursing job",
        "a eulogy for a grandfather",
        "a product description for hiking boots",
        "a wedding toast",
        "an op-ed on remote work",
        "a short mystery story",
        "a haiku sequence about autumn",
        "a LinkedIn post about a promotion",
        "a complaint letter to a landlord",
        "a children's bedtime story",
    ],
    // translation
    &[
        "a restaurant menu into Spanish",
        "a business email into German",
        "song lyrics into French",
        "a legal notice into Japanese",
        "a travel phrasebook into Italian",
        "a recipe into Portuguese",
        "a poem into Korean",
        "a safety manual into Arabic",
    ],
    // logic
    &[
        "the Monty Hall problem",
        "knights and knaves puzzles",
        "the liar paradox",
        "a river crossing puzzle",
        "Sudoku solving strategies",
        "syllogisms with negation",
        "the prisoner's dilemma",
        "Zeno's paradoxes",
    ],
    // business
    &[
        "a go-to-market plan for a SaaS product",
        "pricing a subscription tier",
        "reducing customer churn",
        "running an effective retrospective",
        "a hiring plan for a startup",
        "competitive analysis of meal kits",
        "OKRs for a support team",
        "negotiating a supplier contract",
    ],
    // data
    &[
        "cleaning a CSV of customer records",
        "a pivot table of monthly sales",
        "deduplicating contact lists",
        "joining two JSON exports",
        "outlier detection in sensor logs",
        "a schema for event tracking",
        "parsing dates in mixed formats",
    ],
    // agents
    &[
        "planning a multi-step web research task",
        "using a shell to find large files",
        "automating a browser checkout flow",
        "calling a weather API tool",
        "orchestrating tools to book travel",
        "a file system cleanup plan",
    ],
    // geography
    &[
        "the rivers of South America",
        "why deserts form",
        "the geography of Nepal",
        "population density in Asia",
        "the borders of Central Europe",
        "island formation in Hawaii",
    ],
    // arts
    &[
        "impressionist painting techniques",
        "the structure of a sonata",
        "film noir lighting",
        "the history of jazz improvisation",
        "Renaissance sculpture",
        "modern dance choreography",
    ],
];

/// How people open a question (chat users; varied, rarely templated).
pub const CHAT_OPENERS: &[&str] = &[
    "hey, quick question about",
    "can you help me understand",
    "I'm confused by",
    "what's the deal with",
    "my teacher mentioned",
    "so I was reading about",
    "could you give me a simple overview of",
    "I need some help with",
    "what do people usually get wrong about",
    "is it true that everyone struggles with",
    "how would you describe",
    "tell me something interesting about",
    "explain",
    "what is",
    "why does everyone talk about",
    "give me the gist of",
    "ELI5:",
    "I never understood",
    "question on",
    "do you know much about",
    "pls help, homework on",
    "im trying to learn",
    "in plain words, what's",
    "my friend and I argued about",
    "summarize",
    "how do experts think about",
    "what are the basics of",
    "where should a beginner start with",
    "any good way to remember",
    "compare the main views on",
];

pub const CHAT_TAILS: &[&str] = &[
    "?",
    ", thanks!",
    ". keep it short please",
    "? I have an exam tomorrow",
    " for a presentation at work",
    ", explain like I'm five",
    ". no jargon please",
    "? asking for a friend",
    "",
    "",
    "",
    " lol",
    "?? really lost here",
    ", in two paragraphs max",
    ". I'm a nurse if that matters",
    ". bullet points are fine",
    " (for my kid's project)",
    ", with sources if you can",
    ". I only have 5 minutes",
    "!!",
];

/// Chat follow-ups (later turns of a conversation).
pub const FOLLOW_UPS: &[&str] = &[
    "can you give an example?",
    "why is that?",
    "shorter please",
    "what about the opposite case?",
    "ok and how does that compare to what you said before?",
    "thanks, one more thing:",
    "I don't get the second part",
];

/// Reasoning cues a person may add.
pub const PERSON_COT: &[&str] = &[
    "Please explain it step by step.",
    "Walk me through it.",
    "Show your work so I can follow.",
    "step by step pls",
    "can you go step-by-step?",
    "Explain your reasoning, I want to learn it.",
    "think it through with me",
    "and walk me through the logic",
    "Show all your work, the teacher wants it.",
];

/// Areas by index into `SUBJECTS` (for the taxonomy sweep).
pub fn areas() -> usize {
    SUBJECTS.len()
}

/// Filler words for slot values (reviews, tickets, documents).
pub const FILLER: &[&str] = &[
    "the",
    "package",
    "arrived",
    "late",
    "and",
    "support",
    "was",
    "helpful",
    "but",
    "the",
    "battery",
    "drains",
    "quickly",
    "after",
    "update",
    "order",
    "refund",
    "screen",
    "works",
    "great",
    "otherwise",
    "customer",
    "invoice",
    "total",
    "due",
    "account",
    "password",
    "reset",
    "shipping",
    "address",
    "changed",
    "warranty",
    "broken",
    "hinge",
    "replacement",
    "fast",
    "delivery",
    "price",
    "quality",
    "size",
    "colour",
    "returned",
    "again",
];

/// Benchmark-style stems for evaluation harnesses.
pub const EVAL_STEMS: &[&str] = &[
    "Which of the following best describes",
    "What is the primary consequence of",
    "Which statement about the following is correct:",
    "Identify the false claim regarding",
];

/// The pieces a campaign builds its templates from: each campaign draws its own few
/// combinations (`{s}` is a subject slot, `{a}` an answer to grade), so two campaigns rarely
/// share a template, as two independent operators would not.
pub const TEMPLATE_PIECES: [&[&str]; 4] = [
    &[
        "Explain",
        "Describe in detail",
        "Teach me",
        "Write a thorough lesson on",
        "Give an expert account of",
        "Break down",
        "You are an expert teacher. Cover",
        "Produce a textbook-quality section on",
    ],
    &[
        "and solve a hard problem about it",
        "with a worked example",
        "including the main derivation",
        "and answer a difficult exam question on it",
        "and compare it with a related idea",
        "and list the common mistakes",
        "and grade this student answer about it: {a}",
        "as a question-answer pair for a dataset",
    ],
    &[
        "Think step by step and justify each step.",
        "Show your reasoning process in full.",
        "Reason carefully before the final answer.",
        "Use a chain of thought, then give the answer.",
        "Walk through each step.",
        "Explain every intermediate step.",
        "Score it with a rubric from 1 to 10 and explain each criterion.",
    ],
    &[
        "",
        "Be exhaustive.",
        "Format the answer as a textbook section.",
        "End with a one-line summary.",
    ],
];

/// A template without any cue (campaigns mix some in).
pub const CAMPAIGN_PLAIN: &[&str] = &[
    "Write a complete and long guide to {s}.",
    "Describe {s} in as much depth as you can.",
];

/// Pieces an adaptive campaign paraphrases its asks from (few are in any phrase list).
pub const PARAPHRASE_PIECES: [&[&str]; 4] = [
    &[
        "I'm studying",
        "Lately I've been curious about",
        "For my notes on",
        "Regarding",
        "Quick one on",
        "Help me with",
        "Thinking about",
        "Could you cover",
    ],
    &[
        "{s}",
        "the topic of {s}",
        "{s} in depth",
        "some aspects of {s}",
    ],
    &[
        "and lay out how you get there",
        "going one stage at a time",
        "showing how each part follows",
        "with your working",
        "spelling out every inference",
        "and narrate the derivation",
        "step by step",
        "carefully, explaining each step",
    ],
    &[
        "",
        "please.",
        "thanks!",
        "in detail.",
        "be thorough.",
        "take your time.",
    ],
];
