"""Workflow tests: the DAG builds, the lint is clean, ground truth reaches only the evaluate
rules, bad config stops with a clear message."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "tests" / "configs"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
PRODUCTION_RULES = (
    "validate_capture",
    "plot_capture",
    "estimate_depth",
    "plot_depth",
    "backproject_points",
    "plot_points",
    "align_flame",
    "fit_flame",
    "plot_flame",
    "prepare_audio",
    "plot_audio",
    "audio_features",
)
#: The stages of a sequence's microphone (none for a sequence without audio).
AUDIO_RULES = ("prepare_audio", "plot_audio", "audio_features", "evaluate_audio")
# The fit without smoothing serves the evaluation's jitter comparison.
EVALUATE_RULES = (
    "evaluate_depth",
    "evaluate_points",
    "evaluate_flame",
    "fit_flame_unsmoothed",
    "evaluate_audio",
)
#: Dataset-level rules and their jobs by default: one per model of models.train (all five of
#: Table 1, FaceTalk on NPHM codes included), its held-out animation and its evaluation; no
#: Table-3 variant at demo scale.
MODEL_JOBS = {"train_model": 5, "animate_model": 5, "evaluate_model": 5}
MODEL_RULES = tuple(MODEL_JOBS)
#: With the five Table-3 injections (the experiment configs): one training per variant but
#: FaceTalk's own (four), an evaluation of each of the eight models, and FaceTalk's relabelled as
#: the FiLM variant's.
VARIANT_JOBS = {"train_variant": 4, "evaluate_model": 8, "relabel_evaluation": 1}
#: A subject's NPHM fits (its identity from all its sequences), per sequence after the FLAME fit.
NPHM_RULES = (
    "fit_nphm_identity",
    "fit_nphm",
    "fit_nphm_without_temporal",
    "evaluate_nphm",
    "plot_nphm",
)
#: The report's tables, made of every model's and every sequence's evaluation.
TABLE_RULES = ("report_table1", "report_table2", "report_table3")


def snakemake(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def job_counts(out: str) -> dict[str, int]:
    """Snakemake's job-count table of a dry-run: {rule: jobs}."""
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^([a-z][a-z0-9_]*)\s+(\d+)\s*$", out, re.M)
        if m.group(1) != "total"
    }


def test_dry_run_default_config_lists_production_and_evaluate_rules():
    res = snakemake("-n", "--forceall", "--quiet", "rules")
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    synth = ("build_head_model", "write_synthetic_rig", "render_synthetic_sequence")
    for rule in (*synth, *PRODUCTION_RULES, *EVALUATE_RULES):
        assert counts.get(rule) == 1, (rule, counts)
    for rule in MODEL_RULES:
        assert counts.get(rule) == MODEL_JOBS[rule], (rule, counts)


def test_two_by_two_dry_run_has_one_job_per_sequence_and_one_head_model():
    res = snakemake(
        "-n", "--forceall", "--quiet", "rules", "--configfile", str(CONFIGS / "two_by_two.yaml")
    )
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    assert counts["build_head_model"] == 1 and counts["write_synthetic_rig"] == 2
    for rule in ("render_synthetic_sequence", *PRODUCTION_RULES, *EVALUATE_RULES):
        assert counts[rule] == 4, (rule, counts)
    for rule in MODEL_RULES:
        assert counts[rule] == MODEL_JOBS[rule], (rule, counts)
    assert not {"train_variant", "relabel_evaluation"} & set(counts), counts
    assert counts["report_table3"] == 1, counts


@pytest.mark.parametrize(("name", "models"), [("experiment.yaml", 5), ("experiment-cpu.yaml", 4)])
def test_experiment_configs_train_every_table3_variant(name, models):
    """config/experiment.yaml trains Table 1's five rows (facetalk_nphm, "Ours (full)", too)."""
    res = snakemake("-n", "--forceall", "--quiet", "rules", "--configfile", f"config/{name}")
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    jobs = {**VARIANT_JOBS, "evaluate_model": VARIANT_JOBS["evaluate_model"] + models - 4}
    for rule, n in jobs.items():
        assert counts.get(rule) == n, (rule, counts)
    assert counts["train_model"] == models and counts["report_table3"] == 1, counts


