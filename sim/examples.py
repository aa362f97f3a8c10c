"""The example experiments shipped with the package: list them, read them, copy one out.

The canonical experiments (the Met's 2025 headline, the threshold sweep, the Met's records as a
grid...) are TOML files in ``sim/experiments/``, inside the package, so an installed wheel has them
too; ``experiments/`` at the top of the source tree is a link to that folder, one copy of each file.
``lfrsim examples`` lists them and ``lfrsim examples NAME --to DIR`` copies one out to run or edit;
a copied example runs from anywhere, because the data it names are named as shipped files
(``grid = "lfrsim:met_lfr_deployments_2020_2024.csv"``, ``sim.data.resolve``).
"""

from __future__ import annotations

import os
import textwrap
import tomllib
from importlib import resources
from pathlib import Path

FOLDER = "experiments"
SUFFIX = ".toml"


class ExampleError(ValueError):
    """A bad request for an example, naming the setting it is about (``name``, ``to``, ``force``)."""

    def __init__(self, setting: str, message: str):
        super().__init__(f"{setting}: {message}")
        self.setting = setting


def folder() -> Path:
    """The installed folder of the example experiments."""
    return Path(str(resources.files(__package__).joinpath(FOLDER)))


def names() -> list[str]:
    """The examples' names (their file names without ``.toml``), sorted."""
    return sorted(p.name[: -len(SUFFIX)] for p in folder().iterdir() if p.name.endswith(SUFFIX))


def path(name: str) -> Path:
    """The installed file of the example ``name`` (``.toml`` may be given or left out)."""
    stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    known = names()
    if stem not in known:
        raise ExampleError("name", f"must be one of {', '.join(known)}; got {name!r}")
    return folder() / f"{stem}{SUFFIX}"


def description(name: str, width: int = 0) -> str:
    """The example's ``experiment.description`` on one line (cut at a word to ``width`` if given)."""
    with open(path(name), "rb") as fh:
        text = tomllib.load(fh).get("experiment", {}).get("description", "")
    line = " ".join(str(text).split())
    return textwrap.shorten(line, width, placeholder=" …") if width else line


def copy(name: str, to: str | Path = ".", force: bool = False) -> Path:
    """Copy the example ``name`` into the folder ``to`` (made if missing); return the new file.

    An existing file of that name is replaced only with ``force``; the copy is written to a
    temporary name and renamed, so a failed copy leaves nothing half-written.
    """
    source = path(name)
    to = Path(to)
    if to.exists() and not to.is_dir():
        raise ExampleError("to", f"must be a folder, got the file {to}")
    target = to / source.name
    if target.exists() and not force:
        raise ExampleError("to", f"{target} exists; force=True replaces it")
    to.mkdir(parents=True, exist_ok=True)
    tmp = to / f".{source.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "xb") as fh:     # the usual permissions (a mkstemp file would be private)
            fh.write(source.read_bytes())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
