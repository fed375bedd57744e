"""What two examples are compared on: the set of words of their input and output values, cut by
`words(inputs, outputs)` from `dspy_trainkit.generation.text` (where the choice of single words is explained),
the tokenizer the synthesis diversity metrics and the template strategy use too.
"""

from dspy_trainkit.pluginkit import PUNCTUATION, words

__all__ = ["PUNCTUATION", "words"]