#: The report's categories in the order the stages run (the sidebar sorts them as text).
REPORT_CATEGORIES = (
    "01. Capture",
    "02. Depth",
    "03. Back-projection",
    "04. FLAME",
    "05. NPHM",
    "06. Audio",
    "07. Dataset",
    "08. Models",
    "09. Evaluation",
)


def test_report_categories_are_numbered_consecutively_and_sort_as_the_stages_run():
    """Every report category of the rules, numbered 01, 02, ... without gaps, so that the
    report's sidebar (sorted as text) lists the stages in order; the landing text names each."""
    rules = "\n".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    found = set(re.findall(r'(?<![a-z])category="([^"]+)"', rules))
    assert found == set(REPORT_CATEGORIES), sorted(found)
    numbers = [int(c.split(".", 1)[0]) for c in REPORT_CATEGORIES]
    assert numbers == list(range(1, len(REPORT_CATEGORIES) + 1))
    assert sorted(REPORT_CATEGORIES) == list(REPORT_CATEGORIES)
    landing = (REPO / "workflow" / "report" / "workflow.rst").read_text()
    for category in REPORT_CATEGORIES:
        assert f"**{category}**" in landing, category


def rule_inputs(filegraph: str) -> dict[str, list[str]]:
    """{rule: its input patterns} from ``snakemake --filegraph`` (one node per rule)."""
    out: dict[str, list[str]] = {}
    for node in filegraph.split("label=<<table")[1:]:
        rule = re.search(r'<font point-size="18">([^<]+)</font>', node).group(1)
        inputs = node.split("&#8618; input", 1)[1].split("<hr/>", 1)[0] if "input" in node else ""
        out[rule] = re.findall(r'<font face="monospace">([^<]+)</font>', inputs)
    return out


def test_ground_truth_reaches_only_the_evaluate_rules():
    """Inputs are patterns (no input functions), so the file graph shows every rule's inputs:
    only the evaluate rules read the ground truth."""
    res = snakemake("--nolock", "--forceall", "--filegraph")
    assert res.returncode == 0, res.stderr
    inputs = rule_inputs(res.stdout)
    for rule in PRODUCTION_RULES:
        assert inputs[rule], rule
        assert not [f for f in inputs[rule] if "function" in f], (rule, inputs[rule])
        assert not [f for f in inputs[rule] if "ground_truth" in f], (rule, inputs[rule])
    for rule in EVALUATE_RULES:
        if rule == "fit_flame_unsmoothed":  # a fit (for the evaluation's comparison): no truth
            assert not [f for f in inputs[rule] if "ground_truth" in f], (rule, inputs[rule])
            continue
        assert any("ground_truth" in f for f in inputs[rule]), (rule, inputs[rule])


def write_config(tmp_path: Path, **sections) -> Path:
    """A small override file holding only ``sections`` (Snakemake merges it over the defaults)."""
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(sections))
    return path


def test_bad_config_value_names_the_key(tmp_path):
    res = snakemake("-n", "--configfile", str(write_config(tmp_path, synthetic={"n_cameras": 1})))
    assert res.returncode != 0
    assert "synthetic.n_cameras" in res.stdout + res.stderr


def test_unknown_config_key_is_refused(tmp_path):
    res = snakemake("-n", "--config", "depth_backend=torch")
    assert res.returncode != 0
    assert "depth_backend" in res.stdout + res.stderr


def test_bad_sample_sheet_stops(tmp_path):
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("subject\tsequence\n018\tSEN 01 with spaces\n")
    cfg = write_config(
        tmp_path, capture={"source": "nersemble", "root": "/nonexistent"}, samples=str(sheet)
    )
    res = snakemake("-n", "--configfile", str(cfg))
    assert res.returncode != 0
    assert f"{sheet}:2: sequence" in res.stdout + res.stderr


def test_nersemble_source_requires_root(tmp_path):
    res = snakemake(
        "-n", "--configfile", str(write_config(tmp_path, capture={"source": "nersemble"}))
    )
    assert res.returncode != 0
    assert "capture.root" in res.stdout + res.stderr


