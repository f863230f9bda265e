"""The ``facesleuth`` command: subcommands listed without importing them, each loaded when run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from facesleuth.cli import SUBCOMMANDS, build_parser, main


def test_every_subcommand_has_a_module_and_a_summary():
    for name, subcommand in SUBCOMMANDS.items():
        assert subcommand.module.startswith("facesleuth."), name
        assert len(subcommand.summary.split()) >= 3, name


def test_help_lists_every_subcommand_with_its_summary(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for name, (_, summary) in SUBCOMMANDS.items():
        assert name in out and " ".join(summary.split()) in out


@pytest.mark.parametrize("name,option", [("faces", "--flow"), ("scan", "--model"), ("scan", "--frame-policy"),
                                         ("serve", "--frame-policy"), ("worker", "--frame-policy"),
                                         ("serve", "--max-frame-offset"), ("worker", "--max-frame-offset")])
def test_a_subcommand_help_shows_its_own_options(capsys, name, option):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert option in capsys.readouterr().out


def test_the_parser_for_a_command_loads_that_command_only():
    code = ("import sys, facesleuth.cli as c; c.build_parser('faces'); "
            "print(sorted(m for m in ('facesleuth.cli.faces', 'facesleuth.cli.scan') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['facesleuth.cli.faces']"


def test_no_command_and_an_unknown_command_are_usage_errors(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["nonsense"])
    assert exit_info.value.code == 2
    assert build_parser().parse_args(["faces"]).command == "faces"  # listed even when not loaded
