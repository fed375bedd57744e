#!/usr/bin/env bash
# The quick start: a project with one task, examples added by hand and imported from a file (one line is not
# JSON, one has an empty answer: both reported, the rest stored), then what the store holds and how good it is.
# Usage: bash examples/quickstart/run.sh [PROJECT_DIR]   (default: ./trainkit-demo). Safe to re-run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-trainkit-demo}"
mkdir -p "$dir" && cd "$dir"

trainkit init --task qa --signature "question -> answer" || trainkit init
trainkit add -i question="What is 2 + 2?" -o answer=4 --domain math --topic arithmetic --difficulty easy || true
trainkit add -i question="What is 2 + 2?" -o answer=4 || true    # a duplicate: stored once
trainkit import "$here/qa.jsonl" --rejects rejects.jsonl || true   # exit 3: some records were rejected
trainkit list
trainkit stats
trainkit report quality
