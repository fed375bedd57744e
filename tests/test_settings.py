"""Settings from trainkit.toml, TRAINKIT_* environment and overrides; errors name key, file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dspy_trainkit import ConfigError, load_settings

GOOD = """
default_task = "problems"

[store]
url = "sqlite:///data/tk.db"

[plugins]
disable = ["basic_checks"]

[intake]
batch_size = 500

[tasks.problems]
signature = "domain, topic, difficulty -> problem, answer"
collection_mode = "manual"
min_quality = 0.6
topics = ["fractions", "geometry"]
difficulties = ["easy", "hard"]

[tasks.problems.weights]
accuracy = 2

[tasks.problems.domains.algebra]
min_quality = 0.8
weights = { coherence = 0.5 }

[plugin.sample]
anything = [1, 2]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trainkit.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_full_file_is_read(tmp_path):
    write(tmp_path, GOOD)
    s = load_settings(env={}, cwd=tmp_path)
    assert s.store_url == f"sqlite:///{tmp_path / 'data' / 'tk.db'}"
    assert s.disable_plugins == ("basic_checks",) and s.batch_size == 500 and s.default_task == "problems"
    task = s.task("problems")
    assert task.fields() == (("domain", "topic", "difficulty"), ("problem", "answer"))
    assert task.collection_mode == "manual"
    assert task.min_quality_for("algebra") == 0.8 and task.min_quality_for("geometry") == 0.6
    assert task.weights_for("algebra") == {"accuracy": 2.0, "coherence": 0.5}
    assert s.plugin_config == {"sample": {"anything": [1, 2]}}
    assert s.task("unknown").min_quality == 0.0


