"""The `mobilenet-sep` command: real subprocess runs for the shell contract, main() for the rest."""

import json
import subprocess
import sys

from mobilenet_sep.cli import main


def _run(*arguments):
    return subprocess.run([sys.executable, "-m", "mobilenet_sep.cli", *arguments], capture_output=True, text=True)


def test_help_lists_the_commands():
    result = _run("--help")
    assert result.returncode == 0
    for command in ("zoo", "profile", "compare", "train", "evaluate", "export", "benchmark", "demo"):
        assert command in result.stdout


def test_zoo_table_and_json(capsys):
    assert main(["zoo", "mobilenet_v1_1.0_*"]) == 0
    table = capsys.readouterr().out
    assert "mobilenet_v1_1.0_224" in table and "4,253,864" in table and "569" in table
    assert main(["zoo", "*_0.25_128", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == ["conv_mobilenet_v1_0.25_128", "mobilenet_v1_0.25_128"]
    assert rows[1]["parameters"] == 475_544
    assert rows[1]["published"]["tf_slim"]["mult_adds_millions"] == 14


def test_errors_are_one_line_with_exit_code_2():
    result = _run("zoo", "no_such_model*")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: No zoo model matches the pattern. Received: pattern='no_such_model*'"
    assert "Traceback" not in result.stderr
    result = _run("no-such-command")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
