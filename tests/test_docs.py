"""The documentation matches the code.

* docs/hooks.md has one `## <hook>` section per hook spec in dspy_trainkit/hookspecs.py, whose first code block
  shows the hook's signature with the spec's parameter names in order, and no section for a hook that does not
  exist; a section says "firstresult" exactly when the spec is firstresult.
* docs/cli.md has a `## trainkit <name>` section per built-in command (`### trainkit <group> <sub>` per
  subcommand of a group) that mentions each of the command's options, and no section for a command that does not
  exist.
* Every relative link in docs/*.md points at an existing file (and, with `#anchor`, at an existing heading), and
  index.md links every page.

Each check is a function returning a list of problems, so the tests at the end can show that it finds them.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Callable
from pathlib import Path

import attrs
import click
import pytest

from dspy_trainkit import hookspecs
from dspy_trainkit.cli.main import BUILTIN_COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SPEC_MARKER = f"{hookspecs.PROJECT}_spec"  # the attribute pluggy's HookspecMarker sets on each spec function
FENCE = re.compile(r"^\s*(```|~~~)")


# ---- reading markdown ------------------------------------------------------------------------------------

@attrs.frozen
class Section:
    level: int
    title: str
    body: str  # text up to the next heading of any level


def sections(text: str) -> list[Section]:
    """The headings of a markdown text, in order, with the text under each; headings in code blocks don't count."""
    found: list[Section] = []
    level, title, lines = 0, "", []
    in_code = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
        heading = None if in_code else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if heading:
            if level:
                found.append(Section(level, title, "\n".join(lines)))
            level, title, lines = len(heading.group(1)), heading.group(2), []
        else:
            lines.append(line)
    if level:
        found.append(Section(level, title, "\n".join(lines)))
    return found


def code_blocks(text: str) -> list[tuple[str, str]]:
    """`(info string, code)` of each fenced code block."""
    return [(m.group(2).strip(), m.group(3))
            for m in re.finditer(r"^\s*(```|~~~)([^\n]*)\n(.*?)^\s*\1\s*$", text, flags=re.M | re.S)]


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code spans."""
    kept, in_code = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code:
            kept.append(re.sub(r"(`+).*?\1", "", line))
    return "\n".join(kept)


def slug(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


# ---- hooks.md --------------------------------------------------------------------------------------------

def hook_specs() -> dict[str, Callable]:
    """The functions in hookspecs.py that pluggy's marker made hook specifications."""
    return {name: obj for name, obj in vars(hookspecs).items()
            if inspect.isfunction(obj) and hasattr(obj, SPEC_MARKER)}


def shown_parameters(code: str, hook: str) -> list[str] | None:
    """Parameter names of `def <hook>(...)` in a code block (a body is optional), or None if there is none."""
    source = code.strip()
    if not source.endswith(":") and "\n" not in source:
        source += ":"
    if source.endswith(":"):
        source += " ..."
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == hook:
            args = node.args
            names = [a.arg for a in (*args.posonlyargs, *args.args)]
            names += [f"*{args.vararg.arg}"] if args.vararg else []
            names += [a.arg for a in args.kwonlyargs]
            names += [f"**{args.kwarg.arg}"] if args.kwarg else []
            return names
    return None


def spec_parameters(func: Callable) -> list[str]:
    prefixes = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return [prefixes.get(p.kind, "") + p.name for p in inspect.signature(func).parameters.values()]


def hook_doc_problems(text: str, specs: dict[str, Callable]) -> list[str]:
    problems = []
    level2 = [s for s in sections(text) if s.level == 2]
    by_title: dict[str, list[Section]] = {}
    for section in level2:
        by_title.setdefault(section.title, []).append(section)
    for title in by_title:
        if title not in specs:
            problems.append(f"docs/hooks.md documents '## {title}', which is not a hook in hookspecs.py")
    for hook, func in specs.items():
        found = by_title.get(hook, [])
        if not found:
            problems.append(f"hook {hook!r}: docs/hooks.md has no '## {hook}' section")
            continue
        if len(found) > 1:
            problems.append(f"hook {hook!r}: docs/hooks.md has {len(found)} '## {hook}' sections")
        body = found[0].body
        blocks = code_blocks(body)
        if not blocks or blocks[0][0] != "python":
            problems.append(f"hook {hook!r}: the section does not start with a python code block")
            continue
        shown = shown_parameters(blocks[0][1], hook)
        expected = spec_parameters(func)
        if shown is None:
            problems.append(f"hook {hook!r}: the first code block has no 'def {hook}(...)'")
        elif shown != expected:
            problems.append(f"hook {hook!r}: docs show parameters ({', '.join(shown)}), "
                            f"hookspecs.py has ({', '.join(expected)})")
        firstresult = bool(getattr(func, SPEC_MARKER).get("firstresult"))
        if firstresult != ("firstresult" in body.lower()):
            problems.append(f"hook {hook!r}: the spec is {'' if firstresult else 'not '}firstresult, "
                            f"the section {'does not say' if firstresult else 'says'} firstresult")
    return problems


