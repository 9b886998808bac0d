"""A model version's card: what the model is for, what it was trained on, how it was judged and
what it was trusted with — rendered from what the platform recorded, never typed by hand.

`CardFacts` is everything a card says, typed, each fact optional: a version registered before
a fact was recorded gets "not recorded" for it, never an error. The adapter
(`modelyard.adapters.cards`) reads the facts from the registry, the MLflow run and the audit
trail; this module only renders them, as Markdown and as one standalone HTML page (inline
styles and SVG, no script, no external reference).

Both renderings come from one outline (`outline`): sections of paragraphs, bullet lists,
tables and figures, written in a small subset of Markdown (`code`, **bold**, `[text](url)` links).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from modelyard import tags as tag
from modelyard.config import CardParams
from modelyard.evaluation.calibration import Calibration, reliability_svg
from modelyard.evaluation.gate import GateDecision

NOT_RECORDED = "not recorded"

# Limitations the data implies: a class with fewer training rows than this, or than this share
# of the largest class, is "rare" (its figures rest on few examples); fewer test texts than
# `FEW_TEST_TEXTS` make its test recall a rough estimate (the gate's own slice threshold).
FEW_TRAINING_ROWS = 100
RARE_SHARE = 0.25
FEW_TEST_TEXTS = 30
# Above this ECE the probabilities are off by enough to mislead a threshold set on them.
MISCALIBRATED_ECE = 0.05


@dataclass(frozen=True)
class DatasetInput:
    """One dataset input of the run (MLflow's `log_input`): `NAME@V/train` and its digest."""

    name: str
    digest: str
    rows: int | None = None
    file_md5: str | None = None


@dataclass(frozen=True)
class DataFacts:
    version: str | None = None  # NAME@V, or the file's `stem@md5`
    path: str | None = None
    md5: str | None = None  # the DVC content hash of the whole file
    git_commit: str | None = None  # the commit that pins the dataset
    splits: Mapping[str, int] = field(default_factory=dict)  # split → rows
    inputs: tuple[DatasetInput, ...] = ()
    class_mix: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # split → class → rows
    validation: str | None = None  # passed | failed
    validation_figures: Mapping[str, float] = field(default_factory=dict)
    data_docs: str | None = None  # a link (or the artifact path) of the Data Docs


@dataclass(frozen=True)
class TrainingFacts:
    backbone: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)  # the key `model.`/`train.` params
    device: str | None = None
    device_name: str | None = None
    precision: str | None = None
    steps: int | None = None
    best_epoch: int | None = None
    seconds: float | None = None
    # Over every attempt of the run: attempts, seconds, device_hours, energy_kwh, co2_kg, cost.
    compute: Mapping[str, float] = field(default_factory=dict)
    currency: str | None = None
    energy_source: str | None = None
    privacy_enabled: bool | None = None  # train.privacy.enabled as recorded
    dp_epsilon: float | None = None
    dp_delta: float | None = None
    params_hash: str | None = None
    code_commit: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)  # python, torch, transformers


@dataclass(frozen=True)
class EvaluationFacts:
    test_rows: int | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)  # accuracy, macro_f1, AUCs
    per_class: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    slices: Mapping[str, float] = field(default_factory=dict)  # length_short → accuracy
    production_version: str | None = None  # the production it was compared with
    production: Mapping[str, float] = field(default_factory=dict)  # its figures, same texts
    baselines: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    calibration: Calibration | None = None
    gate: GateDecision | None = None


@dataclass(frozen=True)
class ClassWords:
    label: str
    explained: int  # test texts predicted as the class that were explained
    words: tuple[tuple[str, float], ...]  # (word, total attribution), strongest first


@dataclass(frozen=True)
class Mistake:
    true: str
    predicted: str
    probability: float
    words: tuple[tuple[str, float], ...]  # the strongest words toward the wrong class


@dataclass(frozen=True)
class ExplanationFacts:
    method: str | None = None
    classes: tuple[ClassWords, ...] = ()
    mistakes: tuple[Mistake, ...] = ()


