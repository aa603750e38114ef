#!/usr/bin/env bash
# A data-set job as a SLURM job array: 16 tasks, each explaining the chunks c with
# c mod 16 = its task (firelight reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, and
# SLURM_ARRAY_TASK_MIN / _STEP for arrays such as --array=1-16), into one shared folder.
# A task that is requeued resumes where it stopped. When all are done:
#
#   sbatch docs/slurm-array.sh
#   sbatch --dependency=afterok:<jobid> --wrap 'firelight merge /shared/audit'
#
#SBATCH --job-name=firelight-audit
#SBATCH --array=0-15
#SBATCH --cpus-per-task=4
#SBATCH --mem=4G
#SBATCH --time=02:00:00
#SBATCH --requeue
#SBATCH --output=logs/firelight-%A_%a.out
set -euo pipefail

firelight explain \
    --inputs /shared/photos \
    --method integrated_gradients \
    --chunk-size 8 \
    --workers "${SLURM_CPUS_PER_TASK:-1}" \
    --on-error skip \
    --out /shared/audit
