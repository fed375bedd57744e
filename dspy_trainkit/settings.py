"""Settings: one typed object from `trainkit.toml`, `TRAINKIT_*` environment variables and options.

Strength grows in that order: a command-line option beats the environment, which beats the file. Unknown keys
and bad values are errors that name the key, the file and (when it can be found) the line, because a silently
ignored typo in a quality threshold is worse than a refusal to start.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .config_location import CONFIG_FILE, find_config, locate_config  # noqa: F401  (re-exported)
from .errors import ConfigError
from .names import TASK_NAME
from .optimization.config import OptimizeSettings, read_optimize

DEFAULT_DB_FILE = "trainkit.db"
COLLECTION_MODES = ("automatic", "manual")


@attrs.frozen
class DomainSettings:
    """Overrides for one domain of a task; `None` means "inherit the task's value"."""

    topics: tuple[str, ...] | None = None
    difficulties: tuple[str, ...] | None = None
    min_quality: float | None = None
    weights: dict[str, float] | None = None


LM_KEYS = ("model", "api_base", "api_key_env", "temperature", "max_tokens", "concurrency", "rpm", "retries",
           "timeout", "cache")
CLEANUP_KEYS = ("max_age_days", "min_quality", "superseded", "over_full")


@attrs.frozen
class LMSettings:
    """How to reach and use one LM (a `dspy.LM` model string): for a purpose such as generation or judging.

    The API key is never in settings: `api_key_env` names the environment variable that holds it.
    `concurrency` is how many calls run at once, `rpm` a cap on requests per minute, `retries` how often a failed
    call is tried again (with backoff that honours Retry-After), `timeout` seconds per call.
    """

    model: str | None = None
    api_base: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    concurrency: int = 4
    rpm: int | None = None
    retries: int = 3
    timeout: float = 60.0
    cache: bool = True


@attrs.frozen
class CleanupSettings:
    """Policies `trainkit cleanup` applies; each archives (never deletes) and names itself as the reason.
    `max_age_days`: older than that; `min_quality`: scored below; `superseded`: a near-duplicate of a better
    example; `over_full`: beyond a cell's `cell_cap`."""

    max_age_days: int | None = None
    min_quality: float | None = None
    superseded: bool = False
    over_full: bool = False


