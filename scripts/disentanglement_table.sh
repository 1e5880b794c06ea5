#!/bin/sh
# The README's disentanglement table in one command: trains a VAE, a beta-VAE (beta 4) and a
# beta-TCVAE (TC weight 6) on dSprites with one architecture, budget and seed (in parallel),
# scores each with `vae-tf disentanglement`, and prints a Markdown table.
#
#   scripts/disentanglement_table.sh [OUT_DIR]        # default OUT_DIR: /tmp/disent
#
# Budget and architecture come from the environment (defaults = the README's run):
#   LIMIT=30000 EPOCHS=5 SEED=0 ARCH="--arch conv --filters 32 32 64 64"
# VAE_TF="python -m vae_tf" picks the interpreter; prefix with `nice -n 15` on a shared machine.
set -eu
OUT=${1:-/tmp/disent}
LIMIT=${LIMIT:-30000}
EPOCHS=${EPOCHS:-5}
SEED=${SEED:-0}
ARCH=${ARCH:-"--arch conv --filters 32 32 64 64"}
VAE_TF=${VAE_TF:-"python -m vae_tf"}
PY=${VAE_TF% -m vae_tf}
mkdir -p "$OUT"

train() {  # NAME OPTIONS...
    name=$1; shift
    # shellcheck disable=SC2086  # ARCH and VAE_TF are word lists
    $VAE_TF train --dataset dsprites --limit "$LIMIT" --epochs "$EPOCHS" --seed "$SEED" $ARCH \
        --latent-dim 10 --likelihood bernoulli --batch-size 64 --lr 1e-3 --iw-samples 1 \
        --projector-examples 0 --no-export --out "$OUT/runs" --name "$name" "$@" \
        > "$OUT/$name.train.log" 2>&1
}

score() {  # NAME: scores a finished run
    name=$1
    test -f "$OUT/runs/$name/metrics.json" || { echo "training $name failed: see $OUT/$name.train.log" >&2; return 1; }
    $VAE_TF disentanglement "$OUT/runs/$name" --seed "$SEED" --out "$OUT/$name.scores.json" \
        > "$OUT/$name.scores.log" 2>&1
}

start=$(date +%s)
# Each model is scored as soon as it is trained; the three chains run side by side.
(train vae --model vae --beta 1 && score vae) &
(train beta-vae --model vae --beta 4 && score beta-vae) &
(train beta-tcvae --model tcvae --tc-weight 6 && score beta-tcvae) &
wait
for name in vae beta-vae beta-tcvae; do
    test -f "$OUT/$name.scores.json" || { echo "$name did not finish: see $OUT/$name.*.log" >&2; exit 1; }
done

$PY - "$OUT" <<'PYTHON'
import json, sys
out = sys.argv[1]
rows = [("VAE", "vae"), ("β-VAE (β = 4)", "beta-vae"), ("β-TCVAE (TC weight 6, β = 1)", "beta-tcvae")]
print("| model | MIG | SAP | DCI-D | FactorVAE | reconstruction | −ELBO |")
print("|---|---|---|---|---|---|---|")
for label, name in rows:
    s = json.load(open(f"{out}/{name}.scores.json"))
    m = json.load(open(f"{out}/runs/{name}/metrics.json"))
    print(f"| {label} | {s['mig']:.3f} | {s['sap']:.3f} | {s['dci']['disentanglement']:.3f} | "
          f"{s['factor_vae']['eval_accuracy']:.3f} | {m['reconstruction']:.1f} | {m['neg_elbo']:.1f} |")
PYTHON
echo "wall time $(( ($(date +%s) - start) / 60 )) min (three train+score chains in parallel)"