def dry_run_jobs(out: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, {field: value}) of every job of a dry-run's output (``rule x:`` or
    ``localrule x:`` blocks; fields as printed: ``wildcards``, ``resources``, ...)."""
    jobs = []
    for block in re.split(r"^(?:local)?rule ", out, flags=re.M)[1:]:
        name, _, body = block.partition(":\n")
        fields = {}
        for line in body.splitlines():
            m = re.match(r"^    ([a-z]+): (.*)$", line)
            if not m:
                break
            fields[m.group(1)] = m.group(2)
        jobs.append((name, fields))
    return jobs


def listed(field: str) -> dict[str, str]:
    """``a=1, b=x`` as {"a": "1", "b": "x"}."""
    return dict(item.split("=", 1) for item in field.split(", ") if "=" in item)


PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
GPU_LINE, GRES_LINE = "    gpu: 1  # GPU request", '    # gres: "gpu:1"  # GPU request'


def profile_resources(profile: dict, rule: str) -> dict[str, str]:
    """A rule's resources as a profile sets them (default-resources, then set-resources),
    printed the way Snakemake prints them."""
    merged = {**profile["default-resources"], **profile.get("set-resources", {}).get(rule, {})}
    return {k: str(v) for k, v in merged.items()}


def slurm_dry_run(profile_dir: Path) -> dict[str, dict[str, str]]:
    """{rule: its resources} of a dry-run of everything under a cluster profile; every rule
    must show the same resources in every job."""
    res = snakemake(
        "-n",
        "--forceall",
        "--profile",
        str(profile_dir),
        "--configfile",
        str(CONFIGS / "two_by_two.yaml"),
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    shown: dict[str, dict[str, str]] = {}
    for rule, fields in dry_run_jobs(out):
        # disk sizes follow the inputs already on disk (<TBD> before they exist): not a setting
        resources = {
            k: v for k, v in listed(fields["resources"]).items() if not k.startswith("disk")
        }
        assert shown.setdefault(rule, resources) == resources, rule
    return shown


def test_slurm_profile_resources_hold_for_every_rule():
    """profiles/default (applied on top of any --profile) sets no resources, so each rule gets
    exactly what profiles/slurm says: its default-resources, then its set-resources."""
    profile = yaml.safe_load(PROFILE.read_text())
    shown = slurm_dry_run(PROFILE.parent)
    rules = set(shown) - {"all"}
    assert {*PRODUCTION_RULES, *EVALUATE_RULES, "build_head_model"} <= rules
    for rule in rules:
        expected = profile_resources(profile, rule)
        got = {k: shown[rule].get(k) for k in expected}
        assert got == expected, rule
    assert shown["estimate_depth"]["gpu"] == "1" and "gres" not in shown["estimate_depth"]
    assert shown["validate_capture"]["gpu"] == "0"
    # threads and the CPUs asked for agree
    for rule, threads in profile["set-threads"].items():
        if rule in shown:  # ingest_capture runs for real captures only
            assert shown[rule]["cpus_per_task"] == str(threads), rule


def test_slurm_profile_switches_to_gres_as_documented(tmp_path):
    text = PROFILE.read_text()
    assert GPU_LINE in text and GRES_LINE in text
    swapped = text.replace(GPU_LINE, "    # " + GPU_LINE.strip()).replace(
        GRES_LINE, "    " + GRES_LINE.strip().removeprefix("# ")
    )
    (tmp_path / "slurm").mkdir()
    (tmp_path / "slurm" / "config.yaml").write_text(swapped)
    shown = slurm_dry_run(tmp_path / "slurm")
    assert shown["estimate_depth"]["gres"] == "gpu:1"
    assert shown["estimate_depth"]["gpu"] == "0"  # the rule's own: no second request
    assert "gres" not in shown["validate_capture"]


def test_slurm_local_profile_is_self_contained():
    """The opt-in SLURM test's profile: no account database, squeue for states, and no job
    asking for more CPUs than its threads."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm-local" / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["slurm-no-account"] is True
    assert profile["slurm-status-command"] == "squeue"
    for rule, threads in profile["set-threads"].items():
        assert profile["set-resources"][rule]["cpus_per_task"] == threads, rule


def test_workflow_profile_sets_no_resources():
    profile = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert not {"default-resources", "set-resources", "set-threads", "resources"} & set(profile)


def subjects_of(jobs) -> set[str]:
    return {
        listed(f["wildcards"])["subject"] for _, f in jobs if "subject" in f.get("wildcards", "")
    }