@attrs.frozen
class TaskSettings:
    """What trainkit knows about one task: its fields, labels and quality rules."""

    name: str
    signature: str | None = None
    inputs: tuple[str, ...] | None = None
    outputs: tuple[str, ...] | None = None
    collection_mode: str = "automatic"
    collect: bool = True
    sample_rate: float = 1.0
    min_quality: float = 0.0
    weights: dict[str, float] = attrs.field(factory=dict)
    topics: tuple[str, ...] = ()
    difficulties: tuple[str, ...] = ()
    domains: dict[str, DomainSettings] = attrs.field(factory=dict)
    program: str | None = None  # "package.module:factory" building the task's DSPy program (generation)
    per_cell: int = 1  # examples bootstrap makes per domain x topic x difficulty cell
    cell_target: int | None = None  # examples wanted per cell (balance reports and selection)
    cell_cap: int | None = None  # most examples per cell (balanced selection, over-full cleanup)
    max_synthetic_ratio: float | None = None  # most accepted data that may be synthetic
    lm: dict[str, dict[str, Any]] = attrs.field(factory=dict)  # purpose -> LMSettings overrides
    cleanup: dict[str, Any] = attrs.field(factory=dict)  # CleanupSettings overrides
    optimize: dict[str, Any] = attrs.field(factory=dict)  # OptimizeSettings overrides ([tasks.T.optimize])

    def cells(self) -> list[tuple[str | None, str | None, str | None]]:
        """Every (domain, topic, difficulty) cell the task's settings define, domains overriding topics and
        difficulties; a task without domains has one domain None."""
        rows: list[tuple[str | None, str | None, str | None]] = []
        domains: list[str | None] = [*sorted(self.domains)] or [None]
        for domain in domains:
            topics, levels = self.topics_for(domain) or (None,), self.difficulties_for(domain) or (None,)
            rows.extend((domain, topic, level) for topic in topics for level in levels)
        return rows

    def topics_for(self, domain: str | None) -> tuple[str, ...]:
        """The topics of `domain`: its override, else the task's."""
        override = self.domains.get(domain) if domain else None
        return override.topics if override and override.topics is not None else self.topics

    def difficulties_for(self, domain: str | None) -> tuple[str, ...]:
        """The difficulty levels of `domain`, easiest first: its override, else the task's."""
        override = self.domains.get(domain) if domain else None
        return override.difficulties if override and override.difficulties is not None else self.difficulties

    def fields(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """Declared (inputs, outputs): explicit lists win over a string signature "a, b -> c"; None if unknown.

        A signature given as an import path (`pkg.module:Signature`) needs DSPy and is resolved by conversion.
        """
        if self.inputs is not None or self.outputs is not None:
            return self.inputs or (), self.outputs or ()
        if self.signature and "->" in self.signature:  # "a: str, b -> c" too; types are DSPy's business
            left, right = self.signature.split("->", 1)
            return _names(left), _names(right)
        return None

    def min_quality_for(self, domain: str | None) -> float:
        override = self.domains.get(domain) if domain else None
        return override.min_quality if override and override.min_quality is not None else self.min_quality

    def weights_for(self, domain: str | None) -> dict[str, float]:
        override = self.domains.get(domain) if domain else None
        return {**self.weights, **(override.weights or {})} if override else self.weights


#: Seconds one hook call of one plugin may take before it is stopped as hung (`[plugins] timeout`). Data hooks
#: run once per batch (1000 examples by default); an LM judge may need minutes for one, so the default is generous.
DEFAULT_PLUGIN_TIMEOUT = 600.0
#: The most parallel-judging workers `intake.workers` may ask for: one writer keeps no more busy, and a typo such
#: as 99999999999999999999 ended in a traceback from the process pool.
MAX_INTAKE_WORKERS = 64


@attrs.frozen
class Settings:
    """The whole configuration of an open kit."""

    store_url: str
    project_dir: Path
    config_path: Path | None = None
    load_plugins: tuple[str, ...] | None = None
    disable_plugins: tuple[str, ...] = ()
    strict_plugins: bool = False
    plugin_timeout: float | None = DEFAULT_PLUGIN_TIMEOUT  # seconds per hook call of one plugin; None: no limit
    batch_size: int = 1000
    intake_workers: int | str = 0  # parallel judging: worker processes, or "auto" (see intake_parallel)
    default_task: str | None = None
    tasks: dict[str, TaskSettings] = attrs.field(factory=dict)
    plugin_config: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    lm: dict[str, LMSettings] = attrs.field(factory=dict)  # purpose ("generation", "judging") -> LM
    cleanup: CleanupSettings = attrs.field(factory=CleanupSettings)
    optimize: OptimizeSettings = attrs.field(factory=OptimizeSettings)

    def task(self, name: str) -> TaskSettings:
        """The settings of task `name`; a task not in the file gets the defaults."""
        return self.tasks.get(name) or _default_task(name)

    def lm_for(self, task: str | None, purpose: str) -> LMSettings:
        """The LM for a purpose: `[lm.PURPOSE]` with the task's `[tasks.T.lm.PURPOSE]` overrides."""
        base = self.lm.get(purpose, LMSettings())
        overrides = self.task(task).lm.get(purpose, {}) if task else {}
        return attrs.evolve(base, **overrides) if overrides else base

    def cleanup_for(self, task: str | None) -> CleanupSettings:
        """The cleanup policies: `[cleanup]` with the task's `[tasks.T.cleanup]` overrides."""
        overrides = self.task(task).cleanup if task else {}
        return attrs.evolve(self.cleanup, **overrides) if overrides else self.cleanup

    def optimize_for(self, task: str | None) -> OptimizeSettings:
        """How to optimize: `[optimize]` with the task's `[tasks.T.optimize]` overrides; the nested tables
        (`min_examples`, `triggers`) are merged key by key, so a task overrides one value without losing the rest."""
        overrides = dict(self.task(task).optimize) if task else {}
        for table in ("min_examples", "triggers"):
            if table in overrides:
                overrides[table] = {**getattr(self.optimize, table), **overrides[table]}
        return attrs.evolve(self.optimize, **overrides) if overrides else self.optimize


@functools.lru_cache(maxsize=256)
def _default_task(name: str) -> TaskSettings:
    """The defaults of an undeclared task, made once per name: intake asks for them per record, and building
    a frozen TaskSettings each time was a noticeable share of deciding a status. Frozen, so sharing is safe."""
    return TaskSettings(name=name)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip().split(":")[0].strip() for part in text.split(",") if part.strip())


# ---- reading ---------------------------------------------------------------------------------------------

