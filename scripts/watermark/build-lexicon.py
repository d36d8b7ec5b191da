#!/usr/bin/env python3
"""Builds the watermark's synonym pairs from WordNet 3.0 (Debian's `wordnet-base`).

Usage: build-lexicon.py WORDNET_DICT_DIR > crates/portcullis-watermark/data/synonyms.tsv

A pair is kept only when a substitution is safe without reading the sentence:
- both words are single lowercase alphabetic words of at least 3 letters, adjectives,
  adverbs or nouns (verbs are left out: their inflections need agreement);
- for each word, the shared synset is its dominant meaning across every part of speech:
  at least 90% of the word's sense-tagged occurrences (SemCor counts, `cntlist.rev`) are in
  it, with at least 3 tagged occurrences as evidence;
- neither word is marked by a usage domain (slang, vulgar, disparaging: WordNet's `;u`).
Each line: family id, word A, word B, tagged count of A in the sense, of B in the sense.
The counts give each variant's natural share, which the watermark keeps unchanged.
"""
import collections
import os
import re
import sys

root = sys.argv[1]
POS_FILES = {"n": "noun", "a": "adj", "r": "adv", "v": "verb"}
SS_TYPE_NUM = {"n": 1, "v": 2, "a": 3, "r": 4, "s": 5}

# sense key -> tag count; word -> total tag count (all parts of speech)
sense_count = {}
word_total = collections.Counter()
with open(os.path.join(root, "cntlist.rev")) as f:
    for line in f:
        key, _num, count = line.split()
        count = int(count)
        sense_count[key] = count
        word_total[key.split("%")[0]] += count


def synsets(pos):
    with open(os.path.join(root, "data." + POS_FILES[pos])) as f:
        for line in f:
            if line.startswith("  "):
                continue
            head, _, _gloss = line.partition("|")
            parts = head.split()
            offset, lex_filenum, ss_type = parts[0], int(parts[1]), parts[2]
            w_cnt = int(parts[3], 16)
            words = []
            i = 4
            for _ in range(w_cnt):
                word = re.sub(r"\(.*\)$", "", parts[i])
                words.append((word, int(parts[i + 1], 16)))
                i += 2
            p_cnt = int(parts[i])
            pointers = parts[i + 1 : i + 1 + 4 * p_cnt]
            symbols = pointers[0::4]
            yield offset, lex_filenum, ss_type, words, symbols


usage_marked = set()
all_synsets = []
for pos in ("n", "a", "r", "v"):
    for s in synsets(pos):
        all_synsets.append(s)
        offset, lex_filenum, ss_type, words, symbols = s
        if ";u" in symbols:
            usage_marked.update(w for w, _ in words)


def sense_key(word, ss_type, lex_filenum, lex_id):
    # Satellite adjectives need their head word; their counts are looked up by prefix.
    return f"{word}%{SS_TYPE_NUM[ss_type]}:{lex_filenum:02d}:{lex_id:02d}:"


def count_in(word, ss_type, lex_filenum, lex_id):
    prefix = sense_key(word, ss_type, lex_filenum, lex_id)
    return sum(c for k, c in sense_count.items() if k.startswith(prefix)) if ss_type == "s" else sense_count.get(prefix + ":", 0)


# Satellite lookups by prefix are slow: index once.
by_prefix = collections.defaultdict(int)
for k, c in sense_count.items():
    word, rest = k.split("%")
    fields = rest.split(":")
    by_prefix[f"{word}%{fields[0]}:{fields[1]}:{fields[2]}:"] += c

# Senses per word across every part of speech (index files).
senses = collections.Counter()
for pos in ("n", "a", "r", "v"):
    with open(os.path.join(root, "index." + POS_FILES[pos])) as f:
        for line in f:
            if not line.startswith("  "):
                fields = line.split()
                senses[fields[0]] += int(fields[2])

# Function words WordNet lists only as content words (its adverb "after" is mostly a
# preposition in text); they stay out.
FUNCTION_WORDS = set("""about above across after again against along also around away back
before behind below beneath beside besides between beyond down during else even ever far
first here however inside just last less like little more most much near next now off once
only out outside over past round since still then there though through together too under
until upon very well when where while within without yet""".split())

MAX_SENSES = 3
ok_word = re.compile(r"^[a-z]{3,}$")

# Read by a person, pair by pair: substitutions that WordNet's 1960s sense counts call safe
# but today's usage does not (a different register, a shifted meaning, a different part of
# speech in most text, or a medical or regional term).
REVIEWED_OUT = set("""terrific terrifying respective several given granted projected relieved
manpower men marketing selling pains striving pecs pectoral militia reserves person someone
lacking missing mandatory required cattle cows dad papa mama mamma jimdandy jimhickey
acetonemia ketosis dozens lots eyelid lid teen teenage absurd idiotic cowboy puncher cheery
sunny dingy gloomy exuberant riotous luxurious voluptuous intake uptake inherent underlying
diarrhea diarrhoea whiskey whisky detector sensor dictatorship tyranny disappointed frustrated
eternal interminable excessive extravagant financial fiscal forest woods futile vain
instructor teacher madman maniac preaching sermon blazing glaring blurred fuzzy curved curving
disordered scattered marked pronounced accepted recognized discovered observed draped wrapped
erudite learned gravely soberly haversack knapsack greatcoat overcoat grammatic grammatical
fiery flaming crimson flushed amorphous shapeless colossal prodigious dweller inhabitant
miscellaneous mixed mutely silently spire steeple slanting sloping absorbed engrossed
anxiously uneasily dreadful frightening ominous sinister impudent insolent indolent lazy
hoarse husky gaunt haggard placid tranquil glinting glittering longing yearning delicious
delightful exultant triumphant fervent impassioned anyhow anyway defender guardian
proficient skillful poignant touching inscription lettering locality vicinity
dependence dependency epoch era suitable suited usage utilization perhaps possibly concurrent
simultaneous lengthy prolonged decidedly definitely intelligible understandable classroom
schoolroom clarity clearness ammo ammunition""".split())
pairs = {}
for offset, lex_filenum, ss_type, words, symbols in all_synsets:
    if ss_type == "v":
        continue
    good = []
    for word, lex_id in words:
        if not ok_word.match(word) or word in usage_marked or word in FUNCTION_WORDS or word in REVIEWED_OUT:
            continue
        if senses[word] > MAX_SENSES:
            continue
        n = by_prefix.get(sense_key(word, ss_type, lex_filenum, lex_id), 0)
        total = word_total[word]
        if n >= 3 and n >= 0.9 * total:
            good.append((word, n))
    for i in range(len(good)):
        for j in range(i + 1, len(good)):
            (a, na), (b, nb) = sorted([good[i], good[j]])
            if a not in pairs and b not in pairs:
                pairs[a] = pairs[b] = (a, b, na, nb)

seen = set()
print("# family\tword_a\tword_b\tcount_a\tcount_b (WordNet 3.0, SemCor sense counts; see README)")
for n, (a, b, na, nb) in enumerate(sorted(set(pairs.values()))):
    print(f"syn{n}\t{a}\t{b}\t{na}\t{nb}")
