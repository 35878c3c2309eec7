#!/usr/bin/env bash
# GPU check, everything in one go on a CUDA machine (from the repository root):
#
#   bash bench/gpu_check.sh             # ~5-10 min on one modern GPU
#   bash bench/gpu_check.sh --dry-run   # on a CPU machine: tiny sizes, checks that every part runs
#
# 1. bench/gpu_check.py: tunesmith LoRA vs TRL SFTTrainer + peft LoRA on the bundled model (bf16, packed, same
#    hyperparameters): tokens/s and peak GPU memory; then tunesmith QLoRA's peak memory (needs bitsandbytes).
# 2. `tunesmith train` through accelerate: DDP on every GPU of the machine (2+ GPUs), FSDP (also on 1 GPU).
# Prints the parts' output, then ONE JSON line merging all figures (what the README's "GPU figures" wait for).
set -uo pipefail

PY="${PYTHON:-.venv/bin/python}"
DRY=""
[[ "${1:-}" == "--dry-run" ]] && DRY="--dry-run"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" CI=1

"$PY" - <<'EOF'
import torch
print(f"[gpu-check] torch {torch.__version__}, CUDA {torch.version.cuda}, available {torch.cuda.is_available()}, "
      f"devices {[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}")
EOF

# 1. throughput and memory
"$PY" bench/gpu_check.py $DRY | tee "$OUT/bench.log"
tail -n 1 "$OUT/bench.log" > "$OUT/bench.json"

# 2. the launcher: short training runs on the bundled model and data, no evaluation
GPUS="$("$PY" -c 'import torch; print(torch.cuda.device_count())')"
COMMON=(--no-eval --vet.enabled=false --augment.enabled=false --train.max_steps=6 --train.save_every_steps=3
        --train.batch_size=8 --train.grad_accum_steps=2 --encode.max_seq_length=512 --run.output_dir="$OUT/runs")
if [[ -n "$DRY" ]]; then
  COMMON+=(--train.max_steps=2 --train.batch_size=2 --encode.max_seq_length=128 --data.max_records=64)
fi
smoke() {  # name, extra args...: runs `tunesmith train`, records ok/failed and the wall time
  local name="$1"; shift
  local start=$SECONDS
  if "$PY" -m tunesmith.cli.main train "${COMMON[@]}" "$@" > "$OUT/$name.log" 2>&1; then
    echo "{\"$name\": \"ok\", \"${name}_s\": $((SECONDS - start))}" > "$OUT/$name.json"
  else
    echo "{\"$name\": \"failed (see $OUT/$name.log)\"}" > "$OUT/$name.json"; tail -n 20 "$OUT/$name.log"
  fi
}
if [[ -n "$DRY" ]]; then
  smoke ddp_2proc_cpu --launch.num_processes=2 --run.run_id=ddp --model.device=cpu --launch.main_process_port=29611
else
  if (( GPUS >= 2 )); then smoke ddp --launch.num_processes="$GPUS" --run.run_id=ddp; fi
  smoke fsdp --launch.backend=fsdp --launch.num_processes="$GPUS" --run.run_id=fsdp
fi

# one JSON line with everything
"$PY" - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
merged = {}
for path in sorted(out.glob("*.json")):
    try:
        merged.update(json.loads(path.read_text().strip().splitlines()[-1]))
    except (ValueError, IndexError):
        merged[path.stem] = "no JSON line (see the log)"
print(json.dumps(merged))
EOF