@dataclass(frozen=True)
class RuntimeVariant:
    runtime: str
    device: str
    passed: bool
    agreement: float
    accuracy_delta: float
    macro_f1_delta: float
    texts_per_s: Mapping[int, float] = field(default_factory=dict)  # batch size → texts/s
    size_mb: float = 0.0
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuntimeFacts:
    chosen: Mapping[str, str] = field(default_factory=dict)  # cpu | cuda → runtime
    variants: tuple[RuntimeVariant, ...] = ()


@dataclass(frozen=True)
class AliasMove:
    """One row of the audit trail that names this version (to or from)."""

    moved_at: datetime
    alias: str
    kind: str
    from_version: str | None
    to_version: str
    actor: str
    reason: str


@dataclass(frozen=True)
class CardFacts:
    model: str
    version: str
    generated_at: datetime
    source: str  # where the facts were read from, in a few words
    aliases: tuple[str, ...] = ()
    registered_at: datetime | None = None
    run_id: str | None = None
    run_link: str | None = None
    flow_run: str | None = None  # a link, or the Prefect flow run's id
    card: CardParams | None = None
    labels: tuple[str, ...] = ()
    positive_label: str | None = None
    status: Mapping[str, str] = field(default_factory=dict)  # approval, deploy, rejected tags
    data: DataFacts = DataFacts()
    training: TrainingFacts = TrainingFacts()
    evaluation: EvaluationFacts = EvaluationFacts()
    explanations: ExplanationFacts | None = None
    runtime: RuntimeFacts | None = None
    history: tuple[AliasMove, ...] | None = None  # None: the audit trail was not read


# --- the outline both renderings share --------------------------------------------------------


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figure:
    svg: str  # inline SVG, shown in HTML only
    caption: str


Block = str | list[str] | Table | Figure  # a paragraph, a bullet list, a table, a figure


@dataclass(frozen=True)
class Section:
    title: str
    blocks: list[Block]


@dataclass(frozen=True)
class Card:
    """A rendered card: its Markdown and its standalone HTML page."""

    markdown: str
    html: str


def render(facts: CardFacts) -> Card:
    title, sections = title_of(facts), outline(facts)
    return Card(to_markdown(title, sections), to_html(title, sections))


def title_of(facts: CardFacts) -> str:
    return f"Model card: {facts.model} version {facts.version}"


def outline(facts: CardFacts) -> list[Section]:
    return [
        _summary(facts),
        _intended_use(facts),
        _data(facts),
        _training(facts),
        _evaluation(facts),
        _explanations(facts),
        _runtimes(facts),
        _limitations(facts),
        _history(facts),
    ]


def _or(value: object, fmt: str = "{}") -> str:
    return NOT_RECORDED if value is None or value == "" else fmt.format(value)


def _num(value: float | None, digits: int = 4) -> str:
    return NOT_RECORDED if value is None else f"{value:.{digits}f}"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return NOT_RECORDED
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _summary(facts: CardFacts) -> Section:
    gate = facts.evaluation.gate
    verdict = gate.verdict if gate is not None else facts.status.get(tag.GATE_DECISION)
    lines: list[Block] = [
        f"Generated by ModelYard on {_when(facts.generated_at)} from {facts.source}: every "
        "figure below is one the platform recorded, none typed by hand. A fact an older "
        f"version predates reads *{NOT_RECORDED}*.",
        [
            f"**Aliases**: {', '.join('@' + a for a in facts.aliases) or 'none'}",
            f"**Gate**: {_or(verdict)}",
            f"**Registered**: {_when(facts.registered_at)}",
            f"**MLflow run**: {_link(facts.run_id, facts.run_link)}",
            f"**Prefect flow run**: {_or(facts.flow_run)}",
            *[
                f"**{key}**: {value}"
                for key, value in facts.status.items()
                if key != tag.GATE_DECISION
            ],
        ],
    ]
    return Section("Summary", lines)


def _link(text: str | None, url: str | None) -> str:
    if text is None:
        return NOT_RECORDED
    return f"[`{text}`]({url})" if url else f"`{text}`"


