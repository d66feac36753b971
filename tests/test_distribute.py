"""Strategies by name (the mirrored and multi-worker runs themselves are in test_train / test_cli_train)."""

import pytest
import tensorflow as tf

from mobilenet_sep.distribute import make_strategy, worker_id


def test_default_strategy_is_tensorflows():
    strategy = make_strategy("default")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1 and worker_id(strategy) == "local"
    assert strategy.extended.should_checkpoint


def test_bad_names_and_missing_cluster_are_one_line_errors(monkeypatch):
    with pytest.raises(ValueError, match="Received: strategy='tpu'"):
        make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG.*Received: TF_CONFIG=None"):
        make_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}, "task": {}}')
    with pytest.raises(ValueError, match="names no workers"):
        make_strategy("multi-worker")
