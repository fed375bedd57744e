"""One way to make a task's program and one way to build an LM from settings, shared by bootstrap and
optimization: the same spec gives the same program (and the same errors) on both paths, and an optimization LM is
the generation module's `build_lm` with DSPy's own retries on."""

from __future__ import annotations

import pytest
from optimize_support import PROGRAM, TASK, make_project, open_project

from dspy_trainkit.errors import ConfigError
from dspy_trainkit.generation.program import load_generator, module_factory
from dspy_trainkit.optimization import resolve, runs


def broken_factory():
    raise RuntimeError("no")


def not_a_module():
    return "text"


def test_bootstrap_and_optimize_make_the_task_program_alike(tmp_path) -> None:
    config = make_project(tmp_path / "p")
    config.write_text(config.read_text().replace("[tasks.problems]\n", f'[tasks.problems]\nprogram = "{PROGRAM}"\n'))
    with open_project(config) as kit:
        make, ref = resolve.program_factory(kit, TASK)
        generator = load_generator(kit.settings.task(TASK), None, kit.settings.project_dir)
        assert ref == PROGRAM and type(make()) is type(generator.program)
        for spec, message in ((broken_factory, "calling it to make the program failed: RuntimeError: no"),
                              (not_a_module, "made a str, not a dspy.Module")):
            with pytest.raises(ConfigError, match=message):
                resolve.program_factory(kit, TASK, spec)[0]()
            with pytest.raises(ConfigError, match=rf"^\[tasks.qa\] program = .*{message}"):
                module_factory(spec, None, "[tasks.qa] program =")()
    made = module_factory(generator.program)
    assert made() is not generator.program and type(made()) is type(generator.program)  # an instance: copies


def test_the_optimization_lm_is_built_by_generation_with_dspy_retries(tmp_path) -> None:
    config = make_project(tmp_path / "p", extra='[lm.program]\nmodel = "openai/m1"\nretries = 2\n'
                                               'api_base = "http://127.0.0.1:9"\n')
    with open_project(config) as kit:
        lm = resolve.configured_lm(kit, TASK, "program")
        assert lm.model == "openai/m1" and lm.num_retries == 2
        assert kit.lm(TASK, "program").num_retries == 0  # LMCalls retries generation calls itself
        assert resolve.configured_lm(kit, TASK, "reflection") is None
        assert not hasattr(runs, "build_lm")
