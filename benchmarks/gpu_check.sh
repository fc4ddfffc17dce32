#!/usr/bin/env bash
# Every GPU measurement in one call (issue 16, item 6): run it when a GPU is lent, then record the figures
# in benchmarks/RESULTS.md. About 10 minutes on one H100; each part has its own time limit, so one slow part
# cannot take the others' time. Writes one JSON file with every part's results (and which parts failed).
#
#   bash benchmarks/gpu_check.sh OUT.json          # on the GPU machine (needs .venv with CUDA torch)
#   bash benchmarks/gpu_check.sh --dry-run         # anywhere: print the plan and check every option of it
#                                                  # against the scripts' --help (the test suite runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

# name | seconds allowed | command (the part writes its JSON to $PART_JSON)
PARTS=(
  "gpt|150|benchmarks/gpt.py --device cuda --size gpt2-124m --compile --json \$PART_JSON"
  "diffusion|180|benchmarks/diffusion.py --device cuda --peer-same --json \$PART_JSON"
  "quality_per_flop|210|benchmarks/quality_per_flop.py --device cuda --budget-tflops 3000 --n 2000 --batch 128 --quiet --json \$PART_JSON"
  "wavenet|60|benchmarks/wavenet.py --device cuda --samples 2000 --batch 16 --json \$PART_JSON"
)

if [[ "${1:-}" == "--dry-run" ]]; then
  status=0
  for part in "${PARTS[@]}"; do
    IFS='|' read -r name limit cmd <<<"$part"
    echo "$name (at most ${limit}s): $PY $cmd"
    script=${cmd%% *}
    help=$("$PY" "$script" --help)
    for opt in $(grep -o -- '--[a-z][a-z-]*' <<<"$cmd"); do
      if ! grep -q -- "$opt" <<<"$help"; then
        echo "error: $script has no option $opt (the plan above is out of date)" >&2
        status=2
      fi
    done
  done
  exit $status
fi

OUT=${1:?usage: gpu_check.sh OUT.json | --dry-run}
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: no CUDA device; run it where a GPU is lent')"
TMP=$(mktemp -d)
for part in "${PARTS[@]}"; do
  IFS='|' read -r name limit cmd <<<"$part"
  export PART_JSON="$TMP/$name.json"
  echo "== $name (at most ${limit}s)"
  if ! timeout "$limit" "$PY" $(eval echo "$cmd"); then
    echo "{\"failed\": \"exit $? within ${limit}s\"}" >"$PART_JSON"
  fi
done
"$PY" - "$TMP" "$OUT" <<'PYEOF'
import json, pathlib, platform, sys, time
import torch
tmp, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
parts = {p.stem: json.loads(p.read_text()) for p in sorted(tmp.glob("*.json"))}
meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__, "python": platform.python_version()}
out.write_text(json.dumps({"machine": meta, **parts}, indent=1))
print(f"wrote {out}")
PYEOF