def test_one_subject_target_builds_that_subject_only():
    res = snakemake(
        "-n", "--forceall", "subject_syn001", "--configfile", str(CONFIGS / "two_by_two.yaml")
    )
    assert res.returncode == 0, res.stderr
    jobs = dry_run_jobs(res.stdout + res.stderr)
    assert subjects_of(jobs) == {"syn001"}
    counts = {rule: sum(r == rule for r, _ in jobs) for rule, _ in jobs}
    for rule in ("render_synthetic_sequence", *PRODUCTION_RULES, *EVALUATE_RULES):
        assert counts[rule] == 2, (rule, counts)  # its two sequences, QC and evaluation
    assert counts["build_head_model"] == 1 and counts["subject_syn001"] == 1

    res = snakemake(
        "-n",
        "--forceall",
        "sequence_syn001_SEN-01",
        "--configfile",
        str(CONFIGS / "two_by_two.yaml"),
    )
    assert res.returncode == 0, res.stderr
    jobs = dry_run_jobs(res.stdout + res.stderr)
    by_pair: dict[tuple[str, str], set[str]] = {}
    for rule, f in jobs:
        w = listed(f.get("wildcards", ""))
        if "sequence" in w:
            by_pair.setdefault((w["subject"], w["sequence"]), set()).add(rule)
    assert set(by_pair) <= {("syn001", "SEN-00"), ("syn001", "SEN-01")}
    assert set(PRODUCTION_RULES) | set(EVALUATE_RULES) <= by_pair[("syn001", "SEN-01")]
    # The subject's NPHM identity is fitted on every sequence of the subject: the other
    # sequence's points and FLAME fit come along, none of its figures or evaluations.
    other = by_pair.get(("syn001", "SEN-00"), set())
    assert other <= {
        "render_synthetic_sequence",
        "validate_capture",
        "estimate_depth",
        "backproject_points",
        "align_flame",
        "fit_flame",
    }, other
    for rule in (*PRODUCTION_RULES, *EVALUATE_RULES):
        if rule not in other:
            assert sum(r == rule for r, _ in jobs) == 1, rule


def test_redoing_one_subject_leaves_the_others_up_to_date(tmp_path):
    """A finished 2-subject run (outputs stand-ins, in DAG order); redoing syn001 as the README
    says touches syn001's jobs only; even a --forceall of syn001, which rebuilds the shared
    head model, leaves syn000 up to date."""
    run = ["-d", str(tmp_path), "-s", str(REPO / "Snakefile")]
    cfg = ["--configfile", str(CONFIGS / "two_by_two.yaml")]
    res = snakemake("-n", "--forceall", *run, *cfg)
    assert res.returncode == 0, res.stderr
    for _, fields in dry_run_jobs(res.stdout + res.stderr):
        for out in fields.get("output", "").split(", ") if "output" in fields else []:
            path = tmp_path / out
            if path.suffix:  # files have a suffix, directory outputs do not
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            else:
                path.mkdir(parents=True, exist_ok=True)
    assert snakemake("--touch", "--cores", "1", *run, *cfg).returncode == 0
    assert "Nothing to be done" in snakemake("-n", *run, *cfg).stdout

    res = snakemake("-n", "subject_syn001", "--forcerun", "validate_capture", *run, *cfg)
    jobs = dry_run_jobs(res.stdout + res.stderr)
    assert subjects_of(jobs) == {"syn001"}
    # the audio preparation reads the microphone, not the checked capture's summary
    unaffected = {"prepare_audio", "plot_audio", "evaluate_audio"}
    expected = {*PRODUCTION_RULES, *EVALUATE_RULES, *NPHM_RULES, "subject_syn001"} - unaffected
    assert {r for r, _ in jobs} == expected

    # The README's command to refit one subject: its fits and what is made of them, nothing
    # of the other subject.
    res = snakemake("-n", "subject_syn001", "--forcerun", "fit_flame", *run, *cfg)
    jobs = dry_run_jobs(res.stdout + res.stderr)
    assert subjects_of(jobs) == {"syn001"}
    assert {r for r, _ in jobs} == {
        "fit_flame",
        "plot_flame",
        "evaluate_flame",
        *NPHM_RULES,
        "subject_syn001",
    }
    assert sum(r == "fit_flame" for r, _ in jobs) == 2  # its two sequences

    res = snakemake("--touch", "--forceall", "--cores", "1", "subject_syn001", *run, *cfg)
    assert res.returncode == 0, res.stderr
    assert "build_head_model" in res.stdout + res.stderr
    # syn000's stages stay up to date; rebuilt are the dataset, made of every subject, and the
    # models trained on it, and the NPHM fits of syn000: the head model was rebuilt, and with
    # it the implicit head model every subject's codes are fitted in (Table 3 too: with no
    # variant trained by default, its FiLM row is FaceTalk's evaluation)
    res = snakemake("-n", *run, *cfg)
    jobs = dry_run_jobs(res.stdout + res.stderr)
    assert {r for r, _ in jobs} == {
        "dataset",
        "plot_dataset",
        *MODEL_RULES,
        *TABLE_RULES,
        *NPHM_RULES,
        "plot_nphm_training",
        "all",
    }, res.stdout[-3000:]
    assert subjects_of([j for j in jobs if j[0] in NPHM_RULES]) == {"syn000"}


