import json

import pytest

from pocketbnn.cli import main
from pocketbnn.training.checkpoint import load_checkpoint
from pocketbnn.training.demo import run_demo

TINY = ["--model-arg", "widths=(8, 16)", "--model-arg", "blocks=(1, 1)", "--model-arg", "stem_pool=False"]


def test_train_eval_and_distil_from_the_cli(tmp_path, capsys):
    common = ["--dataset", "synthetic", "--epochs", "2", "--batch-size", "64", "--no-progress", *TINY]
    assert main(["train", "quicknet-mini-float", "--out", str(tmp_path / "teacher"), "--lr", "0.01", *common]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["train", "quicknet-mini", "--out", str(tmp_path / "student"), "--teacher",
                 str(tmp_path / "teacher" / "checkpoint.pt"), "--temperature", "2", "--distill-weight", "0.5",
                 "--binary-optimizer", "bop", "--betas", "0.9", "0.99", *common]) == 0
    state = load_checkpoint(tmp_path / "student" / "checkpoint.pt")
    assert state["config"]["temperature"] == 2.0 and state["config"]["binary_optimizer"] == "bop"
    assert state["config"]["betas"] == (0.9, 0.99) and state["config"]["epochs"] == 2
    assert state["model_spec"]["kwargs"]["widths"] == (8, 16)
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["teacher"].endswith("checkpoint.pt") and config["config"]["distill_weight"] == 0.5
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "student" / "checkpoint.pt"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["dataset"] == "synthetic" and record["images"] == 64 and 0 <= record["test_accuracy"] <= 1


def test_missing_dataset_is_one_line_with_the_fix(tmp_path, capsys):
    assert main(["train", "quicknet-mini", "--dataset", f"fashion_mnist:{tmp_path}", "--out", str(tmp_path)]) == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


def test_config_flags_carry_the_docstring(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--warmup-epochs" in help_text and "length of the linear warm-up" in help_text
    assert "--bound-calibration-step" in help_text


def test_demo_writes_a_report(tmp_path):
    report = run_demo(tmp_path, dataset="synthetic", epochs=1, progress=False)
    text = report.read_text()
    for name in ("training_curves.png", "layer_cost.png", "op_latency.png", "summary.json", "model.pbnn",
                 "run/checkpoint.pt"):
        assert (tmp_path / name).is_file(), name
    assert "Test accuracy" in text and "](layer_cost.png)" in text and "## Engine check" in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dataset"] == "synthetic" and summary["cost"]["macs"]["1x1"] > 0
    assert summary["engine_agreement"] >= 0.999
    assert summary["latency_ms"]["engine"] > 0 and summary["latency_ms"]["torch"] > 0
