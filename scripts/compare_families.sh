#!/usr/bin/env bash
# Compares the model families on Fashion-MNIST or MNIST (docs/guides/families.md,
# "Comparison on Fashion-MNIST" and "Comparison on MNIST").
#
# Trains each family of FAMILIES with the same MLP (one hidden layer of 400 units, 20
# latent dimensions), dynamic binarization, batch, learning rate, epochs and seed:
# VAE, IWAE (K = 5), VAE + VampPrior, beta-TCVAE, InfoVAE, WAE-MMD, the Gumbel-softmax VAE
# (20 categorical variables of 10 categories), the VAE with an IAF posterior, the
# two-layer VAE (z1 = the 20 latent dimensions, z2 = 10, trained on the ELBO), an AE and a
# VQ-VAE (conv, 40-80 filters, 128 codes of 16 dimensions on a 7x7 grid: its own network,
# about 189,000 parameters) with a PixelCNN prior trained for PRIOR_EPOCHS after it.
# Evaluates each on the whole test set (-ELBO and the importance-weighted -log p(x) with
# IW_SAMPLES draws; a family without a likelihood, WAE, AE or VQ-VAE, reports its
# reconstruction NLL); for each of the family's samplers (its prior, the VQ-VAE's trained
# after it; the ex-post 10-component Gaussian mixture for VAE and AE, fitted first) draws
# a sample grid and measures the sample quality (Frechet distance, precision, recall; the
# first measurement trains the data set's classifier, the others reuse it). Wall times and
# load go to OUT/times.tsv, the metrics to OUT/summary.tsv, the sample quality to
# OUT/quality.tsv, grids to OUT/*.png.
#
# Usage: scripts/compare_families.sh [OUT]        (default OUT: compare_runs)
# Environment: DATASET (fashion_mnist; any --dataset, e.g. idx), DATA_DIR (its --data-dir,
# if it needs one), FAMILIES (default: all, "vae iwae vamp tcvae infovae wae gumbel flowvae
# hvae ae vqvae"), EPOCHS (20), PRIOR_EPOCHS (the PixelCNN's; default EPOCHS), IW_SAMPLES
# (1000), SEED (0), PARALLEL (0: one family after another; 1: train and evaluate the
# families at the same time), VAE_TF (vae-tf), CLASSIFIER_CACHE (the sample-quality
# classifier's directory; default OUT/classifiers).
set -euo pipefail

OUT=${1:-compare_runs}
DATASET=${DATASET:-fashion_mnist}
DATA_DIR=${DATA_DIR:-}
FAMILIES=${FAMILIES:-vae iwae vamp tcvae infovae wae gumbel flowvae hvae ae vqvae}
EPOCHS=${EPOCHS:-20}
PRIOR_EPOCHS=${PRIOR_EPOCHS:-$EPOCHS}
IW_SAMPLES=${IW_SAMPLES:-1000}
SEED=${SEED:-0}
PARALLEL=${PARALLEL:-0}
VAE_TF=${VAE_TF:-vae-tf}
CLASSIFIER_CACHE=${CLASSIFIER_CACHE:-$OUT/classifiers}
COMMON="--dataset $DATASET ${DATA_DIR:+--data-dir $DATA_DIR} --binarize dynamic --arch mlp --hidden-units 400 --latent-dim 20
        --batch-size 128 --lr 1e-3 --epochs $EPOCHS --seed $SEED --iw-samples 1
        --projector-examples 0 --no-export --out $OUT"

# Each family: its samplers and its own flags (after the common ones, so they win). A
# sampler is prior, gmm (the ex-post mixture, fitted first) or pixelcnn (the prior of a
# VQ-VAE, trained first).
spec() {
    case $1 in
        vae) echo "prior,gmm --model vae" ;;
        iwae) echo "prior --model iwae --train-samples 5" ;;
        vamp) echo "prior --model vae --prior vamp --prior-components 500" ;;
        tcvae) echo "prior --model tcvae --tc-weight 6" ;;
        infovae) echo "prior --model infovae --info-alpha 0 --info-lambda 1000" ;;
        wae) echo "prior --model wae --mmd-weight 10 --mmd-kernel imq" ;;
        gumbel) echo "prior --model gumbel --gumbel-categories 10" ;;
        flowvae) echo "prior --model flowvae --flow iaf" ;;
        hvae) echo "prior --model hvae --train-samples 1 --top-latent-dim 10" ;;
        ae) echo "gmm --model ae" ;;
        vqvae) echo "pixelcnn --model vqvae --arch conv --filters 40 80 --num-embeddings 128 --embedding-dim 16" ;;
        *) echo "unknown family '$1' in FAMILIES" >&2; exit 2 ;;
    esac
}