def test_workflow_refuses_a_broken_capture_with_the_validators_message(tmp_path):
    """A real-capture run on a tree with a missing camera image stops in validate_capture, and
    its log names the same problem `talkhead validate-capture` reports."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_capture import SEQ, SUBJECT, make_tree

    from talkhead.capture.validate import format_problems, validate_capture

    tree = make_tree(tmp_path / "capture")
    victim = next((tree.root / SUBJECT).rglob("frame_00002/images/cam_*.png"))
    victim.unlink()
    expected = format_problems(validate_capture(tree.root), root=tree.root)
    assert victim.stem.removeprefix("cam_") in expected

    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"subject\tsequence\tfps\n{SUBJECT}\t{SEQ}\t\n")
    cfg = write_config(
        tmp_path, capture={"source": "nersemble", "root": str(tree.root)}, samples=str(sheet)
    )
    target = f"results/capture/{SUBJECT}/{SEQ}/capture.json"
    work = tmp_path / "run"
    work.mkdir()
    res = snakemake(
        "--cores",
        "1",
        "--directory",
        str(work),
        "-s",
        str(REPO / "Snakefile"),
        target,
        "--configfile",
        str(cfg),
    )
    assert res.returncode != 0
    log = (work / f"logs/capture/{SUBJECT}/{SEQ}/validate.log").read_text()
    serial = victim.stem.removeprefix("cam_")
    problem = next(line for line in expected.splitlines() if serial in line)
    assert "has no image" in problem and problem.strip() in log
    assert not (work / target).exists()


def test_a_real_capture_has_no_evaluate_rules(tmp_path):
    """Without ground truth (a NeRSemble-style capture), the evaluate rules are not in the DAG
    and the production rules are."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_capture import SEQ, SUBJECT, make_tree

    tree = make_tree(tmp_path / "capture")
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"subject\tsequence\tfps\n{SUBJECT}\t{SEQ}\t\n")
    cfg = tmp_path / "real.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"capture": {"source": "nersemble", "root": str(tree.root)}, "samples": str(sheet)}
        )
    )
    work = tmp_path / "run"
    work.mkdir()
    res = snakemake(
        "-n",
        "--quiet",
        "rules",
        "--directory",
        str(work),
        "-s",
        str(REPO / "Snakefile"),
        "--configfile",
        str(cfg),
    )
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    assert all(counts.get(rule) == 1 for rule in PRODUCTION_RULES), counts
    assert not any(rule in counts for rule in EVALUATE_RULES), counts
    assert "render_synthetic_sequence" not in counts
    assert counts.get("prepare_audio") == 1 and counts.get("dataset") == 1, counts

    # Without a microphone (none in the capture, none on the sheet): FLAME fits but no audio
    # stages and no dataset, and a note at start-up says which sequence.
    for wav in (tree.root / SUBJECT / "sequences" / SEQ / "audio").iterdir():
        wav.unlink()
    res = snakemake(
        "-n",
        "--quiet",
        "rules",
        "--directory",
        str(work),
        "-s",
        str(REPO / "Snakefile"),
        "--configfile",
        str(cfg),
    )
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    assert counts.get("fit_flame") == 1, counts
    assert not {"prepare_audio", "audio_features", "dataset"} & set(counts), counts
    assert "1 sequence(s) without audio" in res.stderr and f"{SUBJECT}/{SEQ}" in res.stderr


PREPROCESS_RULES = (
    "preprocess_mattes",
    "preprocess_landmarks",
    "preprocess_segmentation",
    "preprocess_audio",
)