class _Reader:
    """Checks one parsed TOML document key by key, so that every error can name the key and its line."""

    def __init__(self, text: str, path: Path | None):
        self.text, self.path = text, path

    def where(self, dotted: str) -> str:
        place = str(self.path) if self.path else "settings"
        line = self._line_of(dotted)
        return f"{place}:{line}" if line else place

    def _line_of(self, dotted: str) -> int | None:
        """The line of `dotted` (a.b.key): the key inside its own table when that table has a header, else the
        table's header, else the first line that sets the key anywhere."""
        parts = dotted.split(".")
        lines = self.text.splitlines()
        key = re.compile(rf'^\s*"?{re.escape(parts[-1])}"?\s*=')
        for depth in range(len(parts), 0, -1):
            header = re.compile(rf"^\s*\[+\s*{re.escape('.'.join(parts[:depth]))}\s*\]+")
            for number, line in enumerate(lines, start=1):
                if header.search(line):
                    if depth == len(parts):
                        return number
                    for offset, inner in enumerate(lines[number:], start=number + 1):
                        if inner.lstrip().startswith("["):
                            break
                        if key.search(inner):
                            return offset
                    return number
        return next((n for n, line in enumerate(lines, start=1) if key.search(line)), None)

    def fail(self, dotted: str, message: str) -> ConfigError:
        return ConfigError(f"{self.where(dotted)}: {dotted}: {message}")

    def table(self, data: Any, dotted: str, known: tuple[str, ...] | None) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(dotted, f"must be a table, got {type(data).__name__}")
        if known is not None:
            for key in data:
                if key not in known:
                    raise self.fail(f"{dotted}.{key}" if dotted else key,
                                    f"unknown key; known keys here: {', '.join(known)}")
        return data

    def string(self, value: Any, dotted: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(dotted, f"must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise self.fail(dotted, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def strings(self, value: Any, dotted: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(dotted, f"must be a list of non-empty strings, got {value!r}")
        return tuple(value)

    def unit(self, value: Any, dotted: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.fail(dotted, f"must be a number between 0 and 1, got {value!r}")
        return float(value)

    def weights(self, value: Any, dotted: str) -> dict[str, float]:
        table = self.table(value, dotted, None)
        for key, weight in table.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise self.fail(f"{dotted}.{key}", f"must be a number >= 0, got {weight!r}")
        return {k: float(v) for k, v in table.items()}

    def positive_int(self, value: Any, dotted: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(dotted, f"must be a whole number >= 1, got {value!r}")
        return value

    def boolean(self, value: Any, dotted: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(dotted, f"must be true or false, got {value!r}")
        return value


_TOP_KEYS = ("store", "plugins", "intake", "default_task", "tasks", "plugin", "lm", "cleanup", "optimize")
_TASK_KEYS = ("signature", "inputs", "outputs", "collection_mode", "collect", "sample_rate", "min_quality",
              "weights", "topics", "difficulties", "domains", "program", "per_cell", "cell_target", "cell_cap",
              "max_synthetic_ratio", "lm", "cleanup", "optimize")
_DOMAIN_KEYS = ("topics", "difficulties", "min_quality", "weights")


def _read_lm(r: _Reader, data: Any, where: str) -> dict[str, Any]:
    """An LM table's values (only the keys present), checked."""
    t = r.table(data, where, LM_KEYS)
    values: dict[str, Any] = {}
    for key in ("model", "api_base", "api_key_env"):
        if key in t:
            values[key] = r.string(t[key], f"{where}.{key}")
    if "temperature" in t:
        value = t["temperature"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
            raise r.fail(f"{where}.temperature", f"must be a number from 0 to 2, got {value!r}")
        values["temperature"] = float(value)
    for key in ("max_tokens", "concurrency", "rpm"):
        if key in t:
            values[key] = r.positive_int(t[key], f"{where}.{key}")
    if "retries" in t:
        value = t["retries"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise r.fail(f"{where}.retries", f"must be a whole number >= 0, got {value!r}")
        values["retries"] = value
    if "timeout" in t:
        value = t["timeout"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise r.fail(f"{where}.timeout", f"must be a number of seconds > 0, got {value!r}")
        values["timeout"] = float(value)
    if "cache" in t:
        values["cache"] = r.boolean(t["cache"], f"{where}.cache")
    return values


def _read_cleanup(r: _Reader, data: Any, where: str) -> dict[str, Any]:
    t = r.table(data, where, CLEANUP_KEYS)
    values: dict[str, Any] = {}
    if "max_age_days" in t:
        values["max_age_days"] = r.positive_int(t["max_age_days"], f"{where}.max_age_days")
    if "min_quality" in t:
        values["min_quality"] = r.unit(t["min_quality"], f"{where}.min_quality")
    for key in ("superseded", "over_full"):
        if key in t:
            values[key] = r.boolean(t[key], f"{where}.{key}")
    return values


def _signature(r: _Reader, value: Any, where: str) -> str:
    """A DSPy signature string ("question -> answer", both sides named) or an import path ("pkg.mod:Sig")."""
    text = r.string(value, where)
    if ":" in text and "->" not in text:
        return text  # an import path, resolved (and checked) by conversion
    left, arrow, right = text.partition("->")
    if not arrow or not left.strip() or not right.strip():
        raise r.fail(where, f"= {text!r} is not a signature: write inputs -> outputs, e.g. \"question -> answer\", "
                            "or an import path such as \"mypkg.signatures:QA\"")
    return text


def _read_task(r: _Reader, name: str, data: Any) -> TaskSettings:
    where = f"tasks.{name}"
    if not TASK_NAME.match(name):
        raise r.fail(where, "is not a task name (letters, digits, '_', '.', '-')")
    t = r.table(data, where, _TASK_KEYS)
    values: dict[str, Any] = {"name": name}
    if "signature" in t:
        values["signature"] = _signature(r, t["signature"], f"{where}.signature")
    for key in ("inputs", "outputs", "topics", "difficulties"):
        if key in t:
            values[key] = r.strings(t[key], f"{where}.{key}")
    if "collection_mode" in t:
        values["collection_mode"] = r.string(t["collection_mode"], f"{where}.collection_mode", COLLECTION_MODES)
    if "min_quality" in t:
        values["min_quality"] = r.unit(t["min_quality"], f"{where}.min_quality")
    if "collect" in t:
        values["collect"] = r.boolean(t["collect"], f"{where}.collect")
    if "sample_rate" in t:
        values["sample_rate"] = r.unit(t["sample_rate"], f"{where}.sample_rate")
    if "weights" in t:
        values["weights"] = r.weights(t["weights"], f"{where}.weights")
    domains = {}
    for domain, ddata in r.table(t.get("domains", {}), f"{where}.domains", None).items():
        dwhere = f"{where}.domains.{domain}"
        d = r.table(ddata, dwhere, _DOMAIN_KEYS)
        domains[domain] = DomainSettings(
            topics=r.strings(d["topics"], f"{dwhere}.topics") if "topics" in d else None,
            difficulties=r.strings(d["difficulties"], f"{dwhere}.difficulties") if "difficulties" in d else None,
            min_quality=r.unit(d["min_quality"], f"{dwhere}.min_quality") if "min_quality" in d else None,
            weights=r.weights(d["weights"], f"{dwhere}.weights") if "weights" in d else None,
        )
    values["domains"] = domains
    if "program" in t:
        values["program"] = r.string(t["program"], f"{where}.program")
    for key in ("per_cell", "cell_target", "cell_cap"):
        if key in t:
            values[key] = r.positive_int(t[key], f"{where}.{key}")
    if "max_synthetic_ratio" in t:
        values["max_synthetic_ratio"] = r.unit(t["max_synthetic_ratio"], f"{where}.max_synthetic_ratio")
    values["lm"] = {purpose: _read_lm(r, table, f"{where}.lm.{purpose}")
                    for purpose, table in r.table(t.get("lm", {}), f"{where}.lm", None).items()}
    if "cleanup" in t:
        values["cleanup"] = _read_cleanup(r, t["cleanup"], f"{where}.cleanup")
    if "optimize" in t:
        values["optimize"] = read_optimize(r, t["optimize"], f"{where}.optimize")
    return TaskSettings(**values)


def _from_document(doc: Mapping[str, Any], r: _Reader) -> dict[str, Any]:
    """The file's values as keyword arguments for Settings (only the keys present)."""
    top = r.table(dict(doc), "", _TOP_KEYS)
    values: dict[str, Any] = {}
    store = r.table(top.get("store", {}), "store", ("url",))
    if "url" in store:
        values["store_url"] = r.string(store["url"], "store.url")
    plugins = r.table(top.get("plugins", {}), "plugins", ("load", "disable", "strict", "timeout"))
    if "load" in plugins:
        values["load_plugins"] = r.strings(plugins["load"], "plugins.load")
    if "disable" in plugins:
        values["disable_plugins"] = r.strings(plugins["disable"], "plugins.disable")
    if "strict" in plugins:
        values["strict_plugins"] = r.boolean(plugins["strict"], "plugins.strict")
    if "timeout" in plugins:
        values["plugin_timeout"] = _plugin_timeout(plugins["timeout"], "plugins.timeout")
    intake = r.table(top.get("intake", {}), "intake", ("batch_size", "workers"))
    if "batch_size" in intake:
        values["batch_size"] = r.positive_int(intake["batch_size"], "intake.batch_size")
    if "workers" in intake:
        workers = intake["workers"]
        if workers != "auto" and (isinstance(workers, bool) or not isinstance(workers, int)
                                  or not 0 <= workers <= MAX_INTAKE_WORKERS):
            raise r.fail("intake.workers", f'must be a whole number from 0 to {MAX_INTAKE_WORKERS} or "auto", '
                                           f'got {workers!r}')
        values["intake_workers"] = workers
    if "default_task" in top:
        values["default_task"] = r.string(top["default_task"], "default_task")
    tasks = r.table(top.get("tasks", {}), "tasks", None)
    values["tasks"] = {name: _read_task(r, name, data) for name, data in tasks.items()}
    values["plugin_config"] = {name: r.table(data, f"plugin.{name}", None)
                               for name, data in r.table(top.get("plugin", {}), "plugin", None).items()}
    values["lm"] = {purpose: LMSettings(**_read_lm(r, table, f"lm.{purpose}"))
                    for purpose, table in r.table(top.get("lm", {}), "lm", None).items()}
    if "cleanup" in top:
        values["cleanup"] = CleanupSettings(**_read_cleanup(r, top["cleanup"], "cleanup"))
    if "optimize" in top:
        values["optimize"] = OptimizeSettings(**read_optimize(r, top["optimize"], "optimize"))
    return values


def _env_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"environment variable {name}={value!r}: use 1 or 0")


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "TRAINKIT_STORE_URL" in env:
        values["store_url"] = env["TRAINKIT_STORE_URL"]
    if "TRAINKIT_LOAD_PLUGINS" in env:
        values["load_plugins"] = _split(env["TRAINKIT_LOAD_PLUGINS"])
    if "TRAINKIT_DISABLE_PLUGINS" in env:
        values["disable_plugins"] = _split(env["TRAINKIT_DISABLE_PLUGINS"])
    if "TRAINKIT_STRICT_PLUGINS" in env:
        values["strict_plugins"] = _env_bool("TRAINKIT_STRICT_PLUGINS", env["TRAINKIT_STRICT_PLUGINS"])
    if "TRAINKIT_PLUGIN_TIMEOUT" in env:
        raw = env["TRAINKIT_PLUGIN_TIMEOUT"]
        try:
            number: Any = float(raw)
        except ValueError:
            number = raw  # refused below as it was given ("got -1.0" before)
        values["plugin_timeout"] = _plugin_timeout(number, f"environment variable TRAINKIT_PLUGIN_TIMEOUT={raw!r}")
    if "TRAINKIT_BATCH_SIZE" in env:
        raw = env["TRAINKIT_BATCH_SIZE"]
        if not raw.isdigit() or int(raw) < 1:
            raise ConfigError(f"environment variable TRAINKIT_BATCH_SIZE={raw!r}: use a whole number >= 1")
        values["batch_size"] = int(raw)
    if env.get("TRAINKIT_DEFAULT_TASK"):
        values["default_task"] = env["TRAINKIT_DEFAULT_TASK"]
    return values


def _plugin_timeout(value: Any, where: str) -> float | None:
    """Seconds > 0, or 0 for no limit (None)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise ConfigError(f"{where}: must be a number of seconds (0 for no limit), got {value!r}")
    return float(value) or None


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def resolve_store_url(url: str, base: Path) -> str:
    """Make a relative `sqlite:///file.db` path relative to the project folder, not the current one."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            return "sqlite:///" + str((base / path).resolve())
    return url


def load_settings(config: str | Path | None = None, *, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None, cwd: Path | None = None) -> Settings:
    """Read settings: the file (`config`, `$TRAINKIT_CONFIG` or the nearest trainkit.toml), then environment,
    then `overrides` (command-line options; `None` values are ignored)."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    path = locate_config(config, env, cwd)
    values: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except ValueError as exc:  # an integer of more than 4300 digits, which Python will not convert
            raise ConfigError(f"{path}: cannot read a value: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        values.update(_from_document(doc, _Reader(text, path)))
    values.update(_from_environment(env))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    project_dir = path.parent.resolve() if path is not None else cwd.resolve()
    url = values.pop("store_url", None) or f"sqlite:///{DEFAULT_DB_FILE}"
    return Settings(store_url=resolve_store_url(url, project_dir), project_dir=project_dir, config_path=path,
                    **values)
