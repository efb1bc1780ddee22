"""The NPHM fit's QC page: decoded meshes beside the true ones, chamfer-L1 per frame, code
autocorrelation, loss curves and the Table-2 table (talkhead.qc.pages.nphm_fit_qc).

Inputs: codes, fit_log; optional: meshes (the fit's mesh folder; default nphm_meshes/ beside
codes), unsmoothed_codes, unsmoothed_meshes, unsmoothed_fit_log, evaluation, frames_csv,
ground_truth (the sequence's ground-truth folder, read through talkhead.evaluation's reader),
flame_params (the FLAME fit's flame.npz: the head's front for the renders).
Outputs: meshes, chamfer, autocorrelation, losses, table2.
Params (optional): qc (the report section: n_frames), chamfer_target_mm.
"""

import _bootstrap

from talkhead.logs import log_to
from talkhead.qc.pages import nphm_fit_qc


def true_meshes(folder):
    """The sequence's true meshes for the figures (None without ground truth)."""
    if not folder:
        return None
    from talkhead.evaluation.ground_truth import GroundTruth
    from talkhead.qc.nphm import TrueMeshes

    gt = GroundTruth.open(folder)
    return TrueMeshes(gt.flame_params()["frames"], gt.vertices(), gt.faces())


with log_to(snakemake.log[0]):
    qc = snakemake.params.get("qc") or {}
    nphm_fit_qc(
        snakemake.input.codes,
        snakemake.input.fit_log,
        snakemake.output.meshes,
        snakemake.output.chamfer,
        snakemake.output.autocorrelation,
        snakemake.output.losses,
        snakemake.output.table2,
        unsmoothed_codes_path=snakemake.input.get("unsmoothed_codes"),
        unsmoothed_fit_log_path=snakemake.input.get("unsmoothed_fit_log"),
        evaluation_path=snakemake.input.get("evaluation"),
        frames_csv_path=snakemake.input.get("frames_csv"),
        truth=true_meshes(snakemake.input.get("ground_truth")),
        flame_params_path=snakemake.input.get("flame_params"),
        meshes_dir=snakemake.input.get("meshes"),
        unsmoothed_meshes_dir=snakemake.input.get("unsmoothed_meshes"),
        n_frames=int(qc.get("n_frames", 3)),
        title=f"{snakemake.wildcards.subject} / {snakemake.wildcards.sequence}",
        chamfer_target_mm=snakemake.params.get("chamfer_target_mm"),
    )
