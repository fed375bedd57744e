"""Generation: making training data with an LM (issue 5).

`lm` builds a `dspy.LM` from LMSettings and checks it; `calls` runs many DSPy calls under one LM with
concurrency, a requests-per-minute cap, retries that honour Retry-After and honest accounting; `plan` and
`bootstrap` fill a task's domain x topic x difficulty cells through the one intake pipeline. DSPy is imported
only inside functions, so importing this package stays cheap.
"""
