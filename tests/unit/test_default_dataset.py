"""Data tests for the project's own default dataset."""

from collections import Counter

import pytest

from modelyard.data.identity import dvc_pointer_md5
from modelyard.data.synthetic import LABELS, ReviewSpec, generate_reviews, reviews_csv


@pytest.fixture(scope="module")
def rows():
    return generate_reviews()


def test_generator_reproduces_the_committed_dvc_version(repo):
    import hashlib

    committed = dvc_pointer_md5(repo / "data" / "reviews.csv")
    assert committed is not None, "data/reviews.csv.dvc must be committed"
    assert hashlib.md5(reviews_csv()).hexdigest() == committed


def test_default_dataset_is_also_reviews_at_version_1(repo):
    """One version, two names: the catalog's pointer holds the same DVC hash as the default's."""
    import yaml

    pointer = yaml.safe_load((repo / "data/datasets/reviews/v1.csv.dvc").read_text())
    assert pointer["outs"][0]["md5"] == dvc_pointer_md5(repo / "data" / "reviews.csv")
    assert pointer["meta"]["rows"] == 3600 and pointer["meta"]["version"] == 1


def test_shape_and_classes(rows):
    assert len(rows) >= 3000
    counts = Counter(label for _, label in rows)
    assert set(counts) == set(LABELS)
    assert min(counts.values()) / max(counts.values()) > 0.9  # balanced, give or take the noise
    assert all(text.strip() for text, _ in rows)


def test_varied_length_negation_and_mixed_sentiment(rows):
    words = [len(text.split()) for text, _ in rows]
    assert min(words) <= 5 and max(words) >= 40
    texts = [text for text, _ in rows]
    assert sum("not " in t or "n't " in t for t in texts) > len(rows) * 0.2
    assert sum(", but " in t or ", although " in t for t in texts) > len(rows) * 0.1


def test_label_noise_is_present():
    clean = generate_reviews(ReviewSpec(label_noise=0.0))
    noisy = generate_reviews()
    flipped = sum(a != b for (_, a), (_, b) in zip(clean, noisy, strict=True))
    assert 0.02 * len(clean) < flipped < 0.06 * len(clean)


def test_not_trivially_separable(rows):
    """A bag-of-words baseline learns a lot but is far from perfect; majority class is ~1/3."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    texts, labels = zip(*rows, strict=True)
    x_train, x_test, y_train, y_test = train_test_split(
        texts, labels, test_size=0.2, random_state=0, stratify=labels
    )
    vectorizer = CountVectorizer(ngram_range=(1, 2))
    model = LogisticRegression(max_iter=2000).fit(vectorizer.fit_transform(x_train), y_train)
    accuracy = model.score(vectorizer.transform(x_test), y_test)
    assert 0.6 < accuracy < 0.9
    majority = Counter(y_test).most_common(1)[0][1] / len(y_test)
    assert majority < 0.36


def test_deterministic():
    assert reviews_csv(ReviewSpec(rows=300, seed=3)) == reviews_csv(ReviewSpec(rows=300, seed=3))
    assert reviews_csv(ReviewSpec(rows=300, seed=3)) != reviews_csv(ReviewSpec(rows=300, seed=4))
