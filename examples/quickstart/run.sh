#!/usr/bin/env bash
# The quick start, the whole loop on the embedded SQLite store:
#  1. a `qa` project: examples added by hand and imported from a file (one line is not JSON, one has an empty
#     answer: both reported, the rest stored), then what the store holds and how good it is;
#  2. the example `problems` task (examples/problem_generation): not ready for DSPy -> a verified, balanced
#     dataset from the LM-free `template` strategy -> ready -> a snapshot -> a DSPy trainset file -> an
#     optimization run whose program is saved and kept as champion.
# Step 2's LM is a stand-in server on 127.0.0.1 (standin_lm.py) so that this runs offline; point [lm.program]
# at a real model for real work.
# Usage: bash examples/quickstart/run.sh [PROJECT_DIR]   (default: ./trainkit-demo). Safe to re-run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
example="$here/../problem_generation"
dir="${1:-trainkit-demo}"
mkdir -p "$dir" && cd "$dir"

echo "== 1. collect and curate: task qa"
trainkit init --task qa --signature "question -> answer" || trainkit init
trainkit add -i question="What is 2 + 2?" -o answer=4 --domain math --topic arithmetic --difficulty easy || true
trainkit add -i question="What is 2 + 2?" -o answer=4 || true    # a duplicate: stored once
trainkit import "$here/qa.jsonl" --rejects rejects.jsonl || true   # exit 3: some records were rejected
trainkit list
trainkit stats
trainkit report quality

echo "== 2. generate, check readiness, hand to DSPy, optimize: task problems"
mkdir -p problems && cd problems
cp "$example/trainkit.toml" "$example/pipeline.py" "$example/metrics.py" .
python3 "$here/standin_lm.py" > standin.url & standin=$!
trap 'kill $standin 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s standin.url ] && break; sleep 0.1; done
cat >> trainkit.toml <<TOML

[lm.program]  # the stand-in LM of the quick start; use a real model string, api_base and key for real work
model = "openai/standin"
api_base = "$(cat standin.url)"
api_key_env = "STANDIN_LM_KEY"
TOML
export STANDIN_LM_KEY=standin
trainkit init >/dev/null
trainkit ready --task problems || true                                   # exit 3: not ready yet
trainkit synthesize --task problems --strategy template --count 39 --seed 1
trainkit ready --task problems
trainkit snapshot create v1 --task problems || true                    # exists already on a re-run
trainkit export --format dspy --task problems -o trainset.json
trainkit optimize --task problems --program pipeline:ProblemGenerator --metric metrics:problem_quality \
  --optimizer bootstrap --snapshot v1
trainkit runs --task problems