def _intended_use(facts: CardFacts) -> Section:
    card = facts.card
    if card is None:
        blocks: list[Block] = [f"Owner, intended use and out-of-scope uses: {NOT_RECORDED}."]
    else:
        blocks = [
            [f"**Owner**: {card.owner}", f"**Intended use**: {card.intended_use}"],
            "**Out of scope**:",
            [*card.out_of_scope] or ["none named"],
        ]
    labels = ", ".join(f"`{label}`" for label in facts.labels) or NOT_RECORDED
    positive = (
        f"; ROC-AUC and PR-AUC are of `{facts.positive_label}`" if facts.positive_label else ""
    )
    blocks.append(f"**Labels**: {labels}{positive}.")
    return Section("Intended use", blocks)


def _data(facts: CardFacts) -> Section:
    data = facts.data
    blocks: list[Block] = [
        [
            f"**Dataset version**: {_or(data.version, '`{}`')}",
            f"**File**: {_or(data.path, '`{}`')}, DVC md5 {_or(data.md5, '`{}`')}",
            f"**Pinned by git commit**: {_or(data.git_commit, '`{}`')}",
            "**Rows per split**: "
            + (", ".join(f"{k} {v}" for k, v in data.splits.items()) or NOT_RECORDED),
            f"**Validation**: {_or(data.validation)}; Data Docs: {_or(data.data_docs)}",
        ]
    ]
    if data.inputs:
        blocks.append(
            Table(
                ("dataset input", "digest (md5 of its rows)", "rows", "file md5"),
                tuple(
                    (f"`{i.name}`", f"`{i.digest}`", _or(i.rows), _or(i.file_md5, "`{}`"))
                    for i in data.inputs
                ),
            )
        )
    blocks.append(_class_mix(data.class_mix))
    if data.validation_figures:
        blocks.append(
            Table(
                ("dataset figure", "value"),
                tuple((name, f"{value:g}") for name, value in data.validation_figures.items()),
            )
        )
    return Section("Data", blocks)


def _class_mix(mix: Mapping[str, Mapping[str, int]]) -> Block:
    if not mix:
        return f"Class mix: {NOT_RECORDED}."
    splits = list(mix)
    labels = list(dict.fromkeys(label for counts in mix.values() for label in counts))
    rows = []
    for label in labels:
        cells = []
        for split in splits:
            count, size = mix[split].get(label, 0), sum(mix[split].values()) or 1
            cells.append(f"{count} ({count / size:.0%})")
        rows.append((f"`{label}`", *cells))
    return Table(("class", *splits), tuple(rows))


def _training(facts: CardFacts) -> Section:
    t = facts.training
    device = " ".join(x for x in (t.device, f"({t.device_name})" if t.device_name else "") if x)
    blocks: list[Block] = [
        [
            f"**Backbone**: {_or(t.backbone, '`{}`')}",
            f"**Device**: {_or(device or None)}, precision {_or(t.precision)}",
            f"**Steps**: {_or(t.steps)}, best epoch {_or(t.best_epoch)}, "
            f"training time {_or(t.seconds, '{:.1f} s')}",
            f"**Compute**: {_compute(t)}",
            f"**Differential privacy**: {_privacy(t)}",
            f"**Params hash**: {_or(t.params_hash, '`{}`')}, code commit "
            f"{_or(t.code_commit, '`{}`')}",
            "**Environment**: "
            + (", ".join(f"{k} {v}" for k, v in t.environment.items()) or NOT_RECORDED),
        ]
    ]
    if t.params:
        blocks.append(
            Table(("parameter", "value"), tuple((f"`{k}`", v) for k, v in t.params.items()))
        )
    return Section("Training", blocks)


def _compute(t: TrainingFacts) -> str:
    c = t.compute
    if not c:
        return NOT_RECORDED
    currency = f" {t.currency}" if t.currency else ""
    energy = f" ({t.energy_source})" if t.energy_source else ""
    return (
        f"{int(c.get('attempts', 1))} attempt(s), {c.get('seconds', 0.0):.1f} s, "
        f"{c.get('device_hours', 0.0):.4f} device-hours, "
        f"{c.get('energy_kwh', 0.0) * 1000:.2f} Wh{energy}, "
        f"{c.get('co2_kg', 0.0) * 1000:.3f} g CO2, cost {c.get('cost', 0.0):.4f}{currency}"
    )


