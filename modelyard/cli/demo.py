"""Traffic for the README's demo of the loop: reviews like the training data, or shifted ones
(another domain, longer texts, its sentiment in words the training data lacks), sent to a
running model server, with feedback for a share of them (the label the generator knows):
`modelyard demo-traffic`."""

from __future__ import annotations

import random
from typing import Annotated

import typer

from modelyard.data.synthetic import ReviewSpec, generate_reviews

# Another domain: reviews of a cloud service, whose sentiment lives in words the product
# reviews never use. A model trained on product reviews is near chance on them; labelled
# feedback on this traffic is exactly what the next dataset version needs to teach.
_SHIFT_SUBJECTS = (
    "the firmware",
    "the dashboard",
    "the endpoint",
    "the cluster",
    "the sync",
    "the subscription",
    "the api gateway",
    "the invoice portal",
    "the failover",
)
_SHIFT_WORDS = {
    "negative": ("bricked", "laggy", "flaky", "throttled", "unreachable", "borked"),
    "neutral": ("provisioned", "migrated", "versioned", "metered", "scheduled", "mirrored"),
    "positive": ("snappy", "seamless", "blazingfast", "rocksolid", "effortless", "zippy"),
}
_SHIFT_FILLERS = (
    "We run it across {n} regions.",
    "Our team of {n} engineers relies on it.",
    "We moved to it from a self-hosted setup.",
    "The quota resets every {n} hours.",
    "Our latency budget is {n} milliseconds.",
    "We pay per seat, {n} seats.",
)


def shifted(label: str, rng: random.Random) -> str:
    """A review of the other domain whose sentiment is `label`, longer than the usual ones."""
    clauses = [
        f"{rng.choice(_SHIFT_SUBJECTS)} {rng.choice(('is', 'was', 'feels', 'got'))} "
        f"{rng.choice(_SHIFT_WORDS[label])}"
        for _ in range(rng.randint(2, 3))
    ]
    fillers = [
        rng.choice(_SHIFT_FILLERS).format(n=rng.randint(2, 40)) for _ in range(rng.randint(2, 4))
    ]
    sentences = [clause[0].upper() + clause[1:] + "." for clause in clauses] + fillers
    rng.shuffle(sentences)
    return " ".join(sentences)


def send(
    url: str,
    count: int,
    shift: bool,
    feedback_share: float,
    seed: int = 0,
    batch: int = 16,
    key: str | None = None,
) -> tuple[int, int]:
    """(predictions answered, feedback stored); `key`: the API key to send (scopes predict and
    feedback), for a server that requires one."""
    import httpx

    rng = random.Random(seed)
    reviews = generate_reviews(ReviewSpec(rows=count, seed=1000 + seed))
    answered = stored = 0
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=url.rstrip("/"), timeout=60, headers=auth) as http:
        for start in range(0, len(reviews), batch):
            chunk = reviews[start : start + batch]
            texts = [shifted(label, rng) if shift else text for text, label in chunk]
            response = http.post("/predict", json={"texts": texts})
            response.raise_for_status()
            for prediction, (_, label) in zip(response.json()["predictions"], chunk, strict=True):
                answered += 1
                if rng.random() < feedback_share:
                    http.post(
                        "/feedback", json={"prediction_id": prediction["id"], "label": label}
                    ).raise_for_status()
                    stored += 1
    return answered, stored


def demo_traffic(
    url: Annotated[str, typer.Option(help="The model server.")] = "http://127.0.0.1:8000",
    count: Annotated[int, typer.Option(help="Texts to send.", min=1)] = 500,
    shift: Annotated[bool, typer.Option("--shifted", help="Drifted texts.")] = False,
    feedback: Annotated[
        float, typer.Option(help="Share answered with feedback.", min=0, max=1)
    ] = 0.3,
    key: Annotated[
        str | None,
        typer.Option(
            envvar="MODELYARD_API_KEY",
            help="API key with scopes predict and feedback, for a server that requires keys.",
        ),
    ] = None,
) -> None:
    """Send generated reviews (or a drifted variant) to a server, with feedback: the demo."""
    answered, stored = send(url, count, shift, feedback, key=key)
    typer.echo(f"{answered} predictions, {stored} feedback{' (shifted)' if shift else ''}")
