"""Files we write, kept inside the folder the user chose.

Every path an exporter builds from stored text (a split, a label, an id, a model name) goes through
`safe_name`, so data can never name `..`, an absolute path or a hidden file. Every file is written
by `write_bytes` / `write_text`: to a temporary file in the same folder, then `os.replace`d over
the target, refusing a symbolic link at the target or on the way from the root, so a link planted
in the output folder is never followed. A folder we replace (`--force`) must hold exactly what a
previous export of ours wrote (its manifest lists every file with its sha256); anything else is
refused, never deleted. Stored text written into Markdown (the dataset card, the dashboard) goes
through `markdown_text`, so a name can never become an image, a link or HTML.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from disfer.errors import ConfigError

# A file or folder name made from stored text: letters, digits and . _ + - (no separator, no NUL,
# no leading dot or dash), at most 100 characters.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
MANIFEST = "manifest.json"


def safe_name(value: object, what: str) -> str:
    """`value` as one path component, or ConfigError naming `what` and the value."""
    text = str(value)
    if not _SAFE_NAME.fullmatch(text) or ".." in text:
        raise ConfigError(f"{what} {text[:60]!r} cannot be used as a file or folder name "
                          "(letters, digits and . _ + - only)")
    return text


# Every ASCII punctuation character may be backslash-escaped in CommonMark (and GitHub's and
# Streamlit's Markdown): escaped, none of them starts an image, link, emphasis, table cell, heading,
# math or a Streamlit directive. `<` and `>` become entities, so the escaped text holds no `<img`.
_MARKDOWN_SPECIAL = re.compile(r"([!\"#$%&'()*+,\-./:;=?@\[\\\]^_`{|}~])")
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def markdown_text(value: object) -> str:
    """`value` as Markdown that shows exactly its text, on one line: for stored text (a curator,
    a note, a model name, a label) placed in Markdown."""
    text = _LINE_BREAKS.sub(" ", str(value))
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def confined(root: Path, *parts: str) -> Path:
    """root / parts, refused unless it stays inside root with no symbolic link on the way (a link
    as the last part is fine: `write_bytes` replaces the link itself)."""
    root = Path(root)
    path = root.joinpath(*parts)
    here = root
    for part in Path(*parts).parts[:-1] if parts else ():
        here = here / part
        if here.is_symlink():
            raise ConfigError(f"{here}: is a symbolic link; refusing to write through it")
    if not (path.parent.resolve() / path.name).is_relative_to(root.resolve()) or path.name in ("", "..", "."):
        raise ConfigError(f"{path}: outside the output folder {root}")
    return path


def output_folder(out: str | Path, what: str = "output folder") -> Path:
    """Create `out` (and its parents) as a real folder, or ConfigError in one line."""
    out = Path(out)
    if out.is_symlink():
        raise ConfigError(f"{out}: the {what} is a symbolic link; give the real folder")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{out}: cannot create the {what}: {err.strerror or err}") from None
    return out


@contextmanager
def writing(root: Path, relative: str | Path, mode: str = "wb", **open_args) -> Iterator[IO]:
    """Open root/relative for writing, as a temporary file in the same folder that is os.replace'd
    over the target when the block ends without error (removed when it fails), so the target is
    never half written and a link at it is replaced, never followed. For files written as a stream
    (a CSV of every face); `write_bytes` for data already in memory."""
    parts = Path(relative).parts
    path = confined(root, *parts)
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            confined(root, *parts)  # a link may not appear on the way while we created folders
        fd, tmp = _new_file(path.parent, f".{path.name}.", ".partial")
    except OSError as err:
        raise ConfigError(f"{path}: cannot write: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, mode, **open_args) as fh:
            yield fh
        os.replace(tmp, path)  # replaces a link itself, never its target
    except OSError as err:
        raise ConfigError(f"{path}: cannot write: {err.strerror or err}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


# O_EXCL: a name that exists (a link planted there too) is never opened; the next name is tried.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _new_file(folder: Path, prefix: str, suffix: str) -> tuple[int, str]:
    # Not tempfile.mkstemp: its files are 0600, and an export is read by others (a web server, a
    # colleague); 0666 less the user's umask is what an ordinary file gets.
    for _ in range(100):
        name = os.path.join(folder, f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(name, _NEW_FILE, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


def _new_folder(parent: Path, prefix: str) -> Path:
    # Not tempfile.mkdtemp (0700), for the same reason: the folder becomes the export itself.
    for _ in range(100):
        folder = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            folder.mkdir(0o777)
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {parent}")


def write_bytes(root: Path, relative: str | Path, data: bytes) -> Path:
    """Write root/relative through a temporary file and os.replace; never through a link."""
    with writing(root, relative) as fh:
        fh.write(data)
    return Path(root).joinpath(*Path(relative).parts)


def write_text(root: Path, relative: str | Path, text: str) -> Path:
    return write_bytes(root, relative, text.encode("utf-8"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def previous_export_files(out: Path) -> list[str] | None:
    """The files of a previous export of ours in `out` (relative paths, manifest last), or None
    when `out` holds anything else: a file the manifest does not list, a changed file, a link."""
    manifest_path = out / MANIFEST
    if manifest_path.is_symlink() or not manifest_path.is_file():
        return None
    try:
        listed = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(listed, dict):
        return None
    found = []
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        if path.is_symlink():
            return None
        if path.is_dir() or rel == MANIFEST:
            continue
        entry = listed.get(rel)
        if not isinstance(entry, dict) or sha256(path) != entry.get("sha256"):
            return None
        found.append(rel)
    return found + [MANIFEST]


def replaceable(out: Path, force: bool) -> list[str]:
    """What replacing `out` would delete: nothing when `out` is absent or empty, else (only with
    `force`) the files of a previous export of ours; ConfigError in one line for anything else (a
    link, a file, a folder with other or changed content). Called before an export starts, so a
    refusal costs no work, and again by `swap_in`."""
    out = Path(out)
    if out.is_symlink():
        raise ConfigError(f"{out}: is a symbolic link; give the real folder")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    try:
        empty = not out.exists() or not any(out.iterdir())
    except OSError as err:
        raise ConfigError(f"{out}: cannot read the folder: {err.strerror or err}") from None
    if empty:
        return []
    ours = previous_export_files(out) if force else None
    if ours is None:
        raise ConfigError(f"{out}: exists and is not empty; choose a new folder"
                          + (" (it is not exactly a previous export: it holds other or changed "
                             "files, so it is left alone)" if force
                             else " or pass --force to replace a previous export"))
    return ours


def swap_in(tmp: Path, out: Path, force: bool) -> None:
    """Move the finished folder `tmp` to `out`. An existing non-empty `out` is replaced only with
    `force` and only when it is exactly a previous export of ours; its files are then removed one
    by one (nothing else is deleted)."""
    ours = replaceable(out, force)
    try:
        if not ours:
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
            return
        old = out.parent / f".{out.name}.replaced-{os.getpid()}"
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except OSError:
            os.replace(old, out)  # the previous export stays where it was
            raise
    except OSError as err:
        raise ConfigError(f"{out}: cannot put the export in place: {err.strerror or err}") from None
    for rel in ours:
        (old / rel).unlink(missing_ok=True)
    # Only the folders the listed files were in, and only once empty: a file that appeared there
    # meanwhile keeps its folder (left beside the export as .NAME.replaced-PID).
    for folder in sorted((p for p in old.rglob("*") if p.is_dir() and not p.is_symlink()),
                         key=lambda p: len(p.parts), reverse=True):
        _rmdir_if_empty(folder)
    _rmdir_if_empty(old)


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def new_partial_folder(out: Path) -> Path:
    """An empty sibling folder of `out` to build an export in (removed by the caller on failure)."""
    output_folder(out.parent, "parent folder")
    try:
        return _new_folder(out.parent, f".{out.name}.partial-")
    except OSError as err:
        raise ConfigError(f"{out}: cannot write beside it: {err.strerror or err}") from None


def remove_partial_folder(tmp: Path) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