def _privacy(t: TrainingFacts) -> str:
    if t.dp_epsilon is not None:
        delta = f" at δ = {t.dp_delta:g}" if t.dp_delta is not None else ""
        return f"DP-SGD, ε = {t.dp_epsilon:.3f}{delta}"
    if t.privacy_enabled is False:
        return "not used (`train.privacy.enabled: false`)"
    return NOT_RECORDED


def _evaluation(facts: CardFacts) -> Section:
    e = facts.evaluation
    blocks: list[Block] = [f"On {_or(e.test_rows)} test texts the model never trained on."]
    blocks.append(_scores(e))
    if e.per_class:
        blocks.append(
            Table(
                ("class", "precision", "recall", "F1", "test texts"),
                tuple(
                    (
                        f"`{label}`",
                        *(_num(scores.get(m)) for m in ("precision", "recall", "f1")),
                        _or(int(scores["support"]) if "support" in scores else None),
                    )
                    for label, scores in e.per_class.items()
                ),
            )
        )
    else:
        blocks.append(f"Per-class figures: {NOT_RECORDED}.")
    blocks.append(_slices(e))
    blocks += _calibration(e.calibration)
    blocks += _gate(e)
    return Section("Evaluation", blocks)


def _scores(e: EvaluationFacts) -> Block:
    if not e.metrics:
        return f"Test metrics: {NOT_RECORDED}."
    columns: list[tuple[str, Mapping[str, float]]] = [("this version", e.metrics)]
    if e.production:
        columns.append((f"production (v{_or(e.production_version)})", e.production))
    columns += [(f"baseline: {name.replace('_', ' ')}", v) for name, v in e.baselines.items()]
    rows = tuple(
        (metric, *(_num(values.get(metric)) for _, values in columns)) for metric in e.metrics
    )
    return Table(("metric", *(title for title, _ in columns)), rows)


def _slices(e: EvaluationFacts) -> Block:
    if not e.slices:
        return f"Per-length slices: {NOT_RECORDED} (or no bucket held enough test texts)."
    rows = []
    for name, value in e.slices.items():
        production = e.production.get(f"slice_{name}_accuracy")
        rows.append((f"`{name}`", _num(value), _num(production) if e.production else "—"))
    return Table(("text-length slice", "accuracy", "production"), tuple(rows))


def _calibration(result: Calibration | None) -> list[Block]:
    if result is None:
        return [f"**Calibration**: {NOT_RECORDED}."]
    rows = tuple(
        (f"{b.lower:.1f}–{b.upper:.1f}", str(b.count), _num(b.confidence), _num(b.accuracy))
        for b in result.bins
        if b.count
    )
    return [
        f"**Calibration**: {result.summary()}. Expected calibration error (ECE): the mean gap "
        "between confidence and accuracy over equal-width confidence bins, weighted by texts.",
        Figure(reliability_svg(result), "Reliability diagram (test split)"),
        Table(("confidence", "texts", "mean confidence", "accuracy"), rows),
    ]


def _gate(e: EvaluationFacts) -> list[Block]:
    gate = e.gate
    if gate is None:
        return [f"**Gate report**: {NOT_RECORDED}."]
    against = (
        f"against production version {e.production_version}"
        if e.production_version
        else "with no production to compare against (absolute thresholds)"
    )
    rows = tuple(
        (
            c.name,
            f"`{c.metric}`",
            _num(c.candidate),
            _num(c.production) if c.production is not None else "—",
            _num(c.threshold),
            "pass" if c.passed else "**FAIL**",
        )
        for c in gate.checks
    )
    blocks: list[Block] = [
        f"**Gate report**: {gate.verdict.upper()}, {against}.",
        Table(("check", "metric", "this version", "production", "threshold", "result"), rows),
        [*gate.reasons],
    ]
    if gate.notes:
        blocks += ["Comparison set:", [*gate.notes]]
    return blocks