def test_found_from_a_subfolder_and_relative_store_is_next_to_the_file(tmp_path):
    write(tmp_path, '[store]\nurl = "sqlite:///x.db"\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    s = load_settings(env={}, cwd=sub)
    assert s.config_path == tmp_path / "trainkit.toml" and s.store_url == f"sqlite:///{tmp_path / 'x.db'}"


def test_defaults_without_a_file(tmp_path):
    s = load_settings(env={}, cwd=tmp_path)
    assert s.config_path is None and s.store_url == f"sqlite:///{tmp_path / 'trainkit.db'}"
    assert s.load_plugins is None and s.strict_plugins is False


def test_environment_beats_file_and_overrides_beat_environment(tmp_path):
    write(tmp_path, '[store]\nurl = "sqlite:///file.db"\n[intake]\nbatch_size = 10\n')
    env = {"TRAINKIT_STORE_URL": "postgresql://u@h/db", "TRAINKIT_BATCH_SIZE": "20",
           "TRAINKIT_LOAD_PLUGINS": "", "TRAINKIT_STRICT_PLUGINS": "yes", "TRAINKIT_DISABLE_PLUGINS": "a, b"}
    s = load_settings(env=env, cwd=tmp_path)
    assert s.store_url == "postgresql://u@h/db" and s.batch_size == 20
    assert s.load_plugins == () and s.strict_plugins is True and s.disable_plugins == ("a", "b")
    s = load_settings(env=env, cwd=tmp_path, overrides={"batch_size": 30, "strict_plugins": None})
    assert s.batch_size == 30 and s.strict_plugins is True


@pytest.mark.parametrize(("text", "expected"), [
    ("[store\nurl = 1", "not valid TOML"),
    ("colour = 1\n", "trainkit.toml:1: colour: unknown key"),
    ("[store]\n\nurl = 3\n", "trainkit.toml:3: store.url: must be a non-empty string"),
    ("[intake]\nbatch_size = 0\n", "trainkit.toml:2: intake.batch_size: must be a whole number >= 1"),
    ("[tasks.qa]\nmin_qualty = 0.5\n", "trainkit.toml:2: tasks.qa.min_qualty: unknown key"),
    ("[tasks.qa]\nmin_quality = 2\n", "tasks.qa.min_quality: must be a number between 0 and 1"),
    ("[tasks.qa]\ncollection_mode = 'auto'\n", "is not one of automatic, manual"),
    ("[tasks.qa.domains.algebra]\ntopics = 'x'\n", "tasks.qa.domains.algebra.topics: must be a list"),
    ("[tasks.qa.weights]\naccuracy = -1\n", "tasks.qa.weights.accuracy: must be a number >= 0"),
    ("[plugins]\nstrict = 'yes'\n", "plugins.strict: must be true or false"),
    ('[tasks."bad name"]\n', "is not a task name"),
])
def test_bad_files_name_key_file_and_line(tmp_path, text, expected):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(env={}, cwd=tmp_path)
    assert expected in str(err.value) and str(tmp_path / "trainkit.toml") in str(err.value)


def test_bad_environment_values(tmp_path):
    with pytest.raises(ConfigError, match="TRAINKIT_STRICT_PLUGINS"):
        load_settings(env={"TRAINKIT_STRICT_PLUGINS": "maybe"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="TRAINKIT_BATCH_SIZE"):
        load_settings(env={"TRAINKIT_BATCH_SIZE": "-5"}, cwd=tmp_path)


def test_missing_named_config(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="nope.toml"):
        load_settings(env={"TRAINKIT_CONFIG": str(tmp_path / "nope.toml")}, cwd=tmp_path)


def test_error_line_is_the_key_inside_its_own_table(tmp_path):
    write(tmp_path, "[tasks.qa]\nmin_quality = 0.5\n\n[tasks.qa.domains.algebra]\ntopics = ['x']\nmin_quality = 5\n")
    with pytest.raises(ConfigError, match=r"trainkit.toml:6: tasks.qa.domains.algebra.min_quality"):
        load_settings(env={}, cwd=tmp_path)


def test_typed_string_signatures_declare_fields(tmp_path):
    write(tmp_path, '[tasks.qa]\nsignature = "question: str, context: list[str] -> answer: str"\n')
    assert load_settings(env={}, cwd=tmp_path).task("qa").fields() == (("question", "context"), ("answer",))


def test_lm_and_cleanup_settings_with_task_overrides(tmp_path):
    write(tmp_path, """
[lm.generation]
model = "openai/gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
concurrency = 8
rpm = 600

[cleanup]
max_age_days = 90

[tasks.qa]
topics = ["a", "b"]
difficulties = ["easy", "hard"]
per_cell = 3
cell_cap = 50
max_synthetic_ratio = 0.5

[tasks.qa.lm.generation]
temperature = 0.9

[tasks.qa.cleanup]
min_quality = 0.4

[tasks.qa.domains.algebra]
topics = ["x"]
""")
    s = load_settings(env={}, cwd=tmp_path)
    lm = s.lm_for("qa", "generation")
    assert (lm.model, lm.concurrency, lm.rpm, lm.temperature, lm.retries) == ("openai/gpt-4o-mini", 8, 600, 0.9, 3)
    assert s.lm_for("other", "generation").temperature is None and s.lm_for("qa", "judging").model is None
    assert s.cleanup_for("qa").max_age_days == 90 and s.cleanup_for("qa").min_quality == 0.4
    assert s.cleanup_for(None).min_quality is None
    task = s.task("qa")
    assert (task.per_cell, task.cell_cap, task.max_synthetic_ratio) == (3, 50, 0.5)
    assert task.cells() == [("algebra", "x", "easy"), ("algebra", "x", "hard")]
    assert s.task("none").cells() == [(None, None, None)]


@pytest.mark.parametrize(("text", "expected"), [
    ("[lm.generation]\nconcurrency = 0\n", "lm.generation.concurrency: must be a whole number >= 1"),
    ("[lm.generation]\nmodle = 'x'\n", "lm.generation.modle: unknown key"),
    ("[tasks.qa.lm.generation]\ntemperature = 5\n", "tasks.qa.lm.generation.temperature"),
    ("[cleanup]\nmax_age_days = -1\n", "cleanup.max_age_days"),
])
def test_bad_lm_and_cleanup_settings(tmp_path, text, expected):
    write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        load_settings(env={}, cwd=tmp_path)


@pytest.mark.parametrize("signature", ["question answer", "-> answer", "question ->", "question -> "])
def test_a_signature_without_both_sides_is_a_config_error(tmp_path, signature):
    config = tmp_path / "trainkit.toml"
    config.write_text(f'[tasks.qa]\nsignature = "{signature}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"trainkit.toml:2: tasks.qa.signature: .* is not a signature"):
        load_settings(config, env={})


def test_signature_import_paths_and_typed_signatures_are_accepted(tmp_path):
    config = tmp_path / "trainkit.toml"
    config.write_text('[tasks.a]\nsignature = "pkg.sigs:QA"\n[tasks.b]\nsignature = "question: str -> answer"\n',
                      encoding="utf-8")
    settings = load_settings(config, env={})
    assert settings.tasks["a"].signature == "pkg.sigs:QA" and settings.tasks["b"].fields() == (("question",),
                                                                                                 ("answer",))
