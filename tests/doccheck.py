"""Run the marked examples of a documentation page and compare what they print with what the page shows.

A code block is checked when an HTML comment (invisible on GitHub and on the site) stands right before it:

* `<!-- check: run -->` before a `console` block: each `$ command` line (a trailing backslash continues it) runs
  in bash in the page's folder, and its output (stdout and stderr together) must be the lines shown under it.
  `$ echo $?` prints the previous command's exit status. `$ cat FILE` of a file that does not exist yet writes
  the lines shown into FILE, so a page can show its input files as a reader would see them.
* `<!-- check: run -->` before a `python` block: the code runs in a fresh interpreter in the page's folder; what
  it prints must be the next code block, which is marked `<!-- check: output -->`.
* `<!-- check: file NAME -->` before any block: its text is written to NAME (a script a later `$ python NAME`
  runs, a settings file).
* `<!-- check: setup COMMAND -->` on a line of its own runs COMMAND without showing or checking its output (for
  a step that the page's prose describes but does not show, such as creating the project first); `$REPO` is
  the repository's root there.

What may differ from run to run, and only that, is a placeholder: a 32-hex example or event id (the first time
an id appears it stands for whatever id the run printed there, and from then on for that same id, also inside
later commands, where a unique start or end of it of 4 or more characters is translated too), a UTC time
`YYYY-MM-DD HH:MM:SS`, an epoch time, an elapsed time written `<time>` (such as `took <time>`), a short id
written `<id>`, and the page's folder, shown as `/tmp/myproject`. Column padding (two or more spaces) may differ
in width. Everything else must be equal, line for line (trailing spaces aside).

`python tests/doccheck.py docs/PAGE.md` rewrites a page's shown outputs with what the code prints now, for a
maintainer who changed an output on purpose; read the diff before committing it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs

MARK = re.compile(r"^<!--\s*check:\s*(\w+)\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(```|~~~)(\S*)\s*$")
ID = re.compile(r"\b[0-9a-f]{32}\b")
HEX_PART = re.compile(r"\b[0-9a-f]{4,31}\b")
SHOWN_FOLDER = "/tmp/myproject"
REPO = Path(__file__).resolve().parent.parent  # $REPO in setup steps: files a page uses from the checkout
PLACEHOLDERS = [  # (pattern in the shown text, regex for what the run may print there)
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?: ?UTC|Z|[+-]\d\d:\d\d)?"),
     r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?: ?UTC|Z|[+-]\d\d:\d\d)?"),
    (re.compile(r"\b1[78]\d{8}\.\d+\b"), r"1[78]\d{8}(?:\.\d+)?"),
    (re.compile(r"<time>"), r"[0-9.]+ ?(?:ms|s|min)?"),
    (re.compile(r"<id>"), r"[0-9a-f]{4,32}"),
]
TIMEOUT = 600


@attrs.frozen
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    mark: str  # run, file, output, or "" for an unmarked block
    arg: str


@attrs.frozen
class Setup:
    line: int
    command: str


def read_page(text: str) -> list[Block | Setup]:
    """The page's code blocks and setup steps in order."""
    items: list[Block | Setup] = []
    lines = text.splitlines()
    pending: tuple[str, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        mark = MARK.match(line.strip())
        fence = FENCE.match(line.strip())
        if mark and mark.group(1) == "setup":
            items.append(Setup(i + 1, mark.group(2)))
        elif mark:
            pending = (mark.group(1), mark.group(2))
        elif fence:
            start, body = i, []
            i += 1
            while i < len(lines) and lines[i].strip() != fence.group(1):
                body.append(lines[i])
                i += 1
            kind, arg = pending or ("", "")
            items.append(Block(start + 1, fence.group(2), "\n".join(body), kind, arg))
            pending = None
        elif line.strip():
            pending = None
        i += 1
    return items


def console_steps(text: str) -> Iterator[tuple[str, str]]:
    """`(command, shown output)` for each `$ ` line of a console block."""
    command: str | None = None
    output: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("$ "):
            if command is not None:
                yield command, "\n".join(output)
            command, output = line[2:], []
            while command.endswith("\\"):
                command = command[:-1] + " " + next(lines).strip()
        elif command is not None:
            output.append(line)
    if command is not None:
        yield command, "\n".join(output)


def literal(text: str) -> str:
    """A regex for shown text: exact, except that a run of two or more spaces (a table's column padding, which
    a placeholder's width shifts) matches any run of two or more."""
    return " {2,}".join(re.escape(part) for part in re.split(r" {2,}", text))


def tidy(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip("\n")


@attrs.define
class PageRun:
    """One page's examples run in order in one folder, sharing files and the learned ids."""

    folder: Path
    env: dict[str, str]
    ids: dict[str, str] = attrs.field(factory=dict)  # shown id -> id of this run
    last_status: int = 0
    problems: list[str] = attrs.field(factory=list)
    fixes: list[tuple[str, str, str]] = attrs.field(factory=list)  # (where, command, printed as a page shows it)

    def as_shown(self, printed: str) -> str:
        """Printed text as the page would show it: this run's ids back as the page's, the folder as shown."""
        back = {real: shown for shown, real in self.ids.items()}
        text = tidy(printed.replace(str(self.folder), SHOWN_FOLDER))
        return ID.sub(lambda m: back.get(m.group(0), m.group(0)), text)

    def translate(self, command: str) -> str:
        """A command with the shown ids (whole, or a unique start or end) replaced by this run's."""
        command = ID.sub(lambda m: self.ids.get(m.group(0), m.group(0)), command)
        return self.translate_parts(command)

    def translate_parts(self, text: str) -> str:
        """Unique starts or ends (4 to 31 characters) of shown ids replaced by those of this run's ids."""

        def part(m: re.Match[str]) -> str:
            token = m.group(0)
            if not (re.search(r"[a-f]", token) and re.search(r"\d", token)):
                return token  # a plain number or word, not a part of an id
            starts = [(s, r) for s, r in self.ids.items() if s.startswith(token)]
            ends = [(s, r) for s, r in self.ids.items() if s.endswith(token)]
            if len(starts) >= 1 and not ends:
                return starts[0][1][:len(token)]
            if len(ends) == 1 and not starts:
                return ends[0][1][-len(token):]
            return token
        return HEX_PART.sub(part, text)

    def matches(self, shown: str, printed: str) -> bool:
        """Whether the printed text is the shown one up to placeholders; learns new ids."""
        shown, printed = tidy(self.translate_parts(shown)), tidy(printed.replace(str(self.folder), SHOWN_FOLDER))
        pattern, groups, pos = [], [], 0
        tokens = sorted([(m.start(), m.end(), "id", m.group(0)) for m in ID.finditer(shown)]
                        + [(m.start(), m.end(), "re", rx) for pat, rx in PLACEHOLDERS for m in pat.finditer(shown)])
        for start, end, kind, value in tokens:
            if start < pos:
                continue
            pattern.append(literal(shown[pos:start]))
            if kind == "re":
                pattern.append(value)
            elif value in self.ids:
                pattern.append(re.escape(self.ids[value]))
            elif value in groups:
                pattern.append(f"(?P=i{groups.index(value)})")
            else:
                pattern.append(f"(?P<i{len(groups)}>[0-9a-f]{{32}})")
                groups.append(value)
            pos = end
        pattern.append(literal(shown[pos:]))
        found = re.fullmatch("".join(pattern), printed, flags=re.S)
        if found:
            for n, value in enumerate(groups):
                self.ids[value] = found.group(f"i{n}")
        return found is not None

    def run_command(self, command: str) -> str:
        if command.strip() == "echo $?":
            return str(self.last_status)
        done = subprocess.run(["bash", "-c", self.translate(command)], cwd=self.folder, env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
        self.last_status = done.returncode
        return done.stdout

    def check(self, where: str, command: str, shown: str, printed: str) -> None:
        if not self.matches(shown, printed):
            shown_ids, printed_ids = ID.findall(shown), ID.findall(printed)
            if len(shown_ids) == len(printed_ids):  # learn the ids anyway, so that later steps can run
                for a, b in zip(shown_ids, printed_ids, strict=True):
                    self.ids.setdefault(a, b)
            self.fixes.append((where, command, self.as_shown(printed)))
            self.problems.append(f"{where}: `{command}` printed\n{tidy(printed)}\n--- the page shows ---\n"
                                 f"{tidy(shown)}\n")

    def run(self, items: list[Block | Setup], page: str) -> list[str]:
        for n, item in enumerate(items):
            if isinstance(item, Setup):
                out = self.run_command(item.command)
                if self.last_status:
                    self.problems.append(f"{page}:{item.line}: setup `{item.command}` failed:\n{out}")
                continue
            where = f"{page}:{item.line}"
            if item.mark == "file":
                (self.folder / item.arg).write_text(item.text + "\n", encoding="utf-8")
            elif item.mark == "run" and item.lang == "console":
                for command, shown in console_steps(item.text):
                    cat = re.fullmatch(r"cat ([\w./-]+)", command.strip())
                    if cat and not (self.folder / cat.group(1)).exists():
                        (self.folder / cat.group(1)).write_text(shown.strip("\n") + "\n", encoding="utf-8")
                        continue
                    self.check(where, command, shown, self.run_command(command))
            elif item.mark == "run" and item.lang == "python":
                following = items[n + 1] if n + 1 < len(items) else None
                shown = following.text if isinstance(following, Block) and following.mark == "output" else ""
                script = self.folder / f"_doc_block_{item.line}.py"
                script.write_text(item.text + "\n", encoding="utf-8")
                self.check(where, "python block", shown, self.run_command(f"python {script.name}"))
            elif item.mark == "run":
                self.problems.append(f"{where}: `check: run` on a {item.lang or 'plain'} block")
        return self.problems


def run_page(path: Path, folder: Path) -> tuple[int, list[str]]:
    """Run a page's marked examples in `folder`; returns how many steps ran and the mismatches."""
    items = read_page(path.read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"NO_COLOR": "1", "COLUMNS": "120", "PYTHONHASHSEED": "0", "TZ": "UTC", "REPO": str(REPO)})
    steps = sum(1 for i in items if isinstance(i, Setup) or i.mark in ("run", "file"))
    return steps, PageRun(folder, env).run(items, path.name)


def update_page(path: Path, folder: Path) -> int:
    """Rewrite the shown output of every mismatching step of a page with what the run printed (a maintainer's
    tool: `python tests/doccheck.py docs/PAGE.md`; read the diff before committing it). Returns the count."""
    items = read_page(path.read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"NO_COLOR": "1", "COLUMNS": "120", "PYTHONHASHSEED": "0", "TZ": "UTC", "REPO": str(REPO)})
    run = PageRun(folder, env)
    run.run(items, path.name)
    lines = path.read_text(encoding="utf-8").split("\n")
    fixes: dict[int, list[tuple[str, str]]] = {}
    for where, command, printed in run.fixes:
        fixes.setdefault(int(where.rsplit(":", 1)[1]), []).append((command, printed))
    for start in sorted(fixes, reverse=True):
        end = start
        while lines[end].strip() not in ("```", "~~~"):
            end += 1
        body = lines[start:end]
        lang = lines[start - 1].strip().strip("`~")
        if lang == "python":  # the output is the next block
            out_start = end + 1
            while not FENCE.match(lines[out_start].strip()):
                out_start += 1
            out_end = out_start + 1
            while lines[out_end].strip() not in ("```", "~~~"):
                out_end += 1
            lines[out_start + 1:out_end] = fixes[start][0][1].split("\n")
            continue
        steps = list(console_steps("\n".join(body)))
        todo = list(fixes[start])
        rebuilt: list[str] = []
        raw = iter(body)
        for command, shown in steps:
            first = next(raw)
            rebuilt.append(first)
            while first.endswith("\\"):
                first = next(raw)
                rebuilt.append(first)
            for _ in shown.split("\n") if shown else []:
                next(raw, None)
            if todo and todo[0][0] == command:
                new = todo.pop(0)[1]
                blank = len(shown.split("\n")) - len(shown.rstrip("\n").split("\n")) if shown.strip() else 0
                rebuilt += (new.split("\n") if new else []) + [""] * blank
            else:
                rebuilt += shown.split("\n") if shown else []
        lines[start:end] = rebuilt
    path.write_text("\n".join(lines), encoding="utf-8")
    return len(run.fixes)


if __name__ == "__main__":
    import tempfile

    for page in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as tmp:
            print(page, update_page(Path(page), Path(tmp)), "outputs updated")  # noqa: T201