def _explanations(facts: CardFacts) -> Section:
    x = facts.explanations
    if x is None:
        return Section("Explanations", [f"Explanation report: {NOT_RECORDED}."])
    words = [
        f"**{c.label}** ({c.explained} texts): "
        + (", ".join(f"`{w}` {a:+.2f}" for w, a in c.words) or "—")
        for c in x.classes
    ]
    mistakes = tuple(
        (
            f"`{m.true}`",
            f"`{m.predicted}` ({m.probability:.3f})",
            ", ".join(f"`{w}` {a:+.2f}" for w, a in m.words) or "—",
        )
        for m in x.mistakes
    )
    blocks: list[Block] = [
        _or(x.method),
        "Words carrying the most attribution toward each class (integrated gradients):",
        words or ["none"],
        "Most confident mistakes:",
        Table(("true", "predicted (p)", "strongest words toward it"), mistakes)
        if mistakes
        else "none among the texts explained.",
    ]
    return Section("Explanations", blocks)


def _runtimes(facts: CardFacts) -> Section:
    r = facts.runtime
    if r is None or not r.variants:
        return Section(
            "Runtimes",
            [f"Exported runtimes: {NOT_RECORDED} (no export: the PyTorch model answers)."],
        )
    chosen = ", ".join(f"{device}: `{name}`" for device, name in r.chosen.items()) or "none"
    batches = sorted({b for v in r.variants for b in v.texts_per_s})
    rows = tuple(
        (
            f"{v.device}/`{v.runtime}`",
            "pass" if v.passed else "**FAIL**",
            f"{v.agreement:.4f}",
            f"{v.accuracy_delta:+.4f}",
            f"{v.macro_f1_delta:+.4f}",
            *(f"{v.texts_per_s[b]:.0f}" if b in v.texts_per_s else "—" for b in batches),
            f"{v.size_mb:.1f}",
        )
        for v in r.variants
    )
    header: tuple[str, ...] = ("runtime", "parity", "agreement", "Δ accuracy", "Δ macro-F1")
    header += (*(f"texts/s @{b}" for b in batches), "MB")
    return Section(
        "Runtimes",
        [
            f"Chosen to answer: {chosen}. Each exported variant was checked against the PyTorch "
            "model the gate judged, on the test split:",
            Table(header, rows),
        ],
    )


def limitations(facts: CardFacts) -> list[str]:
    """What the recorded data implies the model is weak on, each in one sentence."""
    out = _rare_classes(facts.data.class_mix.get("train", {}))
    per_class = facts.evaluation.per_class
    for label, scores in per_class.items():
        support = scores.get("support")
        if support is not None and support < FEW_TEST_TEXTS:
            out.append(
                f"`{label}` has {int(support)} test texts: its test figures are rough estimates."
            )
    if per_class:
        weakest = min(per_class, key=lambda label: per_class[label].get("recall", 1.0))
        recall = per_class[weakest].get("recall")
        if recall is not None:
            out.append(f"Weakest class by recall: `{weakest}` ({recall:.4f}).")
    gate = facts.evaluation.gate
    for check in gate.checks if gate is not None else []:
        if check.name == "slice" and not check.passed:
            out.append(f"The gate flagged slice `{check.metric}`: {check.reason}.")
    out += _unmeasured_slices(facts.evaluation)
    calibration = facts.evaluation.calibration
    if calibration is not None and calibration.ece > MISCALIBRATED_ECE:
        lean = "over" if calibration.overconfident else "under"
        out.append(
            f"Probabilities are {lean}confident (ECE {calibration.ece:.3f}): a threshold on "
            "them does not mean what it says without recalibration."
        )
    return out


def _rare_classes(train: Mapping[str, int]) -> list[str]:
    if not train:
        return []
    largest = max(train.values()) or 1
    return [
        f"`{label}` has few training examples ({count} rows, {count / largest:.0%} of the "
        "largest class)."
        for label, count in train.items()
        if count < FEW_TRAINING_ROWS or count < RARE_SHARE * largest
    ]


