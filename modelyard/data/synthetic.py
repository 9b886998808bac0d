"""The project's own default dataset: synthetic product reviews, three classes.

Each review is built from aspect clauses with a latent polarity, optional negation, filler
sentences and an optional verdict. The label is a rule over the *summed* polarity, so a bag of
words that sees "terrible" in "the battery is not terrible" is misled, mixed reviews sit near the
class boundary, and a few percent of labels are flipped on purpose (real labels are noisy too).
Everything comes from one `random.Random(seed)`, and the CSV is written with the `csv` module, so
the same seed gives the same bytes — and therefore the same DVC hash — on every machine.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from pathlib import Path

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")

_PRODUCTS = (
    "headphones",
    "blender",
    "laptop",
    "phone case",
    "coffee maker",
    "backpack",
    "desk lamp",
    "keyboard",
    "vacuum",
    "water bottle",
    "smartwatch",
    "air fryer",
    "monitor",
    "pair of shoes",
    "tent",
    "camera",
    "kettle",
    "office chair",
    "router",
    "toaster",
    "speaker",
    "drill",
)
_ASPECTS = (
    "the battery",
    "the build quality",
    "the sound",
    "the price",
    "the design",
    "the setup",
    "customer service",
    "the screen",
    "the fabric",
    "the manual",
    "delivery",
    "the fit",
    "the size",
    "the noise level",
    "performance",
    "the app",
    "the packaging",
    "the warranty",
)
# Adjectives by polarity. Negating one moves it towards the middle, not to its opposite:
# "not terrible" is faint praise, "not amazing" is a mild complaint.
_ADJECTIVES: dict[int, tuple[str, ...]] = {
    2: ("excellent", "fantastic", "outstanding", "superb", "amazing", "brilliant"),
    1: ("good", "nice", "solid", "pleasant", "reliable", "impressive"),
    0: ("okay", "average", "acceptable", "standard", "unremarkable", "ordinary"),
    -1: ("poor", "weak", "disappointing", "flimsy", "mediocre", "annoying"),
    -2: ("terrible", "awful", "horrible", "useless", "dreadful", "appalling"),
}
_NEGATED_POLARITY = {2: -0.5, 1: -1.0, 0: -0.5, -1: 0.5, -2: 0.5}
_VERDICTS: dict[float, tuple[str, ...]] = {
    2.0: (
        "I would definitely recommend it.",
        "Would buy again in a heartbeat.",
        "Very happy with this purchase.",
        "I would not hesitate to recommend it.",
        "Honestly, I can't fault it.",
    ),
    0.0: (
        "It does the job.",
        "It's fine for the price.",
        "Not sure I would buy it again.",
        "It is what it is.",
        "Neither great nor bad, really.",
        "No regrets, no excitement.",
    ),
    -2.0: (
        "I would not recommend it.",
        "I am returning it.",
        "What a waste of money.",
        "I wouldn't buy it again.",
        "Save yourself the trouble.",
        "I really wanted to like it, but no.",
    ),
}
_FILLERS = (
    "I bought this {product} {when}.",
    "My partner uses it every day.",
    "I have owned a few of these before.",
    "It arrived in a {colour} box.",
    "I use it mostly at the weekend.",
    "It was a gift for my brother.",
    "I compared three models before choosing this one.",
    "The order took {days} days.",
    "I read a lot of reviews before buying.",
    "We keep it in the kitchen.",
    "It replaced an older {product} of mine.",
    "I am writing this after {when2} of use.",
)
_WHEN = ("last month", "two weeks ago", "in the sale", "for my new flat", "last year")
_WHEN2 = ("a week", "three months", "a year", "two days", "six weeks")
_COLOURS = ("grey", "white", "black", "blue", "brown")


@dataclass(frozen=True)
class ReviewSpec:
    """How the dataset is generated; the defaults make the shipped dataset."""

    rows: int = 3600
    seed: int = 20261128
    label_noise: float = 0.04


def _clause(rng: random.Random) -> tuple[str, float]:
    polarity = rng.choice((2, 1, 0, -1, -2))
    aspect = rng.choice(_ASPECTS)
    adjective = rng.choice(_ADJECTIVES[polarity])
    if rng.random() < 0.25:
        verb = rng.choice(("is not", "isn't", "was not", "is hardly"))
        return f"{aspect} {verb} {adjective}", _NEGATED_POLARITY[polarity]
    verb = rng.choice(("is", "was", "feels", "seems", "turned out to be"))
    intensifier = rng.choice(("", "", "", "really ", "quite ", "very "))
    return f"{aspect} {verb} {intensifier}{adjective}", float(polarity)


def _label_for(score: float) -> str:
    if score >= 1.5:
        return "positive"
    if score <= -1.5:
        return "negative"
    return "neutral"


def _sentence(text: str, rng: random.Random) -> str:
    end = "!" if rng.random() < 0.1 else "."
    return text[0].upper() + text[1:] + end


def _review(rng: random.Random) -> tuple[str, str]:
    """One review and its rule label (before noise)."""
    product = rng.choice(_PRODUCTS)
    clauses = [_clause(rng) for _ in range(rng.choice((1, 1, 2, 2, 3, 4)))]
    verdict_weight = rng.choice((None, None, 2.0, 0.0, -2.0))
    score = sum(p for _, p in clauses)
    sentences: list[str] = []
    fillers = rng.sample(_FILLERS, k=rng.choice((0, 0, 1, 1, 2, 3)))
    for filler in fillers:
        sentences.append(
            filler.format(
                product=product,
                when=rng.choice(_WHEN),
                when2=rng.choice(_WHEN2),
                colour=rng.choice(_COLOURS),
                days=rng.randint(2, 9),
            )
        )
    i = 0
    while i < len(clauses):
        # Join two clauses with a contrast word now and then: mixed reviews live here.
        if i + 1 < len(clauses) and rng.random() < 0.4:
            joiner = rng.choice((", but ", ", although ", " and ", ", while "))
            sentences.append(_sentence(clauses[i][0] + joiner + clauses[i + 1][0], rng))
            i += 2
        else:
            sentences.append(_sentence(clauses[i][0], rng))
            i += 1
    if verdict_weight is not None:
        sentences.append(rng.choice(_VERDICTS[verdict_weight]))
        # A verdict counts for more than any one aspect, and a neutral verdict pulls to the middle.
        score = score / 2 if verdict_weight == 0.0 else score + 1.5 * verdict_weight
    rng.shuffle(fillers)
    return " ".join(sentences), _label_for(score)


def generate_reviews(spec: ReviewSpec = ReviewSpec()) -> list[tuple[str, str]]:
    """Rows of (text, label), balanced across classes by rejection, then label noise."""
    rng = random.Random(spec.seed)
    per_class = {label: 0 for label in LABELS}
    quota = spec.rows // len(LABELS)
    rows: list[tuple[str, str]] = []
    while len(rows) < quota * len(LABELS):
        text, label = _review(rng)
        if per_class[label] < quota:
            per_class[label] += 1
            rows.append((text, label))
    noisy: list[tuple[str, str]] = []
    for text, label in rows:
        if rng.random() < spec.label_noise:
            label = rng.choice([other for other in LABELS if other != label])
        noisy.append((text, label))
    return noisy


def reviews_csv(spec: ReviewSpec = ReviewSpec()) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("text", "label"))
    writer.writerows(generate_reviews(spec))
    return buffer.getvalue().encode("utf-8")


def write_reviews(path: Path, spec: ReviewSpec = ReviewSpec()) -> Path:
    """Write the dataset atomically: a crash never leaves a half-written file under `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(reviews_csv(spec))
    tmp.replace(path)
    return path
