"""The shapes of names users give: task names and field names.

A module of its own because settings check task names and must not import the models (their attrs classes,
hashing and validators are a noticeable share of a start that only reads settings, such as `trainkit --help`).
"""

from __future__ import annotations

import re

TASK_NAME = re.compile(r"^[A-Za-z_][\w.\-]*$")
FIELD_NAME = re.compile(r"^[A-Za-z_]\w*$")
