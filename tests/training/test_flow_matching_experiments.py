"""training/flow_matching_experiments.py: one row per setting, decode-only rows sharing a training, resumable."""

import json

import pytest
import yaml
from helpers import tiny_config_kwargs, write_manifest

from soundlm.training.flow_matching_experiments import format_rows, main, parse_experiment


def test_parse_experiment_splits_training_overrides_from_decode_settings():
    name, overrides, decode = parse_experiment("late: model.condition_dropout=0.1 decode.guidance_interval=0.1,0.9 "
                                               "decode.temperature=0.5")
    assert name == "late" and overrides == ["--model.condition_dropout=0.1"]
    assert decode["guidance_interval"] == [0.1, 0.9] and decode["temperature"] == 0.5 and decode["num_steps"] == 10
    with pytest.raises(ValueError, match="decode settings are"):
        parse_experiment("x: decode.solver=heun")
    with pytest.raises(ValueError, match="section.key=value"):
        parse_experiment("x: temperature=0.5")
    with pytest.raises(ValueError, match="needs a name"):
        parse_experiment(": decode.temperature=0.5")


def test_rows_carry_the_listener_measures_and_a_rerun_reuses_them(tmp_path, real_clips):
    manifest = write_manifest(tmp_path / "data", real_clips)
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({
        "data": {"source": str(manifest), "cache_dir": str(tmp_path / "cache"), "window_seconds": 0.5,
                 "cache_window_seconds": 1.0},
        "model": tiny_config_kwargs(decoder_objective="flow_matching", flow_prediction="data",
                                    condition_dropout=0.1),
        "train": {"batch_size": 4, "warmup_steps": 1, "log_every": 1},
    }))
    out = tmp_path / "out"
    args = ["--base", str(base), "--steps", "3", "--out", str(out), "--fad_hop_seconds", "0",
            "--experiment", "FM guided: decode.num_steps=3 decode.guidance_scale=2 decode.guidance_interval=0.3,0.9",
            "--experiment", "FM T0: decode.num_steps=3 decode.temperature=0",
            "--experiment", "MSE: model.decoder_objective=mse model.condition_dropout=0"]
    rows = main(args)
    assert [row["name"] for row in rows] == ["FM guided", "FM T0", "MSE"]
    assert len(list(out.glob("run-*"))) == 2  # the two FM rows differ in decoding only: one training
    for row in rows:
        assert row["steps"] == 3 and row["loss"] is not None and row["fad"] is None
        (clip,) = row["per_clip"]  # write_manifest holds out the last clip
        assert clip["clip"].endswith("clip3.wav") and clip["category"] == "speech"
        assert row["level_db"] == pytest.approx(clip["level_db"])
        assert row["clipped_pct"] == pytest.approx(100 * clip["clipped"])
        assert row["clipped_at_level_pct"] == pytest.approx(100 * clip["clipped_at_level"])
        assert 0 <= row["clipped_at_level_pct"] <= 100
        assert row["flatness"] == pytest.approx(clip["flatness"]) and row["flatness_by_category"] == {
            "speech": pytest.approx(clip["flatness"])}
    assert rows[0]["decode"]["guidance_interval"] == [0.3, 0.9] and rows[2]["config"]["decoder_objective"] == "mse"
    saved = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [row["name"] for row in saved] == ["FM guided", "FM T0", "MSE"]

    again = main(args)  # every row is in results.jsonl already: nothing is trained or judged again
    assert again == saved
    table = format_rows(again)
    assert table.splitlines()[0].startswith("| name | steps | loss |") and "clipped_at_level_pct" in table
    assert "| euler 3 T=1.0 w=2 guided on [0.3, 0.9) |" in table and "| one pass |" in table
