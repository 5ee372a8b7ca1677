#!/usr/bin/env bash
# The main job: build a real-audio corpus from Debian packages, train the flow-matching tokenizer and its
# MSE baseline on the weight-free mel front end, print the reconstruction table, export a Hub folder,
# pre-tokenise the corpus with the FM tokenizer and build the LM-MSN and MINT training sets from it.
#   bash scripts/demo.sh            (extra arguments go to both training runs, e.g. --train.max_steps=300)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh gcompris-qt-data openttd-opensfx lmms-common fluidsynth fluid-soundfont-gm espeak-ng \
  asterisk-core-sounds-en-wav alsa-utils ffmpeg
export HF_HOME="$PWD/.hf_home" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=.venv/bin/python
LAUNCH=(.venv/bin/accelerate launch --cpu --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no)

stage_start=$(date +%s)
stage() {  # prints the wall time of the stage that just ended, then the name of the next one
  local now; now=$(date +%s)
  [ -n "${STAGE:-}" ] && echo "   (${STAGE}: $(( now - stage_start )) s)"
  STAGE="$1"; stage_start=$now
  [ -n "$1" ] && echo "== $1"
  return 0
}

stage "1/6 building the real-audio corpus (work/corpus)"
$PY examples/real_audio_corpus/build_real_audio_corpus.py --out work/corpus
stage "2/6 training VQ + FM and VQ + MSE tokenizers (runs/demo)"
"${LAUNCH[@]}" training/train_tokenizer.py --config training/configs/demo_fm.yaml "$@"
"${LAUNCH[@]}" training/train_tokenizer.py --config training/configs/demo_mse.yaml "$@"
stage "3/6 the tokenizers judged on held-out clips (Table I, FAD with YAMNet, predicted MOS, level, spectrograms)"
$PY -m soundlm.evaluation.tokenizer_report \
  --model "VQ + FM=runs/demo/tokenizer_fm/final" --model "VQ + MSE=runs/demo/tokenizer_mse/final" \
  --data work/corpus/manifest.csv --split test --num_steps 10 --out runs/demo/tokenizer_report
stage "4/6 exporting the FM tokenizer as a Hub folder and loading it with trust_remote_code"
.venv/bin/soundlm export runs/demo/tokenizer_fm/final runs/demo/hub/msn-tokenizer-demo
stage "5/6 pre-tokenising the corpus with the FM tokenizer (work/pretokenized/corpus)"
"${LAUNCH[@]}" training/pretokenize.py --tokenizer runs/demo/tokenizer_fm/final \
  --data work/corpus/manifest.csv --output work/pretokenized/corpus --overwrite
stage "6/6 LM-MSN stage 1/2 and MINT stage 1/2 training sets (work/tasks)"
$PY training/build_task_data.py --pretokenized work/pretokenized/corpus --output work/tasks \
  --tokenizer runs/demo/tokenizer_fm/final --dataset_column category \
  --mint_templates training/configs/corpus_mint_templates.json
stage ""
echo "demo finished in $(( $(date +%s) - start )) s (installs included)"
