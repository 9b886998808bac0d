"""Traffic for the README's demo of the loop: reviews like the training data, or a shifted
variant (another domain's words, longer texts), sent to a running model server, with feedback
for a share of them (the label the generator knows)."""

from __future__ import annotations

import random

from modelyard.data.synthetic import ReviewSpec, generate_reviews

_SHIFT = ["firmware", "latency", "subscription", "invoice", "dashboard", "timeout", "cluster",
          "bandwidth", "quota", "endpoint", "regression", "throughput"]


def shifted(text: str, rng: random.Random) -> str:
    """The same review, padded with words of another domain (and so twice as long)."""
    extra = " ".join(rng.choice(_SHIFT) for _ in range(len(text.split())))
    return f"{text} {extra}"


def send(url: str, count: int, shift: bool, feedback_share: float, seed: int = 0,
         batch: int = 16) -> tuple[int, int]:
    """(predictions answered, feedback stored)."""
    import httpx

    rng = random.Random(seed)
    reviews = generate_reviews(ReviewSpec(rows=count, seed=1000 + seed))
    answered = stored = 0
    with httpx.Client(base_url=url.rstrip("/"), timeout=60) as http:
        for start in range(0, len(reviews), batch):
            chunk = reviews[start : start + batch]
            texts = [shifted(t, rng) if shift else t for t, _ in chunk]
            response = http.post("/predict", json={"texts": texts})
            response.raise_for_status()
            for prediction, (_, label) in zip(response.json()["predictions"], chunk,
                                              strict=True):
                answered += 1
                if rng.random() < feedback_share:
                    http.post("/feedback", json={"prediction_id": prediction["id"],
                                                 "label": label}).raise_for_status()
                    stored += 1
    return answered, stored
