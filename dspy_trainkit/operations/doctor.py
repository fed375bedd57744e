"""`trainkit doctor`: one pass over what a deployment needs, each problem with what to do about it.

Why one command: an operator (or a container's health check, or cron) wants a single yes/no with the reason,
before a long run fails an hour in. The doctor only looks: it opens the store without migrating it, so a pending
migration is reported, not applied behind the operator's back. Every check catches its own errors, so one broken
part (a config that does not parse, a store that is down) is named and the checks that do not depend on it
still run.

The verdict: "healthy" (exit 0), "degraded" (warnings only, exit 3), "broken" (an error, exit 1).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import TrainkitError
from ..redaction import redact

if TYPE_CHECKING:
    from ..plugin_manager import TrainkitPluginManager
    from ..settings import LMSettings, Settings
    from ..store import Store

EXIT_HEALTHY, EXIT_BROKEN, EXIT_DEGRADED = 0, 1, 3
#: Free space beside the store below which the doctor warns, and below which it calls the store broken.
DISK_WARNING_BYTES = 1 << 30
DISK_ERROR_BYTES = 100 << 20
#: A newest backup older than this (seconds) is a warning.
DEFAULT_MAX_BACKUP_AGE = 26 * 3600
#: Seconds `doctor --lm` waits for each LM's answer (`--lm-timeout`): a health check must not hang on a dead server.
DEFAULT_LM_TIMEOUT = 10.0
#: Where the collector writes records it could not store (collection.Collector._spill).
SPILL_GLOB = "collect-failed-*.jsonl"


@attrs.frozen
class Check:
    """One check's outcome: `status` is "ok", "warning", "error" or "skipped"; `fix` says what to do."""

    name: str
    status: str
    message: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def status(self) -> str:
        statuses = {check.status for check in self.checks}
        return "broken" if "error" in statuses else "degraded" if "warning" in statuses else "healthy"

    @property
    def exit_code(self) -> int:
        return {"healthy": EXIT_HEALTHY, "degraded": EXIT_DEGRADED, "broken": EXIT_BROKEN}[self.status]

    def problems(self) -> list[Check]:
        return [check for check in self.checks if check.status in ("error", "warning")]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "checks": [check.to_dict() for check in self.checks]}


def doctor(config: str | Path | None = None, url: str | None = None, *, lm: bool = False,
           backup_dir: str | Path | None = None, max_backup_age: float = DEFAULT_MAX_BACKUP_AGE,
           disable: Iterable[str] = ()) -> DoctorReport:
    """Check the project of `config` (default: the nearest trainkit.toml) with store `url` (default: its
    settings'). `lm=True` also makes one tiny call to every configured LM; `backup_dir` is where backups go."""
    from ..plugin_manager import make_plugin_manager
    from ..settings import load_settings, resolve_store_url

    def settings() -> Settings:
        loaded = load_settings(config)
        return attrs.evolve(loaded, store_url=resolve_store_url(url, Path.cwd())) if url else loaded

    def plugins(s: Settings) -> TrainkitPluginManager:
        return make_plugin_manager(load=s.load_plugins, disable=(*s.disable_plugins, *disable),
                                   strict=False, timeout=s.plugin_timeout)

    return run_checks(settings, plugins, lm=lm, backup_dir=backup_dir, max_backup_age=max_backup_age)


def run_checks(load_settings: Callable[[], Settings], make_pm: Callable[[Settings], TrainkitPluginManager], *,
               lm: bool = False, backup_dir: str | Path | None = None,
               max_backup_age: float = DEFAULT_MAX_BACKUP_AGE, store_url: str | None = None,
               lm_timeout: float = DEFAULT_LM_TIMEOUT) -> DoctorReport:
    """The checks, with settings and plugins made by the caller (the CLI passes its global options' ones).
    When the settings do not load but `store_url` is given (`--db`), the checks that need only a store still
    run, on defaults: the store's, the disk beside it, spill files and backups; the settings failure is
    reported with them."""
    checks: list[Check] = []
    try:
        settings = load_settings()
    except TrainkitError as exc:
        checks.append(Check("settings", "error", redact(str(exc)),
                            "fix the named setting in trainkit.toml or the TRAINKIT_* variable; "
                            "`trainkit config` shows the settings in effect"))
        if store_url is None:
            checks.append(_backup_age(backup_dir, max_backup_age, None))
            return DoctorReport(tuple(checks))
        settings = _defaults_for(store_url)
        make_pm = _default_plugins
    else:
        where = str(settings.config_path) if settings.config_path else "defaults and environment (no trainkit.toml)"
        checks.append(Check("settings", "ok", f"settings parse ({where})"))
    pm = None
    try:
        pm = make_pm(settings)
    except TrainkitError as exc:
        checks.append(Check("plugins", "error", redact(str(exc)),
                            "fix or uninstall the plugin, or leave it out with `--disable-plugin NAME` or "
                            "[plugins] disable"))
    if pm is not None:
        checks.extend(_plugins(pm))
        checks.extend(_store(settings, pm))
        if lm:
            checks.extend(_lms(settings, lm_timeout))
    checks.append(_disk(settings))
    checks.append(_spills(settings))
    checks.append(_backup_age(backup_dir, max_backup_age, _source(settings)))
    return DoctorReport(tuple(check for check in checks if check is not None))