def test_a_published_layout_is_ingested_then_preprocessed(tmp_path, tiny_studio):
    """A NeRSemble v2 tree (videos, no mattes, landmarks, segmentation or audio) gets one
    ingest job and every product rule per sequence before the stages, and with the studio's
    ground truth, the evaluate rules (MediaPipe's landmarks included)."""
    from talkhead.capture import export

    seq = tiny_studio.open()
    export.export_sequence(seq, tmp_path / "v2", "nersemble_v2")
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"subject\tsequence\n{seq.subject}\t{seq.sequence}\n")
    capture = {"source": "nersemble", "root": str(tmp_path / "v2")}
    counts = {}
    for name, extra in (("plain", {}), ("gt", {"ground_truth": str(tiny_studio.gt_root)})):
        (tmp_path / name).mkdir()
        cfg = write_config(tmp_path / name, capture={**capture, **extra}, samples=str(sheet))
        res = snakemake(
            "-n",
            "--quiet",
            "rules",
            "--directory",
            str(tmp_path / name),
            "-s",
            str(REPO / "Snakefile"),
            "--configfile",
            str(cfg),
        )
        assert res.returncode == 0, res.stdout + res.stderr
        counts[name] = job_counts(res.stdout + res.stderr)
    # no audio on the sheet and none in a v2 kit: no audio stages (and no dataset)
    for rule in ("ingest_capture", *PREPROCESS_RULES, *PRODUCTION_RULES):
        expected = None if rule in AUDIO_RULES else 1
        assert counts["plain"].get(rule) == expected, (rule, counts["plain"])
    assert not any(r.startswith("evaluate_") for r in counts["plain"]), counts["plain"]
    for rule in (*EVALUATE_RULES, "evaluate_landmarks2d"):
        expected = None if rule in AUDIO_RULES else 1
        assert counts["gt"].get(rule) == expected, (rule, counts["gt"])


def test_mediapipe_landmarks_on_the_synthetic_studio_are_evaluated(tmp_path):
    """capture.landmarks: mediapipe adds MediaPipe's landmarks (and their evaluation against
    the truth) to the synthetic studio's DAG, and no other product or ingest."""
    cfg = write_config(tmp_path, capture={"landmarks": "mediapipe"})
    res = snakemake("-n", "--forceall", "--quiet", "rules", "--configfile", str(cfg))
    counts = job_counts(res.stdout + res.stderr)
    assert res.returncode == 0, res.stdout + res.stderr
    assert counts.get("preprocess_landmarks") == 1 and counts.get("evaluate_landmarks2d") == 1
    assert not {"ingest_capture", "preprocess_mattes", "preprocess_audio"} & set(counts)


def test_a_wrong_layout_or_a_missing_audio_file_stops_at_start_up(tmp_path, tiny_studio):
    """A layout that does not match the tree, or an audio file that is not there, ends the
    run before any job with one block naming the sheet's line and the missing file."""
    from talkhead.capture import export

    seq = tiny_studio.open()
    export.export_sequence(seq, tmp_path / "v2", "nersemble_v2")
    cases = {
        "layout": ({"layout": "nersemble_v1"}, "", r"camera_params\.json: calibration of layout "),
        "audio": ({}, "\tnope.wav", r"audio file .*nope\.wav is missing"),
    }
    for name, (capture, audio, message) in cases.items():
        (tmp_path / name).mkdir()
        sheet = tmp_path / name / "sheet.tsv"
        header = "subject\tsequence" + ("\taudio" if audio else "")
        sheet.write_text(f"{header}\n{seq.subject}\t{seq.sequence}{audio}\n")
        cfg = write_config(
            tmp_path / name,
            capture={"source": "nersemble", "root": str(tmp_path / "v2"), **capture},
            samples=str(sheet),
        )
        res = snakemake(
            "-n",
            "--directory",
            str(tmp_path / name),
            "-s",
            str(REPO / "Snakefile"),
            "--configfile",
            str(cfg),
        )
        out = res.stdout + res.stderr
        assert res.returncode != 0, out
        assert re.search(rf"talkhead: sample sheet .*sheet\.tsv, line 2:\n  .*{message}", out), out
        assert "Traceback" not in out, out


