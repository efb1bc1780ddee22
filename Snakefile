# talkhead: multi-view recordings of people speaking -> paired audio / 3D-face dataset.
#
#   snakemake --cores all all                      everything, on the embedded synthetic studio
#   snakemake --profile profiles/slurm all         the same DAG on a SLURM cluster
#   snakemake --report results/report.html         the QC report
#
# Stages live in workflow/rules/*.smk; the algorithms in src/talkhead.

import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# The package, first on the path (also for a Snakemake installed without it: the rules'
# conda envs have it).
_SRC = os.path.join(workflow.basedir, "src")
while _SRC in sys.path:
    sys.path.remove(_SRC)
sys.path.insert(0, _SRC)

from talkhead.errors import ConfigError
from talkhead.workflow_config import read_config_file

# The documented defaults, also when run with --directory elsewhere; --configfile FILE merges
# a user's settings over them. Read here first so that a YAML syntax error names the file and
# line (Snakemake reads --configfile files itself, before this file runs: `talkhead
# check-config config/config.yaml FILE` names the line of theirs).
DEFAULTS = os.path.join(workflow.basedir, "config", "config.yaml")
try:
    read_config_file(DEFAULTS)
except ConfigError as exc:
    raise SystemExit(f"talkhead: {exc}")


configfile: DEFAULTS


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/capture.smk"
include: "workflow/rules/depth.smk"
include: "workflow/rules/points.smk"
include: "workflow/rules/flame.smk"
include: "workflow/rules/nphm.smk"
include: "workflow/rules/audio.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        evaluation_targets(),


# One subject or one sequence, with everything it needs and everything made of it (QC figures,
# evaluation): `snakemake --cores all subject_syn001`, `... sequence_syn001_SEN-00`. A rule per
# subject; a rule per sequence only for those named on the command line (a rule for each of a
# 10k-sequence sheet would cost every run seconds and 100 MB to parse).
for _subject in SUBJECTS:

    rule:
        name:
            f"subject_{_subject}"
        input:
            subject_targets(_subject),
        localrule: True


for _subject, _sequence in requested_sequences():

    rule:
        name:
            f"sequence_{_subject}_{_sequence}"
        input:
            sequence_targets(_subject, _sequence),
        localrule: True
