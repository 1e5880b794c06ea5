#!/usr/bin/env bash
# Compares the model families on Fashion-MNIST (README "Comparison on Fashion-MNIST").
#
# Trains VAE, IWAE (K = 5), VAE + VampPrior, beta-TCVAE, InfoVAE and WAE-MMD with the same
# MLP, binarization, epochs and seed; evaluates each on the whole test set (-ELBO and the
# importance-weighted -log p(x) with IW_SAMPLES draws; a WAE has no likelihood and reports
# its reconstruction NLL); draws a sample grid from each; trains an AE and fits the
# ex-post Gaussian mixture to it and to the VAE, and samples with it; measures the sample
# quality of every sampler (Fréchet distance, precision, recall). Wall times go to
# OUT/times.tsv, the metrics to OUT/summary.tsv, the sample quality to OUT/quality.tsv.
#
# Usage: scripts/compare_families.sh [OUT]        (default OUT: compare_runs)
# Environment: EPOCHS (20), IW_SAMPLES (1000), SEED (0), PARALLEL (0: one family after
# another; 1: train and evaluate the families at the same time), VAE_TF (vae-tf),
# CLASSIFIER_CACHE (the sample-quality classifier's directory; default OUT/classifiers).
set -euo pipefail

OUT=${1:-compare_runs}
EPOCHS=${EPOCHS:-20}
IW_SAMPLES=${IW_SAMPLES:-1000}
SEED=${SEED:-0}
PARALLEL=${PARALLEL:-0}
VAE_TF=${VAE_TF:-vae-tf}
CLASSIFIER_CACHE=${CLASSIFIER_CACHE:-$OUT/classifiers}
COMMON="--dataset fashion_mnist --binarize dynamic --arch mlp --hidden-units 400 --latent-dim 20
        --batch-size 128 --lr 1e-3 --epochs $EPOCHS --seed $SEED --iw-samples 1
        --projector-examples 0 --no-export --out $OUT"

mkdir -p "$OUT"
timed() {  # timed NAME STEP COMMAND...: runs COMMAND, appends its wall time to times.tsv
    local name=$1 step=$2 start end
    shift 2
    start=$(date +%s)
    "$@" > "$OUT/$name.$step.log" 2>&1
    end=$(date +%s)
    printf '%s\t%s\t%s\t%s\n' "$name" "$step" "$((end - start))" "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/times.tsv"
}

family() {  # family NAME FLAGS...: train, evaluate with IW_SAMPLES, sample grid
    local name=$1
    shift
    timed "$name" train $VAE_TF train --name "$name" "$@" $COMMON
    timed "$name" evaluate $VAE_TF evaluate "$OUT/$name" --iw-samples "$IW_SAMPLES"
    timed "$name" sample $VAE_TF sample "$OUT/$name" -n 64 --seed 0 --out "$OUT/$name-samples.png"
}

run() { if [ "$PARALLEL" = 1 ]; then "$@" & else "$@"; fi; }

run family vae --model vae
run family iwae --model iwae --train-samples 5
run family vamp --model vae --prior vamp --prior-components 500
run family tcvae --model tcvae --tc-weight 6
run family infovae --model infovae --info-alpha 0 --info-lambda 1000
run family wae --model wae --mmd-weight 10 --mmd-kernel imq
run timed ae train $VAE_TF train --name ae --model ae $COMMON
wait

# Ex-post density sampling (Ghosh et al. 2020): a 10-component mixture over training codes.
for name in ae vae; do
    timed "$name" fit-sampler $VAE_TF fit-sampler "$OUT/$name" --components 10 --seed 0
    timed "$name" sample-gmm $VAE_TF sample "$OUT/$name" -n 64 --seed 0 --sampler gmm \
        --out "$OUT/$name-samples-gmm.png"
done

# Sample quality (docs/guides/sample-quality.md), one run after another: the first trains
# the data set's classifier, the others reuse it.
QUALITY="vae:prior iwae:prior vamp:prior tcvae:prior infovae:prior wae:prior vae:gmm ae:gmm"
for pair in $QUALITY; do
    name=${pair%%:*} sampler=${pair##*:}
    timed "$name" "quality-$sampler" $VAE_TF sample-quality "$OUT/$name" --sampler "$sampler" \
        --classifier-cache "$CLASSIFIER_CACHE"
done

# A figure a model does not have (a WAE's likelihood) is "-".
printf 'run\tneg_elbo\tneg_log_px\tkl\treconstruction\texamples\tiw_samples\n' > "$OUT/summary.tsv"
for name in vae iwae vamp tcvae infovae wae; do
    python3 - "$OUT/$name/metrics.json" "$name" >> "$OUT/summary.tsv" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
def figure(key, sign=1):
    return f"{sign * m[key]:.1f}" if key in m else "-"
print(f"{sys.argv[2]}\t{figure('neg_elbo')}\t{figure('iw_log_likelihood', -1)}\t{figure('kl')}"
      f"\t{figure('reconstruction')}\t{m['examples']}\t{m.get('iw_samples', '-')}")
PY
done
cat "$OUT/summary.tsv"

printf 'run\tsampler\tfrechet_distance\tprecision\trecall\tsamples\tclassifier_sha256\n' > "$OUT/quality.tsv"
for pair in $QUALITY; do
    python3 - "$OUT/${pair%%:*}/sample_quality.json" "${pair%%:*}" "${pair##*:}" >> "$OUT/quality.tsv" <<'PY'
import json, sys
q = json.load(open(sys.argv[1]))[sys.argv[3]]
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{q['frechet_distance']:.2f}\t{q['precision']:.3f}\t{q['recall']:.3f}"
      f"\t{q['samples']}\t{q['classifier']['weights_sha256'][:12]}")
PY
done
cat "$OUT/quality.tsv"
