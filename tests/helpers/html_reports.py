"""Checks that an HTML report ModelYard writes renders fully with no network and reads the same
inside MLflow's artifact viewer (a sandboxed frame on a blob: URL, where only in-page links
work)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

PLACEHOLDERS = ("__none__", "Data asset: None", "Run name: None", ">None<")
# Attributes through which a page loads something, by tag.
LOADS = {"link": "href", "script": "src", "img": "src", "iframe": "src", "source": "src"}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[str] = []  # what the page would fetch
        self.links: list[str] = []  # where its <a> elements go
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in LOADS and values.get(LOADS[tag]):
            self.loads.append(str(values[LOADS[tag]]))
        if tag == "a" and values.get("href") is not None:
            self.links.append(str(values["href"]))
        if values.get("style"):
            self.styles.append(str(values["style"]))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def problems(page: str) -> list[str]:
    """What would not render offline or inside MLflow: anything loaded from elsewhere (tags,
    CSS url()/@import), links to other files, placeholder fields."""
    refs = _Refs()
    refs.feed(page)
    found = [f"loads {url}" for url in refs.loads]
    found += [f"links to {href}" for href in refs.links if not href.startswith("#")]
    found += [
        f"style fetches {url}"
        for css in refs.styles
        for url in re.findall(r"(?:url\(|@import)\s*['\"]?([^'\")\s]+)", css)
        if not url.startswith("data:")
    ]
    found += [f"placeholder {p!r}" for p in PLACEHOLDERS if p in page]
    if not page.lstrip().lower().startswith("<!doctype html>"):
        found.append("not a whole HTML page")
    return found


def assert_self_contained(path: Path, *must_contain: str) -> str:
    """The page at `path`, after checking it loads nothing, links nowhere, has no placeholder
    and shows each of `must_contain`."""
    page = path.read_text(encoding="utf-8")
    assert not problems(page), f"{path}: {problems(page)}"
    missing = [text for text in must_contain if text not in page]
    assert not missing, f"{path} does not show {missing}"
    return page


def _html_artifacts(client: Any, run_id: str, path: str | None = None) -> list[str]:
    found = []
    for entry in client.list_artifacts(run_id, path):
        if entry.is_dir:
            found += _html_artifacts(client, run_id, entry.path)
        elif entry.path.endswith(".html"):
            found.append(entry.path)
    return found


def download_html_reports(home: Path, run_id: str, target: Path) -> dict[str, Path]:
    """Every HTML artifact of the MLflow run `run_id` in `home`'s embedded store, downloaded to
    `target`: {path in the run: file}."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{home.resolve()}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return {
        path: Path(client.download_artifacts(run_id, path, str(target)))
        for path in _html_artifacts(client, run_id)
    }


def data_docs_on_disk(home: Path) -> list[Path]:
    """The Data Docs pages a retrain wrote under `home` (Settings.validation_dir(): one
    directory per dataset md5 and params hash)."""
    return sorted((home / ".modelyard" / "validation").rglob("*.html"))
