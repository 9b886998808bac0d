"""MkDocs hooks (mkdocs.yml `hooks:`): the pages that are generated from the code at build time,
so they cannot go stale, and the repository-wide checks a `--strict` build enforces.

- `reference/configuration.md` from the pydantic models in `modelyard.config` (`Params`: every
  key of params.yaml with its type, constraints, default and the comment above it in the source;
  `Settings`: every environment variable).
- `reference/cli.md` from the typer app `modelyard.cli.app` (every command: usage, arguments,
  options, help), walked through the click command that typer builds from it.
- `reference/api/<layer>.md`: one mkdocstrings block (`::: module`) per module found on disk
  in the layer's packages, so a module that moves or appears is documented where it now is.
- The example model card in `guides/governance.md` (where the page says
  `<!-- modelyard:example-card -->`), from the committed outputs of `dvc repro`.
- README.md: at most 8 KB, and every link in it points inside the repository.
- Every page: no link points outside the repository.

Everything is imported inside the hooks, never at import time: mkdocs loads this module before
it knows whether it will build.
"""

from __future__ import annotations

import ast
import functools
import inspect
import io
import json
import logging
import re
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mkdocs.structure.files import File, Files

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.pages import Page
    from pydantic import BaseModel
    from pydantic.fields import FieldInfo

# A child of the "mkdocs" logger: `mkdocs build --strict` counts its warnings and fails.
log = logging.getLogger("mkdocs.hooks.modelyard")

README_LIMIT = 8 * 1024
# A link target with a scheme (http:, https:, mailto:, file:) or a protocol-relative `//host`.
_OUTSIDE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")
_MD_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HREF = re.compile(r"""<a\s[^>]*href="([^"]+)\"""")


# --- hooks -----------------------------------------------------------------------------------


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    _check_readme(Path(config.config_file_path).parent / "README.md")
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    pages: dict[str, Callable[[], str]] = {
        "reference/configuration.md": lambda: configuration_reference(root / "params.yaml"),
        "reference/cli.md": cli_reference,
    }
    for layer in LAYERS:
        pages[f"reference/api/{layer.slug}.md"] = functools.partial(api_page, layer, root)
    for src_uri, render in pages.items():
        if files.get_file_from_path(src_uri) is not None:
            log.warning("%s is generated at build time: delete the file under docs/", src_uri)
            continue
        files.append(File.generated(config, src_uri, content=render()))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, **_: Any) -> str:
    if EXAMPLE_CARD in markdown:
        root = Path(config.config_file_path).parent
        return markdown.replace(EXAMPLE_CARD, example_card(root))
    return markdown


def on_page_content(html: str, page: Page, **_: Any) -> str:
    for target in _HREF.findall(html):
        if _OUTSIDE.match(target):
            log.warning("%s links outside the repository: %s", page.file.src_uri, target)
    return html


# --- the example model card ------------------------------------------------------------------

# Where a page wants the default model's card (docs/guides/governance.md).
EXAMPLE_CARD = "<!-- modelyard:example-card -->"


def example_card(project: Path) -> str:
    """The card of the model `dvc repro` builds, from its committed outputs (build/*.json,
    dvc.lock) and params.yaml: nothing is trained or loaded. Headings start at level 3, under
    the page's own section."""
    from modelyard import card
    from modelyard.adapters.cards import pipeline_facts

    facts = pipeline_facts(project)
    title = f"{facts.model}, as `dvc repro` built it"
    return card.to_markdown(title, card.outline(facts), level=3)


# --- README ----------------------------------------------------------------------------------


def _check_readme(readme: Path) -> None:
    size = readme.stat().st_size
    if size > README_LIMIT:
        log.warning("README.md is %d bytes, over its %d: move prose into docs/", size, README_LIMIT)
    root = readme.parent
    for target in _MD_LINK.findall(readme.read_text(encoding="utf-8")):
        if _OUTSIDE.match(target) or target.startswith("/"):
            log.warning("README.md links outside the repository: %s", target)
            continue
        path = target.split("#", 1)[0]
        if path and not (root / path).resolve().is_relative_to(root.resolve()):
            log.warning("README.md links outside the repository: %s", target)
        elif path and not (root / path).exists():
            log.warning("README.md links to a missing file: %s", target)


# --- configuration reference -----------------------------------------------------------------


