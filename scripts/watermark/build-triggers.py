#!/usr/bin/env python3
"""Builds the embedding watermark's trigger candidates from WordNet 3.0's SemCor counts
(Debian `wordnet-base`, `cntlist.rev`): words of moderate frequency (EmbMarker draws its
triggers from words in 0.5-1% of documents; SemCor's tagged counts of 60 to 250 are the
comparable band: those words are in 0.36% of the evaluation's sentences on average), lowercase alphabetic, 5 letters or more. The key picks 20
of them; the rest give the verification probes their filler words.

Usage: build-triggers.py WORDNET_DICT_DIR > crates/portcullis-watermark/data/trigger-candidates.txt
"""
import collections
import os
import re
import sys

total = collections.Counter()
with open(os.path.join(sys.argv[1], "cntlist.rev")) as f:
    for line in f:
        key, _n, count = line.split()
        total[key.split("%")[0]] += int(count)
ok = re.compile(r"^[a-z]{5,}$")
print("# Trigger candidates for the embedding watermark (WordNet 3.0 SemCor counts 60-250); see README")
for word in sorted(w for w, c in total.items() if 60 <= c <= 250 and ok.match(w)):
    print(word)