def jobs_of(dry_run: str, rule: str) -> dict[str, str]:
    """{model wildcard: the job's input line} of a rule's jobs in a dry-run's listing."""
    out = {}
    for block in dry_run.split(f"rule {rule}:")[1:]:
        block = block.split("\n\n", 1)[0]
        model = re.search(r"wildcards: model=(\S+)", block).group(1)
        out[model] = re.search(r"input: (.*)", block).group(1)
    return out


def test_ours_full_trains_and_is_evaluated_beside_ours_flame(tmp_path):
    cfg = write_config(
        tmp_path, dataset={"include_nphm": True}, models={"train": ["facetalk", "facetalk_nphm"]}
    )
    res = snakemake("-n", "--forceall", "--configfile", str(cfg))
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert set(jobs_of(out, "train_model")) == {"facetalk", "facetalk_nphm"}
    evaluated = jobs_of(out, "evaluate_model")
    assert set(evaluated) == {"facetalk", "facetalk_nphm"}
    # the lip surface error of NPHM codes decodes them: the NPHM model and the identity
    nphm = evaluated["facetalk_nphm"].split(", ")
    assert "resources/nphm/model.pt" in nphm and "results/nphm/syn000/identity.npz" in nphm
    assert "nphm" not in evaluated["facetalk"]
    # both animated; the NPHM codes decoded by the NPHM with the identity
    animated = jobs_of(out, "animate_model")
    assert set(animated) == {"facetalk", "facetalk_nphm"}
    assert "resources/nphm/model.pt" in animated["facetalk_nphm"].split(", ")
    assert "nphm" not in animated["facetalk"]
    assert "results/models/facetalk_nphm/evaluation.json" in out


def test_without_the_nphm_stage_its_model_is_left_out_with_a_note(tmp_path):
    cfg = write_config(tmp_path, nphm={"enabled": False})
    res = snakemake("-n", "--forceall", "--configfile", str(cfg))
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "nphm.enabled is false: facetalk_nphm" in res.stderr
    assert set(jobs_of(out, "train_model")) == {
        "facetalk",
        "facetalk_regression",
        "faceformer",
        "meshtalk",
    }
    assert "fit_nphm" not in out and "nphm_tracking" not in out


def test_the_nphm_model_without_nphm_dataset_is_refused_at_start_up(tmp_path):
    cfg = write_config(
        tmp_path, dataset={"include_nphm": False}, models={"train": ["facetalk", "facetalk_nphm"]}
    )
    res = snakemake("-n", "--configfile", str(cfg))
    assert res.returncode != 0
    assert "models.train: facetalk_nphm" in res.stderr and "dataset.include_nphm" in res.stderr
    assert "Traceback" not in res.stderr


def test_nphm_target_without_nphm_dataset_is_refused_at_start_up(tmp_path):
    cfg = write_config(
        tmp_path,
        dataset={"include_nphm": False},
        models={"facetalk": {"target": "nphm_expression"}},
    )
    res = snakemake("-n", "--configfile", str(cfg))
    assert res.returncode != 0
    assert "models.facetalk.target" in res.stderr and "dataset.include_nphm" in res.stderr


def table3_inputs(config_args: list[str]) -> list[str]:
    """The inputs of the report_table3 job of a dry run."""
    res = snakemake("-n", "--forceall", *config_args)
    assert res.returncode == 0, res.stderr
    block = (res.stdout + res.stderr).split("rule report_table3:")[1].split("\n\n", 1)[0]
    found = re.search(r"input: (.*)", block)
    return found.group(1).split(", ") if found else []


def test_table3_shows_facetalk_in_its_own_injection_row_when_no_variant_is_trained(tmp_path):
    # the default: no variant trained apart, FaceTalk (FiLM) is the film row
    assert table3_inputs([]) == ["results/models/facetalk/evaluation.json"]
    # its injection trained apart (the experiment configs): the variants' files only
    both = write_config(tmp_path, models={"injection_variants": ["input", "film"]})
    got = table3_inputs(["--configfile", str(both)])
    assert sorted(got) == [
        "results/models/facetalk_film/evaluation.json",
        "results/models/facetalk_input/evaluation.json",
    ]
    # FaceTalk not trained: nothing
    (tmp_path / "b").mkdir()
    none = write_config(tmp_path / "b", models={"train": ["faceformer"]})
    assert table3_inputs(["--configfile", str(none)]) == []
