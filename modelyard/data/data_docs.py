"""Data Docs: the Great Expectations validation results as self-contained HTML pages.

GX's own Data Docs renderer (`DefaultJinjaPageView`) loads Bootstrap, jQuery, Font Awesome,
Vega and its logo from CDNs, none of which the `great_expectations` package ships (it has only
its own stylesheet, fonts and images). Offline, and inside MLflow's artifact viewer (a
sandboxed frame on a blob: URL, where relative links go nowhere), its pages render unstyled,
with a blank pass/fail column (icons), a broken logo, dead "Home" and suite links, and
"__none__" / "None" where a run name and a data asset were never given. Inlining would mean
shipping half a front-end stack; instead these pages are rendered here from the same GX
validation results: every expectation GX ran, its configuration, pass or fail, and what GX
observed (counts, partial unexpected values, the bound). One inline stylesheet, no scripts, no
images, no links: `index.html` holds every suite on its own, so it reads the same from disk,
offline, and in MLflow. Each suite also gets its own page (`0-rows.html`...), equally
self-contained. The GX results themselves are kept as JSON next to them.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.data.validation import Check, ValidationReport

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:75em;margin:1em auto;padding:0 1em;"
    "color:#222;line-height:1.4}table{border-collapse:collapse;margin:.5em 0;width:100%}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}.pass{color:#fff;background:#2e7d32}.fail{color:#fff;"
    "background:#c62828}.pass,.fail{padding:0 6px;border-radius:3px;font-weight:600;"
    "white-space:nowrap}code{font-size:90%;word-break:break-word}table.meta{width:auto}"
    "details{margin:.6em 0}summary{cursor:pointer;font-weight:600}"
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _badge(success: bool) -> str:
    return '<b class="pass">pass</b>' if success else '<b class="fail">FAIL</b>'


def _scope(suite: str) -> str:
    """The `Check.scope` of a suite's checks: "rows (test file)" → "test file"."""
    return suite[suite.index("(") + 1 : -1] if "(" in suite else suite


def _titles(suite: str, results: Sequence[Any], checks: Sequence[Check]) -> list[Check | None]:
    """Each GX result's `Check` (its title and our reading of what was observed), matched by
    scope, expectation and column, in order (a suite may run one kind twice on a column)."""
    queue: dict[tuple[str, str, str | None], list[Check]] = {}
    for check in checks:
        queue.setdefault((check.scope, check.expectation, check.column), []).append(check)
    out: list[Check | None] = []
    for result in results:
        config = result.expectation_config
        waiting = queue.get((_scope(suite), config.type, config.kwargs.get("column")), [])
        out.append(waiting.pop(0) if waiting else None)
    return out


def _configuration(kwargs: dict[str, Any]) -> str:
    shown = {k: v for k, v in kwargs.items() if k not in {"batch_id", "column"}}
    return "<br>".join(
        f"{_e(k)} = <code>{_e(json.dumps(v, default=str))}</code>" for k, v in shown.items()
    )


def _observed(result: Any) -> str:
    """What GX observed, as GX recorded it (SUMMARY format)."""
    info = result.result or {}
    parts = []
    if info.get("observed_value") is not None:
        parts.append(f"observed value <code>{_e(info['observed_value'])}</code>")
    if "unexpected_count" in info:
        parts.append(
            f"{_e(info['unexpected_count'])} unexpected of {_e(info.get('element_count', '?'))}"
            f" ({float(info.get('unexpected_percent') or 0):.3g}%)"
        )
    examples = info.get("partial_unexpected_list") or []
    if examples:
        parts.append(f"e.g. <code>{_e(json.dumps(examples[:10], default=str))}</code>")
    exception = result.exception_info or {}
    if exception.get("raised_exception"):
        parts.append(f"raised: {_e(exception.get('exception_message'))}")
    return "; ".join(parts) or "—"


def _suite_table(suite: str, result: Any, checks: Sequence[Check]) -> str:
    rows = []
    for gx_result, check in zip(
        result.results, _titles(suite, result.results, checks), strict=True
    ):
        config = gx_result.expectation_config
        rows.append(
            f"<tr><td>{_badge(bool(gx_result.success))}</td>"
            f"<td>{_e(check.title if check else config.type)}</td>"
            f"<td><code>{_e(config.type)}</code></td><td>{_e(config.kwargs.get('column') or '')}"
            f"</td><td>{_configuration(config.kwargs)}</td><td>{_observed(gx_result)}</td>"
            f"<td>{_e(check.detail) if check else ''}</td></tr>"
        )
    return (
        "<table><tr><th>result</th><th>check</th><th>expectation</th><th>column</th>"
        "<th>configuration</th><th>observed (GX)</th><th>what it means</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _suite_section(suite: str, result: Any, checks: Sequence[Check], source: str) -> str:
    stats = result.statistics or {}
    passed, total = stats.get("successful_expectations", 0), stats.get("evaluated_expectations", 0)
    return (
        f"<details{'' if result.success else ' open'}><summary>Suite <q>{_e(suite)}</q>: "
        f"{_badge(bool(result.success))} {passed} of {total} expectations passed; data asset "
        f"<q>{_e(asset_name(source, suite))}</q></summary>"
        f"{_suite_table(suite, result, checks)}</details>"
    )


def asset_name(source: str, suite: str) -> str:
    """What a suite ran on, named for a person (GX's own name is a placeholder)."""
    what = {
        "statistics": "dataset-level figures (one-row table)",
        "records": "how the file's records were read (one-row table)",
    }.get(suite.split()[0], "rows as read")
    scope = _scope(suite)
    return f"{source}, {'' if scope in {suite, 'data'} else scope + ', '}{what}"


def _meta(report: ValidationReport, source: str, run_name: str) -> str:
    from importlib.metadata import version

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = {
        "Run name": run_name,
        "Data asset": source,
        "Validated": when,
        "Result": report.summary(),
        "Engine": f"Great Expectations {version('great_expectations')} (results: "
        "validation.json next to this page)",
    }
    return (
        '<table class="meta">'
        + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows.items())
        + "</table>"
    )


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _summary_table(checks: Sequence[Check]) -> str:
    rows = "".join(
        f"<tr><td>{_badge(c.success)}</td><td>{_e(c.title)}</td><td>{_e(c.scope)}</td>"
        f"<td><code>{_e(c.expectation)}</code></td><td>{_e(c.detail)}</td></tr>"
        for c in checks
    )
    return (
        "<table><tr><th>result</th><th>check</th><th>scope</th><th>expectation</th>"
        f"<th>observed</th></tr>{rows}</table>"
    )


def render(report: ValidationReport, source: str, run_name: str) -> dict[str, str]:
    """Every page by file name: `index.html` (all of it) and one page per suite."""
    verdict = "passed" if report.success else "FAILED"
    head = f"<h1>Data validation of {_e(source)}: {verdict}</h1>{_meta(report, source, run_name)}"
    sections = {
        suite: _suite_section(suite, result, report.checks, source)
        for suite, result in report.results.items()
    }
    pages = {
        "index.html": _page(
            f"Data validation: {source}",
            f"{head}<h2>Every check</h2>{_summary_table(report.checks)}"
            f"<h2>By suite, as Great Expectations ran them</h2>{''.join(sections.values())}",
        )
    }
    for index, (suite, section) in enumerate(sections.items()):
        name = f"{index}-{suite.split()[0]}{'-test' if 'test' in suite else ''}.html"
        pages[name] = _page(
            f"Data validation: {source}, {suite}",
            f"{head}<p>One suite of this validation; index.html holds every suite.</p>"
            + section.replace("<details>", "<details open>", 1),
        )
    return pages