# ---- cli.md ----------------------------------------------------------------------------------------------

def builtin_commands() -> dict[str, click.Command]:
    """Every built-in command by its full name, subcommands of groups included ('config show')."""
    found: dict[str, click.Command] = {}

    def add(name: str, command: click.Command) -> None:
        found[name] = command
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                add(f"{name} {sub_name}", sub)

    for name, (module, attr) in BUILTIN_COMMANDS.items():
        add(name, getattr(importlib.import_module(module), attr))
    for name, command in plugin_commands().items():  # `trainkit serve` comes from the built-in plugin `web`
        add(name, command)
    return found


def plugin_commands() -> dict[str, click.Command]:
    """Commands the built-in plugins add through `register_commands` (they ship with trainkit, so they are
    documented in docs/cli.md like the core's)."""
    from dspy_trainkit.plugin_manager import call_impls, hook_impls, make_plugin_manager

    group = click.Group()
    pm = make_plugin_manager(strict=True)
    for impl in hook_impls(pm, "register_commands"):
        if (pm.infos.get(impl.plugin_name) and pm.infos[impl.plugin_name].builtin):
            call_impls([impl], "register_commands", cli=group)
    return dict(group.commands)


def option_names(command: click.Command) -> list[str]:
    """What a reader must find for each parameter: the long flag of an option, the name of an argument."""
    names = []
    for param in command.params:
        if isinstance(param, click.Option):
            flags = [o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")]
            names.append(max(flags, key=len) if flags else param.opts[0])
        elif isinstance(param, click.Argument):
            names.append(param.human_readable_name)
    return names


def cli_doc_problems(text: str, commands: dict[str, click.Command], global_options: list[str]) -> list[str]:
    problems = []
    documented: dict[str, Section] = {}
    for section in sections(text):
        match = re.fullmatch(r"trainkit ([\w-]+(?: [\w-]+)*)", section.title.strip("` "))
        if match:
            documented[match.group(1)] = section
            if match.group(1) not in commands:
                problems.append(f"docs/cli.md documents 'trainkit {match.group(1)}', which is not a built-in command")
    for name, command in commands.items():
        level = name.count(" ") + 2
        section = documented.get(name)
        if section is None or section.level != level:
            problems.append(f"command 'trainkit {name}': docs/cli.md has no '{'#' * level} trainkit {name}' section")
            continue
        for option in option_names(command):
            if option not in section.body:
                problems.append(f"command 'trainkit {name}': its section does not mention {option}")
    global_section = next((s for s in sections(text) if s.title == "Global options"), None)
    if global_section is None:
        problems.append("docs/cli.md has no '## Global options' section")
    else:
        problems += [f"global option {option}: not in '## Global options'" for option in global_options
                     if option not in global_section.body]
    return problems


# ---- links -----------------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def link_problems(pages: dict[Path, str]) -> list[str]:
    """Relative links that point at no file, or at no heading of an existing file."""
    problems = []
    for page, text in pages.items():
        for target in LINK.findall(prose(text)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, https:, mailto:, ...
                continue
            path_part, _, anchor = target.partition("#")
            file = (page.parent / path_part).resolve() if path_part else page
            if file not in pages and not file.exists():
                problems.append(f"{page.name}: link {target!r} points at {file}, which does not exist")
                continue
            if anchor and file.suffix == ".md":
                target_text = pages.get(file) or file.read_text(encoding="utf-8")
                anchors = {slug(s.title) for s in sections(target_text)}
                if anchor not in anchors:
                    problems.append(f"{page.name}: link {target!r}: {file.name} has no heading with anchor "
                                    f"#{anchor}")
    return problems


def doc_pages() -> dict[Path, str]:
    return {path.resolve(): path.read_text(encoding="utf-8") for path in sorted(DOCS.glob("*.md"))}


# ---- the tests -------------------------------------------------------------------------------------------

def test_hookspecs_are_found() -> None:
    specs = hook_specs()
    assert {"collect", "validate", "score", "convert", "on_data_changed", "storage_backend"} <= set(specs)


def test_every_hook_is_documented_with_its_signature() -> None:
    problems = hook_doc_problems((DOCS / "hooks.md").read_text(encoding="utf-8"), hook_specs())
    assert problems == [], "\n".join(problems)


def test_every_builtin_command_is_documented() -> None:
    problems = cli_doc_problems((DOCS / "cli.md").read_text(encoding="utf-8"), builtin_commands(),
                                option_names(cli))
    assert problems == [], "\n".join(problems)


def test_relative_links_point_at_existing_files() -> None:
    pages = doc_pages()
    assert len(pages) >= 7, f"expected the user guide in {DOCS}, found {sorted(p.name for p in pages)}"
    problems = link_problems(pages)
    assert problems == [], "\n".join(problems)


def test_index_links_every_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = {target.partition("#")[0] for target in LINK.findall(prose(index))}
    missing = sorted(p.name for p in DOCS.glob("*.md") if p.name != "index.md" and p.name not in linked)
    assert missing == [], f"docs/index.md does not link {', '.join(missing)}"


# ---- the checks find what they should --------------------------------------------------------------------

def _fake_specs() -> dict[str, Callable]:
    @hookspecs.hookspec
    def validate(examples, context): ...

    @hookspecs.hookspec(firstresult=True)
    def convert(examples, target, context): ...

    return {"validate": validate, "convert": convert}


GOOD_HOOKS = """# Hooks

```python
def example_not_a_section(): ...
## validate
```

## validate

```python
def validate(examples, context)
```

All results.

## convert

```python
def convert(examples, target, context):
    return None
```

Calling mode: firstresult.
"""


def test_hook_check_accepts_a_correct_page() -> None:
    assert hook_doc_problems(GOOD_HOOKS, _fake_specs()) == []


@pytest.mark.parametrize(("change", "expected"), [
    (("## validate\n\n", "## validation\n\n"), ["no '## validate' section", "'## validation', which is not a hook"]),
    (("def validate(examples, context)", "def validate(batch, context)"),
     ["hook 'validate': docs show parameters (batch, context), hookspecs.py has (examples, context)"]),
    (("def validate(examples, context)", "def validate(context, examples)"), ["hook 'validate': docs show"]),
    (("def convert(examples, target, context):", "def convert(examples, context):"), ["hook 'convert': docs show"]),
    (("def validate(examples, context)", "validate(examples, context)"), ["has no 'def validate(...)'"]),
    (("Calling mode: firstresult.", "All results."), ["hook 'convert': the spec is firstresult"]),
    (("All results.", "firstresult"), ["hook 'validate': the spec is not firstresult"]),
    (("## convert\n", "## convert\n\n## convert\n"),
     ["hook 'convert': docs/hooks.md has 2", "hook 'convert': the section does not start"]),
    (("## convert\n\n```python", "## convert\n\n```text"), ["hook 'convert': the section does not start"]),
])
def test_hook_check_names_the_hook(change: tuple[str, str], expected: list[str]) -> None:
    assert change[0] in GOOD_HOOKS
    problems = hook_doc_problems(GOOD_HOOKS.replace(change[0], change[1], 1), _fake_specs())
    assert len(problems) == len(expected), problems
    for text in expected:
        assert any(text in problem for problem in problems), (text, problems)


def test_cli_check_finds_missing_sections_and_options() -> None:
    commands = builtin_commands()
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    broken = text.replace("## trainkit stats", "## trainkit statistics").replace("`--from-json JSON\\|-`", "")
    broken = broken.replace("### trainkit config show", "### config show")
    problems = cli_doc_problems(broken, commands, option_names(cli))
    assert any("command 'trainkit stats': docs/cli.md has no '## trainkit stats'" in p for p in problems), problems
    assert any("'trainkit statistics', which is not a built-in command" in p for p in problems), problems
    assert any("command 'trainkit config show': docs/cli.md has no '### trainkit config show'" in p
               for p in problems), problems
    global_problems = [p for p in cli_doc_problems(text, commands, ["--db", "--no-such-option"])
                       if p.startswith("global option")]
    assert global_problems == ["global option --no-such-option: not in '## Global options'"]


def test_link_check_finds_missing_files_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\n## Part one\n", encoding="utf-8")
    page = tmp_path / "b.md"
    text = ("[ok](a.md) [ok](a.md#part-one) [web](https://example.org/x.md) [self](#b)\n# B\n"
            "[gone](missing.md) [bad anchor](a.md#part-two) `[in code](nowhere.md)`\n"
            "```\n[in a block](nowhere.md)\n```\n")
    problems = link_problems({page: text})
    assert len(problems) == 2, problems
    assert "'missing.md'" in problems[0] and "does not exist" in problems[0]
    assert "a.md has no heading with anchor #part-two" in problems[1]


def test_slug_matches_github_anchors() -> None:
    assert slug("List, show, stats") == "list-show-stats"
    assert slug("`trainkit config show`") == "trainkit-config-show"
    assert slug("tasks.NAME.domains.DOMAIN") == "tasksnamedomainsdomain"
    assert slug("on_data_changed") == "on_data_changed"
