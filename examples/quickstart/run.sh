#!/usr/bin/env bash
# The quick start: a project with one task, a few examples through validation and dedup, and its stats.
# Usage: bash examples/quickstart/run.sh [PROJECT_DIR]   (default: ./trainkit-demo). Safe to re-run.
set -euo pipefail
dir="${1:-trainkit-demo}"
mkdir -p "$dir" && cd "$dir"

[ -f trainkit.toml ] || trainkit init --task qa --signature "question -> answer"
trainkit add -i question="What is 2 + 2?" -o answer=4 --domain math --topic arithmetic --difficulty easy
trainkit add -i question="What is 12 * 12?" -o answer=144 --domain math --topic arithmetic --difficulty medium
trainkit add -i question="What is the capital of France?" -o answer=Paris --domain geography --topic capitals
trainkit add -i question="What is 2 + 2?" -o answer=4      # a duplicate: stored once
trainkit add -i question="Name a prime above 100." -o answer=" "   # empty label: kept, but rejected
trainkit list
trainkit stats
