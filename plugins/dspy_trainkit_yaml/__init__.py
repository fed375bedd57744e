"""Built-in YAML format (needs PyYAML: `pip install 'dspy-trainkit[yaml]'`): a list of mappings, or a mapping
holding one list.

Only safe loading is used (no Python objects). Before building any data, the document's node graph is
measured with aliases expanded, in nodes and in characters of text: a document that would expand beyond
MAX_NODES nodes, or to more than MAX_GROWTH times its own size (at least MIN_BUDGET characters), is refused.
Counting nodes alone let a short file alias a long string a million times (a "billion laughs" alias bomb: a
1.3 KB file made a 59 MB answer). Ordinary anchors, such as shared metadata, stay far below the bound.
A syntax error is one error with its line; nothing from that file is imported. Positions name the line where
each record starts. A record with a key written twice in one mapping (YAML would keep the last value without a
word, so a hand-edited answer could silently replace another) is rejected on its own, naming the key and both
lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import FormatError, ReadOptions, RecordError, WriteOptions, export_record, open_input

MAX_NODES = 1_000_000
MAX_GROWTH = 10  # expanded text may be this many times the file's text...
MIN_BUDGET = 1024 * 1024  # ...or this many characters, whichever is more


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise FormatError("reading YAML needs PyYAML: pip install 'dspy-trainkit[yaml]'") from None
    return yaml


def expanded_size(node: Any, limit: int, *, text: bool = False) -> int:
    """The size of the document with every alias expanded, counted without expanding (memoised per node):
    in nodes, or with `text` in characters (each scalar's length plus one per node). Stops early past `limit`."""
    sizes: dict[int, int] = {}

    def size(current: Any) -> int:
        key = id(current)
        if key in sizes:
            return sizes[key]
        sizes[key] = 1  # a cycle counts once; safe loading cannot build one anyway
        children = current.value if isinstance(current.value, list) else []
        total = 1 + (len(current.value) if text and isinstance(current.value, str) else 0)
        for child in children:
            total += sum(size(c) for c in child) if isinstance(child, tuple) else size(child)
            if total > limit:
                break
        sizes[key] = total
        return total

    return size(node)


def _check_expansion(node: Any, text_length: int) -> None:
    """Refuse a document whose aliases would make it much larger than the file (see the module docstring)."""
    if expanded_size(node, MAX_NODES) > MAX_NODES:
        raise FormatError(f"the document expands to more than {MAX_NODES:,} nodes through aliases "
                          "(an alias bomb?); refusing to load it")
    budget = max(MAX_GROWTH * text_length, MIN_BUDGET)
    if expanded_size(node, budget, text=True) > budget:
        raise FormatError(f"the document's aliases expand its {text_length:,} characters to more than "
                          f"{budget:,} (an alias bomb?); refusing to load it; write repeated values out "
                          "instead of aliasing them")


def repeated_key(node: Any) -> str | None:
    """What is wrong when a mapping within `node` (a record) has a key twice: "key 'answer' appears twice (lines
    3 and 5)"; None when no key repeats. Keys are compared as written (scalars by their text); an alias is
    walked once."""
    seen: set[int] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if id(current) in seen or not isinstance(current.value, list):
            continue
        seen.add(id(current))
        if current.value and isinstance(current.value[0], tuple):  # a mapping node, whatever its tag (!!set too)
            first_line: dict[str, int] = {}
            for key, value in current.value:
                if isinstance(key.value, str):
                    line = key.start_mark.line + 1
                    if key.value in first_line:
                        where = (f"both on line {line}" if first_line[key.value] == line
                                 else f"lines {first_line[key.value]} and {line}")
                        return f"key {key.value!r} appears twice ({where})"
                    first_line[key.value] = line
                pending.extend((key, value))
        else:
            pending.extend(current.value)
    return None


def _loader_class(yaml: Any) -> Any:
    """The safe loader with YAML 1.2 booleans: only true/false. YAML 1.1 also reads yes/no/on/off/y/n as
    booleans, which turns an answer "no" into False and changes the example."""
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in base.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    return Loader


def read_yaml(path: Path, options: ReadOptions) -> Iterator[tuple[str, Any]]:
    yaml = _yaml()
    loader_class = _loader_class(yaml)
    try:
        with open_input(path) as stream:  # read once: the path may be standard input or a pipe
            text = stream.read().decode(options.encoding or "utf-8-sig")
    except UnicodeDecodeError:
        raise FormatError("not UTF-8 text; give the file's encoding with --encoding, e.g. --encoding latin-1") from None
    except (OSError, LookupError) as exc:
        raise FormatError(f"cannot read: {exc}") from None
    loader = loader_class(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise FormatError(f"not valid YAML: {' '.join(str(exc).split())}; nothing was imported from it") \
                from None
        if node is None:
            return
        _check_expansion(node, len(text))
        for item in _record_nodes(node, path):
            position = f"line {item.start_mark.line + 1}"
            repeated = repeated_key(item)
            if repeated is not None:
                yield position, RecordError(f"{repeated}: YAML would keep only the last value; remove one")
                continue
            try:
                record = loader.construct_document(item)
            except yaml.YAMLError as exc:  # e.g. a tag safe loading refuses: this record only
                yield position, RecordError(f"cannot load this record: {' '.join(str(exc).split())}")
                continue
            yield position, record if isinstance(record, dict) else RecordError(
                f"expected a mapping, got {type(record).__name__}")
    finally:
        loader.dispose()


def _record_nodes(node: Any, path: Path) -> list[Any]:
    if node.tag.endswith(":seq"):
        return list(node.value)
    if node.tag.endswith(":map"):
        lists = [value for _key, value in node.value if value.tag.endswith(":seq")]
        if len(lists) == 1:
            return list(lists[0].value)
    raise FormatError("expected a list of mappings, or a mapping holding exactly one list")


def write_yaml(examples: Iterable[Any], stream: IO[bytes], options: WriteOptions) -> int:
    yaml = _yaml()
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    count = 0
    for example in examples:
        text = yaml.dump([export_record(example, options.provenance)], Dumper=dumper, allow_unicode=True,
                         sort_keys=False, width=1000)
        stream.write(text.encode("utf-8"))
        count += 1
    if count == 0:
        stream.write(b"[]\n")
    return count


@hookimpl
def import_format(register):
    register("yaml", ("yaml", "yml"), read_yaml)


@hookimpl
def export_format(register):
    register("yaml", ("yaml", "yml"), write_yaml)