def _defaults_for(store_url: str) -> Settings:
    """Default settings around `store_url`, for checking a store whose project's settings do not load."""
    from ..settings import Settings, resolve_store_url

    return Settings(store_url=resolve_store_url(store_url, Path.cwd()), project_dir=Path.cwd())


def _default_plugins(settings: Settings) -> TrainkitPluginManager:
    from ..plugin_manager import make_plugin_manager

    return make_plugin_manager(timeout=settings.plugin_timeout)


def _plugins(pm: TrainkitPluginManager) -> list[Check]:
    infos = pm.plugin_infos()
    failed = [info for info in infos if info.status == "failed"]
    checks = [Check(f"plugin {info.name}", "error", redact(info.error or "failed to load"),
                    f"fix or reinstall {info.distribution or info.name!r}, or leave it out with "
                    f"`--disable-plugin {info.name}` or [plugins] disable = [\"{info.name}\"]") for info in failed]
    loaded = sum(1 for info in infos if info.status == "loaded")
    if not failed:
        checks.append(Check("plugins", "ok", f"{loaded} plugins loaded"))
    return checks


def _store(settings: Settings, pm: TrainkitPluginManager) -> list[Check]:
    from ..redaction import redact_url
    from ..store import open_store

    shown = redact_url(settings.store_url)
    try:
        store = open_store(settings.store_url, settings, pm, create=False, migrate=False)
    except TrainkitError as exc:
        return [Check("store", "error", redact(str(exc)),
                      "check store.url (or TRAINKIT_STORE_URL / --db) and that the database server is running "
                      "and reachable from here; `trainkit init` creates a new store")]
    except Exception as exc:  # a driver error the backend did not translate: still one line, no traceback
        return [Check("store", "error", f"cannot open store {shown}: {type(exc).__name__}: {redact(str(exc))}",
                      "check store.url and the database server")]
    try:
        checks = [Check("store", "ok", f"store {shown} is reachable")]
        checks.append(_migrations(store))
        checks.extend(Check(c["name"], c["status"], redact(str(c["message"])), c.get("fix"))
                      for c in store.health_checks())
        return checks
    except Exception as exc:  # a query failing mid-check is the answer, not a crash
        return [Check("store", "error", f"store {shown}: {type(exc).__name__}: {redact(str(exc))}",
                      "check the database server's log")]
    finally:
        store.close()


def _migrations(store: Store) -> Check:
    unknown = store.unknown_migrations()
    if unknown:
        return Check("migrations", "error", f"the store has migrations this trainkit does not know: "
                     f"{', '.join(unknown)} (a newer trainkit upgraded it)",
                     "upgrade dspy-trainkit on this host to the version the other hosts run")
    pending = store.pending_migrations()
    if pending:
        return Check("migrations", "warning", f"{len(pending)} pending: {', '.join(pending)}",
                     "back up (`trainkit backup FILE`), then apply them with `trainkit migrate`")
    return Check("migrations", "ok", f"schema current ({len(store.applied_migrations())} migrations applied)")


def _lms(settings: Settings, timeout: float = 10.0) -> list[Check]:
    """One tiny call per distinct LM: every `[lm.<purpose>]` with a model, and every task override of one;
    each waits at most `timeout` seconds (not the LM's own, a minute by default: a hanging server would hold
    the health check that long) and is not retried."""
    from ..generation.lm import check_lm

    targets: dict[tuple[Any, ...], tuple[str, str | None, LMSettings]] = {}
    wanted: list[tuple[str, str | None]] = [(purpose, None) for purpose in sorted(settings.lm)]
    wanted += [(purpose, task) for task, t in sorted(settings.tasks.items()) for purpose in sorted(t.lm)]
    for purpose, task in wanted:
        lm_settings = settings.lm_for(task, purpose)
        if lm_settings.model:
            key = (lm_settings.model, lm_settings.api_base, lm_settings.api_key_env)
            targets.setdefault(key, (purpose, task, lm_settings))
    if not targets:
        return [Check("lm", "skipped", "no LM configured ([lm.<purpose>] model)")]
    checks = []
    for purpose, task, lm_settings in targets.values():
        name = f"lm {purpose}" + (f" (task {task})" if task else "")
        table = f"[tasks.{task}.lm.{purpose}]" if task else f"[lm.{purpose}]"
        try:
            answer = _within(timeout, check_lm, attrs.evolve(lm_settings, retries=0,
                                                             timeout=min(lm_settings.timeout, timeout)),
                             purpose=purpose, task=task, what=f"{lm_settings.model}")
        except TrainkitError as exc:
            checks.append(Check(name, "error", redact(str(exc)),
                                f"check {table} model and api_base, that the server answers, and the key in the "
                                "variable api_key_env names; then `trainkit lm check`"))
        else:
            checks.append(Check(name, "ok", redact(answer)))
    return checks


