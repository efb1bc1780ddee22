# talkhead: multi-view recordings of people speaking -> paired audio / 3D-face dataset.
#
#   snakemake --cores all all                      everything, on the embedded synthetic studio
#   snakemake --profile profiles/slurm all         the same DAG on a SLURM cluster
#   snakemake --report results/report.html         the QC report
#
# Stages live in workflow/rules/*.smk; the algorithms in src/talkhead.

import os

from snakemake.utils import min_version

min_version("9.0")


# The documented defaults, also when run with --directory elsewhere; --configfile FILE merges
# a user's settings over them.
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/capture.smk"
include: "workflow/rules/depth.smk"
include: "workflow/rules/points.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        evaluation_targets(),


# One subject or one sequence, with everything it needs and everything made of it (QC figures,
# evaluation):  snakemake --cores all subject_syn001   /   sequence_syn001_SEN-00.
# Defined by the main process only: a cluster job never needs them (and 10k sequences' rules
# would cost each job seconds to parse).
if workflow.is_main_process:
    for _subject in SUBJECTS:

        rule:
            name:
                f"subject_{_subject}"
            input:
                subject_targets(_subject),
            localrule: True

    for _subject, _sequence in PAIRS:

        rule:
            name:
                f"sequence_{_subject}_{_sequence}"
            input:
                sequence_targets(_subject, _sequence),
            localrule: True
