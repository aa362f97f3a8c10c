"""The shipped example experiments (sim.examples) and `lfrsim examples`: list, copy, refuse."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sim import examples
from sim.cli import main
from sim.config import load_experiment

ROOT = Path(__file__).resolve().parents[1]


def test_the_examples_are_the_files_of_experiments_one_copy_each():
    top = ROOT / "experiments"
    assert top.is_symlink() and top.resolve() == (ROOT / "sim" / "experiments").resolve()
    assert examples.folder().resolve() == (ROOT / "sim" / "experiments").resolve()
    assert examples.names() == sorted(p.stem for p in top.glob("*.toml"))
    assert {"met_2025_headline", "met_records_2020_2024", "threshold_sweep"} <= set(examples.names())


def test_the_wheel_ships_the_examples():
    # the package data of pyproject.toml: a wheel built from this tree holds every example
    with open(ROOT / "pyproject.toml", "rb") as fh:
        patterns = tomllib.load(fh)["tool"]["setuptools"]["package-data"]["sim"]
    shipped = {p for pattern in patterns for p in (ROOT / "sim").glob(pattern)}
    assert {examples.path(n) for n in examples.names()} <= shipped


def test_listing_gives_every_example_one_line_each(capsys):
    assert main(["examples"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in examples.names():
        mine = [line for line in lines if line.split()[:1] == [name]]
        assert len(mine) == 1 and len(mine[0]) <= 100, mine
        assert len(mine[0].split()) > 3                     # a description follows the name
    assert "lfrsim examples NAME" in lines[-1]


def test_a_copy_is_the_shipped_file_byte_for_byte(tmp_path, capsys):
    assert main(["examples", "met_2025_headline", "--to", str(tmp_path / "new")]) == 0
    copied = tmp_path / "new" / "met_2025_headline.toml"
    assert copied.read_bytes() == examples.path("met_2025_headline").read_bytes()
    assert str(copied) in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["met_2025_headline.toml"]   # no temporary left


def test_a_copy_goes_to_the_current_folder_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["examples", "threshold_sweep.toml"]) == 0            # the file name works too
    assert (tmp_path / "threshold_sweep.toml").is_file()


def one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, err
    return err


def test_an_existing_file_is_refused_without_force(tmp_path, capsys):
    target = tmp_path / "met_2025_headline.toml"
    target.write_text("mine\n")
    assert main(["examples", "met_2025_headline", "--to", str(tmp_path)]) == 2
    one_error_line(capsys, "--to", str(target), "exists", "--force")
    assert target.read_text() == "mine\n"
    assert main(["examples", "met_2025_headline", "--to", str(tmp_path), "--force"]) == 0
    assert target.read_bytes() == examples.path("met_2025_headline").read_bytes()


def test_an_unknown_name_is_refused_naming_the_examples(tmp_path, capsys):
    assert main(["examples", "met_2026", "--to", str(tmp_path)]) == 2
    one_error_line(capsys, "met_2026", *examples.names())
    assert not any(tmp_path.iterdir())


def test_to_a_file_or_without_a_name_is_refused(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main(["examples", "threshold_sweep", "--to", str(a_file)]) == 2
    one_error_line(capsys, "--to", "folder")
    assert main(["examples", "--force"]) == 2
    one_error_line(capsys, "NAME")


def test_every_example_has_a_description_and_validates():
    for name in examples.names():
        assert examples.description(name)
        assert load_experiment(examples.path(name)).experiment.name == name


def test_a_copied_records_example_validates_from_an_unrelated_folder(tmp_path, capsys):
    # the grid is named as a shipped file, so the copy does not need the source tree beside it
    elsewhere = tmp_path / "elsewhere"
    assert main(["examples", "met_records_2020_2024", "--to", str(elsewhere)]) == 0
    copied = elsewhere / "met_records_2020_2024.toml"
    assert 'grid = "lfrsim:' in copied.read_text()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "sim", "validate", copied.name], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout
    shipped = load_experiment(examples.path("met_records_2020_2024"))
    assert load_experiment(copied) == shipped


@pytest.mark.parametrize("name", ["../met_2025_headline", "", "data/posterior"])
def test_a_name_is_only_an_examples_name(name):
    with pytest.raises(examples.ExampleError):
        examples.path(name)