def _within(seconds: float, call: Any, *args: Any, what: str, **kwargs: Any) -> Any:
    """`call(*args, **kwargs)` given `seconds` (and a second of grace) in all: the LM's own timeout bounds each
    read, not the whole answer, so a server that sends a byte a second would hold the health check for good.
    The call runs in a daemon thread that is abandoned when late (the process ends soon after a doctor run)."""
    import threading

    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, call(*args, **kwargs)))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread as it is
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name="trainkit-doctor-lm", daemon=True)
    worker.start()
    worker.join(seconds + 1.0)
    if not outcome:
        raise TrainkitError(f"LM {what}: no complete answer within {seconds:g} s (--lm-timeout)")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def store_folder(settings: Settings) -> Path:
    """The folder of a SQLite store's file; the project folder for a server store (whose disk is the server's)."""
    url = settings.store_url
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return Path(url[len("sqlite:///"):].partition("?")[0]).parent
    return Path(settings.project_dir)


def _disk(settings: Settings) -> Check:
    folder = store_folder(settings)
    try:
        usage = shutil.disk_usage(folder)
    except OSError as exc:
        return Check("disk", "warning", f"cannot measure free space in {folder}: {exc.strerror or exc}")
    free = f"{usage.free / (1 << 30):.1f} GiB free of {usage.total / (1 << 30):.1f} GiB in {folder}"
    fix = "free space on that file system (old exports, backups, logs) or move the store to a larger one"
    if usage.free < DISK_ERROR_BYTES:
        return Check("disk", "error", free, fix)
    if usage.free < DISK_WARNING_BYTES or usage.free < usage.total * 0.05:
        return Check("disk", "warning", free, fix)
    return Check("disk", "ok", free)


def spill_files(settings: Settings) -> list[Path]:
    """Collector spill files waiting to be imported again, oldest first."""
    folder = Path(settings.project_dir) / ".trainkit"
    return sorted(folder.glob(SPILL_GLOB), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []


def _spills(settings: Settings) -> Check:
    files = spill_files(settings)
    if not files:
        return Check("spill files", "ok", "no collector spill files waiting")
    lines = sum(1 for path in files for _line in path.open("rb"))
    return Check("spill files", "warning", f"{len(files)} collector spill file(s) with {lines} record(s) waiting: "
                 f"{', '.join(str(p) for p in files[:3])}{' ...' if len(files) > 3 else ''}",
                 "fix the cause logged when they were written, `trainkit import FILE` each, then delete it")


def newest_backup(folder: str | Path, source: str | None = None) -> Path | None:
    """The newest backup `trainkit backup --dir` wrote in `folder`: a `trainkit-TIME.tgz` whose manifest names
    `source` (the store URL, password masked) when given. Any other file (a README, another store's backups in a
    shared folder, an empty name reservation) is not a backup of this store and must not make it look fresh."""
    from ..lifecycle.rotation import NAME, backups_of, reserved_by

    if source is not None:
        found = backups_of(Path(folder), source)
    else:
        found = sorted(p for p in Path(folder).iterdir() if NAME.match(p.name) and p.is_file()
                       and reserved_by(p) is None)
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _source(settings: Any) -> str | None:
    """How this store is named in its backups' manifests (the URL with any password masked)."""
    from ..redaction import redact_url

    return redact_url(settings.store_url) if settings.store_url else None


def _backup_age(backup_dir: str | Path | None, max_age: float, source: str | None) -> Check:
    if backup_dir is None:
        return Check("backup", "skipped", "no backup folder given (--backup-dir)")
    folder = Path(backup_dir)
    if not folder.is_dir():
        return Check("backup", "warning", f"backup folder {folder} does not exist",
                     f"create it and write a backup: `trainkit backup --dir {folder} --keep 14`")
    newest = newest_backup(folder, source)
    if newest is None:
        return Check("backup", "warning", f"no backup of this store in {folder}",
                     f"write one: `trainkit backup --dir {folder} --keep 14` (the timer in deploy/systemd/ "
                     "runs it hourly)")
    age = time.time() - newest.stat().st_mtime
    message = f"newest backup {newest.name} is {age / 3600:.1f} h old"
    if age > max_age:
        return Check("backup", "warning", message, "check the backup job (cron or timer) and its log")
    return Check("backup", "ok", message)