def _unmeasured_slices(e: EvaluationFacts) -> list[str]:
    """Length buckets with too few test texts to be measured (or compared by the gate)."""
    from modelyard.evaluation.metrics import LENGTH_BUCKETS, MIN_SLICE_SUPPORT

    if not e.slices:
        return []
    missing = [
        f"length_{name}" for name, _, _ in LENGTH_BUCKETS if f"length_{name}" not in e.slices
    ]
    return [
        f"Slice `{name}` had fewer than {MIN_SLICE_SUPPORT} test texts: not measured, not gated."
        for name in missing
    ]


def _limitations(facts: CardFacts) -> Section:
    found = limitations(facts)
    if found:
        return Section("Limitations", [found])
    return Section(
        "Limitations",
        [
            "None that the recorded data implies (class mix, test support, gate slices, "
            "calibration)."
        ],
    )


def _history(facts: CardFacts) -> Section:
    if facts.history is None:
        return Section("History", [f"Audit trail: {NOT_RECORDED}."])
    if not facts.history:
        return Section("History", ["No alias has pointed at this version yet."])
    rows = tuple(
        (
            _when(m.moved_at),
            f"@{m.alias}",
            m.kind,
            f"{m.from_version or '—'} → {m.to_version}",
            m.actor,
            m.reason,
        )
        for m in facts.history
    )
    return Section(
        "History",
        [
            "Every alias move to or from this version (the audit trail; the card is refreshed "
            "on each):",
            Table(("when", "alias", "kind", "versions", "by", "why"), rows),
        ],
    )


# --- Markdown -------------------------------------------------------------------------------


def to_markdown(title: str, sections: list[Section], level: int = 1) -> str:
    """The card as Markdown; `level`: the title's heading level (sections one below)."""
    lines = [f"{'#' * level} {title}", ""]
    for section in sections:
        lines += [f"{'#' * (level + 1)} {section.title}", ""]
        for block in section.blocks:
            lines += [*_markdown_block(block), ""]
    return "\n".join(lines).rstrip() + "\n"


def _markdown_block(block: Block) -> list[str]:
    if isinstance(block, str):
        return [block]
    if isinstance(block, list):
        return [f"- {_one_line(item)}" for item in block]
    if isinstance(block, Figure):
        return [f"*{block.caption}: in the HTML card (`card/model_card.html`).*"]
    return [
        "| " + " | ".join(_cell(h) for h in block.header) + " |",
        "|" + "---|" * len(block.header),
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows),
    ]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return _one_line(text).replace("|", "\\|")


# --- HTML -----------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:64em;margin:1em auto;padding:0 1em;"
    "line-height:1.45;color:#222}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}code{background:#f5f5f5;padding:0 3px;border-radius:3px}"
    "figure{margin:.5em 0}figcaption{font-size:.9em;color:#555}"
)
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_EMPHASIS = re.compile(r"\*([^*]+)\*")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def inline_html(text: str) -> str:
    """The outline's inline Markdown (`code`, **bold**, *emphasis*, `[text](url)`), escaped; a
    link shows its address after its text."""
    out = html.escape(text)
    # The address as text, not a link: the page must read the same from disk and inside
    # MLflow's artifact viewer, a sandboxed frame where only in-page links work.
    out = _LINK.sub(r"\1 <small>(\2)</small>", out)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    return _EMPHASIS.sub(r"<em>\1</em>", out)


def to_html(title: str, sections: list[Section]) -> str:
    """The card as one standalone page: inline styles and SVG, no script, nothing loaded and no
    link (the addresses the facts carry are shown as text)."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [_html_block(block) for block in section.blocks]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def _html_block(block: Block) -> str:
    if isinstance(block, str):
        return f"<p>{inline_html(block)}</p>"
    if isinstance(block, list):
        return "<ul>" + "".join(f"<li>{inline_html(item)}</li>" for item in block) + "</ul>"
    if isinstance(block, Figure):
        return f"<figure>{block.svg}<figcaption>{html.escape(block.caption)}</figcaption></figure>"
    head = "".join(f"<th>{inline_html(h)}</th>" for h in block.header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{inline_html(c)}</td>" for c in row) + "</tr>" for row in block.rows
    )
    return f"<table><tr>{head}</tr>{rows}</table>"
