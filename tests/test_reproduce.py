"""``memory-envs reproduce``'s scales and the claims table built from its run folders (baselines.claims)."""

from __future__ import annotations

from baselines.cli import main
from baselines.reproduce import scale_configs


def test_laptop_scale_adds_gru_and_lstm_runs_with_their_optimizer_and_size():
    configs = scale_configs("laptop")
    assert list(configs) == ["parity-single", "parity-multi", "dms-single", "dms-multi", "gru-parity-single",
                             "gru-parity-multi", "lstm-parity-single", "lstm-parity-multi"]
    gated = {name: c for name, c in configs.items() if c.core != "leaky"}
    assert {c.optimizer_settings() for c in gated.values()} == {("adam", 1e-3)}  # --optimizer auto
    assert {c.hidden_size for c in gated.values()} == {64} and {c.hidden_size for c in configs.values()} == {64, 128}
    assert configs["parity-single"].optimizer_settings() == ("sgd", 0.05)
    assert configs["parity-single"].max_steps > configs["dms-single"].max_steps  # parity gets the longer budget
    assert {c.target_n for c in configs.values()} == {32} and {c.device for c in configs.values()} == {"cpu"}
    assert list(scale_configs("laptop", seeds=(0, 1)))[:2] == ["parity-single-s0", "parity-single-s1"]


def test_reproduce_refuses_workers_without_a_backend_before_writing(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["reproduce", "--scale", "laptop", "--workers", "2", "--out", str(out)]) == 2
    assert "--workers: only with --backend" in capsys.readouterr().err
    assert main(["reproduce", "--scale", "laptop", "--seeds", "1,1", "--out", str(out)]) == 2
    assert "seeds must be distinct" in capsys.readouterr().err
    assert not out.exists()