sample_as() {  # the `vae-tf sample --sampler` of a sampler: a PixelCNN is the VQ-VAE's prior
    if [ "$1" = pixelcnn ]; then echo prior; else echo "$1"; fi
}

for name in $FAMILIES; do spec "$name" > /dev/null; done  # fail on a typo before writing anything
mkdir -p "$OUT"
timed() {  # timed NAME STEP COMMAND...: runs COMMAND, appends its wall time to times.tsv
    local name=$1 step=$2 start end log=$OUT/$1.$2.log
    shift 2
    start=$(date +%s)
    if ! "$@" > "$log" 2>&1; then  # say which step failed and why, not just stop
        echo "$name: $step failed; the end of $log:" >&2
        tail -n 3 "$log" >&2
        exit 1
    fi
    end=$(date +%s)
    printf '%s\t%s\t%s\t%s\n' "$name" "$step" "$((end - start))" "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/times.tsv"
}

family() {  # family NAME: train, evaluate with IW_SAMPLES, fit the mixture, sample grids
    local name=$1 samplers flags sampler
    read -r samplers flags <<< "$(spec "$name")"
    timed "$name" train $VAE_TF train --name "$name" $COMMON $flags
    timed "$name" evaluate $VAE_TF evaluate "$OUT/$name" --iw-samples "$IW_SAMPLES"
    for sampler in ${samplers//,/ }; do
        if [ "$sampler" = gmm ]; then  # Ex-post density sampling (Ghosh et al. 2020)
            timed "$name" fit-sampler $VAE_TF fit-sampler "$OUT/$name" --components 10 --seed 0
        elif [ "$sampler" = pixelcnn ]; then
            timed "$name" train-prior $VAE_TF train-prior "$OUT/$name" --epochs "$PRIOR_EPOCHS"
        fi
        timed "$name" "sample-$sampler" $VAE_TF sample "$OUT/$name" -n 64 --seed 0 \
            --sampler "$(sample_as "$sampler")" --out "$OUT/$name-samples-$sampler.png"
    done
}

for name in $FAMILIES; do
    if [ "$PARALLEL" = 1 ]; then family "$name" & else family "$name"; fi
done
wait

# Sample quality (docs/guides/sample-quality.md), one run after another so the first
# trains the data set's classifier and the others reuse it.
for name in $FAMILIES; do
    read -r samplers _ <<< "$(spec "$name")"
    for sampler in ${samplers//,/ }; do
        timed "$name" "quality-$sampler" $VAE_TF sample-quality "$OUT/$name" --sampler "$(sample_as "$sampler")" \
            --classifier-cache "$CLASSIFIER_CACHE"
    done
done

# A figure a model does not have (a WAE's likelihood) is "-".
printf 'run\tneg_elbo\tneg_log_px\tkl\treconstruction\texamples\tiw_samples\n' > "$OUT/summary.tsv"
for name in $FAMILIES; do
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
for name in $FAMILIES; do
    read -r samplers _ <<< "$(spec "$name")"
    for sampler in ${samplers//,/ }; do
        python3 - "$OUT/$name/sample_quality.json" "$name" "$sampler" "$(sample_as "$sampler")" \
            >> "$OUT/quality.tsv" <<'PY'
import json, sys
q = json.load(open(sys.argv[1]))[sys.argv[4]]
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{q['frechet_distance']:.2f}\t{q['precision']:.3f}\t{q['recall']:.3f}"
      f"\t{q['samples']}\t{q['classifier']['weights_sha256'][:12]}")
PY
    done
done
cat "$OUT/quality.tsv"
