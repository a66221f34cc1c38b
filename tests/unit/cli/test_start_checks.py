"""What `manta start` checks before starting anything: TLS files named on the command line
load (or the error names the setting), and listening beyond loopback without TLS warns."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from manta._private.common.config import Config
from manta._private.rpc import certs
from manta.cli.cluster import _node_config, _warn_if_exposed


def test_listening_beyond_loopback_without_tls_warns(capsys: pytest.CaptureFixture[str]) -> None:
    _warn_if_exposed(Config(), "127.0.0.1", "localhost")
    _warn_if_exposed(Config(), "::1", None)
    assert capsys.readouterr().err == ""
    _warn_if_exposed(Config(), "10.0.0.1", "0.0.0.0")
    err = capsys.readouterr().err
    assert "WARNING: listening on 0.0.0.0, 10.0.0.1 without TLS" in err and "--tls-ca" in err
    _warn_if_exposed(Config(tls_ca="ca", tls_cert="c", tls_key="k"), "10.0.0.1", None)
    assert capsys.readouterr().err == ""


def test_tls_files_are_checked_and_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = certs.create_ca(str(tmp_path / "ca"))
    node = certs.create_node(ca.cert, ca.key, ["127.0.0.1"], [], str(tmp_path / "node"))
    monkeypatch.chdir(tmp_path)
    config = _node_config(Config(), "ca/ca.crt", "node/node.crt", "node/node.key")
    assert config.tls_ca == ca.cert and config.tls_cert == node.cert and config.tls_key == node.key
    with pytest.raises(click.BadParameter, match="MANTA_TLS_KEY not set"):
        _node_config(Config(), "ca/ca.crt", "node/node.crt", None)
    with pytest.raises(click.BadParameter, match="cannot be read"):
        _node_config(Config(), "ca/ca.crt", "node/node.crt", "missing.key")


def test_the_actor_limit_given_on_the_command_line_is_the_configs() -> None:
    assert _node_config(Config(), None, None, None, 3).max_actors_per_job == 3
    assert _node_config(Config(max_actors_per_job=5), None, None, None).max_actors_per_job == 5