def configuration_reference(project: Path) -> str:
    """The reference of every `Params` key (compared with the project's params file at
    `project`) and every `Settings` environment variable."""
    from modelyard import config

    out = [
        "# Configuration reference",
        "",
        "*Generated at build time from the pydantic models in `modelyard/config.py`; "
        "the descriptions are the comments above each field in the source.*",
        "",
        "Two kinds of configuration, kept apart on purpose: `params.yaml` (the `Params` model) "
        "says what a model is and how it is judged, and is part of a model version's lineage; the "
        "environment (the `Settings` model) says where things live and never changes what a "
        "model is. `params.yaml` refuses unknown keys, so a typo is an error naming the key. "
        "Override any key for one run with `modelyard retrain --set section.key=value`.",
        "",
    ]
    skipped = sorted(getattr(config, "_NOT_DIGESTED", ()))
    if skipped:
        out += [
            "Sections left out of the params hash (`Params.digest()`, the `params_hash` lineage "
            "tag): " + ", ".join(f"`{name}`" for name in skipped) + ". Moving a server or "
            "repricing a GPU does not make the same training another one.",
            "",
        ]
    ctx = _Reference(
        project=_flat(config.Params, config.load_params(project).model_dump(mode="json")),
        project_comments=_yaml_comments(project),
    )
    out += [
        "## `params.yaml`",
        "",
        "*default* is the model's; *here* is this project's `params.yaml` where it sets the key "
        "to something else. A meaning in *italics* is the comment beside the key in "
        "`params.yaml` (the model's source has none).",
        "",
    ]
    for name, field in config.Params.model_fields.items():
        section = _model_of(field.annotation)
        if section is None:
            out += _field_table(config.Params, {name: field}, "", ctx)
            continue
        out += [f"### `{name}`", ""]
        if section.__doc__:
            out += [_md_text(inspect.cleandoc(section.__doc__)), ""]
        out += _section(section, f"{name}.", ctx)
    out += [
        "## Environment (`Settings`)",
        "",
        _md_text(inspect.getdoc(config.Settings) or ""),
        "",
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    prefix = config.Settings.model_config.get("env_prefix", "")
    comments = _field_comments(config.Settings)
    for name, field in config.Settings.model_fields.items():
        meaning = _md_text(field.description or comments.get(name, ""))
        variable = f"`{prefix}{name}`".upper()
        out.append(_cells([variable, _type_text(field), _code(_default_value(field)), meaning]))
    out += [
        "",
        "## Defaults as a file",
        "",
        "Every key at its default, as `params.yaml` would hold it:",
        "",
        "```yaml",
        _defaults_yaml(config.Params).rstrip(),
        "```",
        "",
    ]
    return "\n".join(out)


@dataclass(frozen=True)
class _Reference:
    """What the tables compare the model with: the project's own params.yaml."""

    project: dict[str, Any]  # dotted key -> value, as loaded and validated
    project_comments: dict[str, str]  # dotted key -> the comment beside it in params.yaml


def _section(model: type[BaseModel], prefix: str, ctx: _Reference) -> list[str]:
    """One table for the model's own keys, then a sub-heading per nested model."""
    plain = {n: f for n, f in model.model_fields.items() if _model_of(f.annotation) is None}
    nested = {n: f for n, f in model.model_fields.items() if _model_of(f.annotation) is not None}
    out = _field_table(model, plain, prefix, ctx) if plain else []
    for name, field in nested.items():
        sub = _model_of(field.annotation)
        assert sub is not None
        out += [f"#### `{prefix}{name}`", ""]
        if sub.__doc__:
            out += [_md_text(inspect.cleandoc(sub.__doc__)), ""]
        out += _section(sub, f"{prefix}{name}.", ctx)
    return out


def _field_table(
    model: type[BaseModel], fields: dict[str, FieldInfo], prefix: str, ctx: _Reference
) -> list[str]:
    comments = _field_comments(model)
    out = ["| key | type | default | here | meaning |", "|---|---|---|---|---|"]
    for name, field in fields.items():
        key = f"{prefix}{name}"
        meaning = _md_text(field.description or comments.get(name, ""))
        if not meaning and key in ctx.project_comments:
            meaning = f"*{_md_text(ctx.project_comments[key])}*"
        default = _default_value(field)
        here = ctx.project.get(key, default)
        cells = [
            f"`{key}`",
            _type_text(field),
            _code(default),
            "" if here == default else _code(here),
            meaning,
        ]
        out.append(_cells(cells))
    return [*out, ""]


def _cells(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("\n", " ") for cell in cells) + " |"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _type_text(field: FieldInfo) -> str:
    # Each alternative in its own code span: a `|` inside one would end the table cell.
    text = " or ".join(f"`{part}`" for part in _alternatives(field.annotation))
    bounds = _constraints(field)
    return f"{text} {bounds}" if bounds else text


def _alternatives(annotation: Any) -> list[str]:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return [json.dumps(arg) for arg in args]
    if origin in (typing.Union, types.UnionType):
        return [part for arg in args for part in _alternatives(arg)]
    if origin is typing.Annotated:
        return _alternatives(args[0])
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        inner = ", ".join(
            "..." if arg is Ellipsis else " | ".join(_alternatives(arg)) for arg in args
        )
        return [f"{name}[{inner}]"]
    if annotation is type(None):
        return ["None"]
    return [getattr(annotation, "__name__", str(annotation))]


_BOUNDS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}


def _constraints(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for attr, sign in _BOUNDS.items():
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
        if getattr(item, "min_length", None) is not None:
            parts.append(f"at least {item.min_length} items")
        if getattr(item, "pattern", None) is not None:
            parts.append(f"matching `{item.pattern}`")
    return ", ".join(parts)


def _default_value(field: FieldInfo) -> Any:
    """The default as params.yaml would write it (JSON types), or the string "required"."""
    from pydantic import TypeAdapter
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    return TypeAdapter(Any).dump_python(value, mode="json")


def _code(value: Any) -> str:
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _flat(model: type[BaseModel], values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value, following the model's own nesting (a dict-valued key stays whole)."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        if sub is None:
            out[f"{prefix}{name}"] = values[name]
        else:
            out.update(_flat(sub, values[name], f"{prefix}{name}."))
    return out


def _yaml_comments(path: Path) -> dict[str, str]:
    """Dotted key -> the comment at the end of its line in a block-style YAML file."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the mappings that enclose the line
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _YAML_KEY.match(line)
        if not match:
            continue
        indent, key, comment = len(match["indent"]), match["key"], match["comment"]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([*(k for _, k in stack), key])
        stack.append((indent, key))
        if comment:
            out[dotted] = comment.strip()
    return out


_YAML_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w-]*):(?:[^#]*)(?:#(?P<comment>.*))?$")


def _defaults_yaml(params: type[BaseModel]) -> str:
    import yaml

    text: str = yaml.safe_dump(
        params().model_dump(mode="json"), sort_keys=False, allow_unicode=True
    )
    return text


def _field_comments(model: type) -> dict[str, str]:
    """The comments that document each field in the class body: the comment lines right above
    it and a comment at the end of its statement, joined."""
    source = textwrap.dedent(inspect.getsource(model))
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    out: dict[str, str] = {}
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    for node in body.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        line = node.lineno - 1
        while line in comments and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        end = node.end_lineno or node.lineno
        trailing = [comments[n] for n in range(node.lineno, end + 1) if n in comments]
        text = " ".join([*above, *trailing]).strip()
        if text:
            out[node.target.id] = text
    return out


# --- CLI reference ---------------------------------------------------------------------------


def cli_reference() -> str:
    import typer

    from modelyard import cli

    root = typer.main.get_command(cli.app)
    out = [
        "# CLI reference",
        "",
        "*Generated at build time from the typer app `modelyard.cli.app`: what `--help` prints, "
        "for every command.*",
        "",
    ]
    out += _command_pages(root, root.context_class(root, info_name="modelyard"), depth=2)
    return "\n".join(out)


def _command_pages(command: Any, ctx: Any, depth: int) -> list[str]:
    title = ctx.command_path
    out = [f"{'#' * min(depth, 4)} `{title}`", ""]
    help_text = _help(command)
    if help_text:
        out += [_md_text(help_text), ""]
    out += ["```text", command.get_usage(ctx), "```", ""]
    arguments: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        (arguments if param.param_type_name == "argument" else options).append(record)
    for heading, records in (("Arguments", arguments), ("Options", options)):
        if records:
            out += [f"**{heading}**", "", "| | |", "|---|---|"]
            out += [f"| `{name}` | {_cell(text)} |" for name, text in records]
            out.append("")
    subcommands = getattr(command, "commands", None)
    if subcommands:
        rows = []
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                anchor = _slug(f"{title} {name}")
                rows.append(f"| [`{name}`](#{anchor}) | {_cell(sub.get_short_help_str(200))} |")
        out += ["**Commands**", "", "| | |", "|---|---|", *rows, ""]
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = sub.context_class(sub, info_name=name, parent=ctx)
            out += _command_pages(sub, sub_ctx, depth + 1)
    return out


def _help(command: Any) -> str:
    text = command.help or ""
    # click's convention: what follows a form feed is not for --help.
    return inspect.cleandoc(text.split("\f", 1)[0])


def _slug(title: str) -> str:
    """The anchor MkDocs' toc extension gives a heading (its default slugify)."""
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", title).strip().lower())


def _cell(text: str) -> str:
    return _md_text(" ".join(text.split())).replace("|", "\\|")


def _md_text(text: str) -> str:
    """Prose from the code, made safe for Markdown: `<...>` outside code spans is escaped (help
    texts write placeholders as <alias>, which Markdown would take for an HTML tag)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts[i] = parts[i].replace("*", "\\*").replace("_", "\\_")
    return "`".join(parts)


# --- API reference ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A layer of docs/concepts/architecture.md and the packages (or modules) that make it."""

    slug: str
    title: str
    intro: str
    packages: tuple[str, ...]


LAYERS = (
    Layer(
        "core",
        "Core",
        "Pure, typed, Prefect-free: configuration, data, training, the inference model, "
        "evaluation and the gate, monitoring statistics, promotion and rollout rules, privacy, "
        "explanations. Decisions live here, as functions of plain values.",
        (
            "modelyard.config",
            "modelyard.env",
            "modelyard.tags",
            "modelyard.data",
            "modelyard.inference",
            "modelyard.training",
            "modelyard.evaluation",
            "modelyard.monitoring",
            "modelyard.promotion",
            "modelyard.rollout",
            "modelyard.privacy",
            "modelyard.explain",
            "modelyard.card",
            "modelyard.lineage_key",
        ),
    ),
    Layer(
        "adapters",
        "Adapters",
        "The well-kept tools behind small typed interfaces: MLflow (tracking, registry, the "
        "pyfunc flavour), the platform database (SQLAlchemy + Alembic), DVC and the dataset "
        "catalog. Built from `Settings` inside a flow or a command and passed down.",
        ("modelyard.registry", "modelyard.store", "modelyard.adapters"),
    ),
    Layer(
        "orchestration",
        "Orchestration",
        "Prefect flows that read as their steps, tasks that add Prefect's concerns around one "
        "call down, and what runs them: deployments, events, the production-mode stack, "
        "`doctor`, the DVC pipeline's stages, the torchrun worker.",
        ("flows", "tasks", "modelyard.orchestration"),
    ),
    Layer(
        "interfaces",
        "Interfaces",
        "The REST app. The command line is documented in the "
        "[CLI reference](../cli.md), generated from the same code.",
        ("modelyard.serving",),
    ),
)
# Not API: Alembic's migration scripts (run by Alembic from their path).
_NOT_API = ("modelyard.store.migrations",)


def api_page(layer: Layer, root: Path) -> str:
    out = [
        f"# {layer.title}",
        "",
        layer.intro,
        "",
        "*Generated at build time from the docstrings of every module in "
        + ", ".join(f"`{name}`" for name in layer.packages)
        + "; see [Architecture](../../concepts/architecture.md) for how the layers fit.*",
        "",
    ]
    for module in _modules(root, layer.packages):
        out += [f"::: {module}", ""]
    return "\n".join(out)


def _modules(root: Path, packages: tuple[str, ...]) -> list[str]:
    """Every importable module of `packages` present under `root`, package before its
    modules, in path order; a name that is not there (moved, not written yet) is skipped."""
    found: list[str] = []
    for package in packages:
        path = root.joinpath(*package.split("."))
        if path.with_suffix(".py").is_file():
            found.append(package)
        elif (path / "__init__.py").is_file():
            for file in sorted(path.rglob("*.py")):
                parts = file.relative_to(root).with_suffix("").parts
                # A folder without __init__.py is not a package (Alembic's, data files).
                in_package = (file.parent / "__init__.py").is_file()
                if parts[-1] == "__main__" or not in_package:
                    continue
                name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
                if not name.startswith(_NOT_API):
                    found.append(name)
    return found
