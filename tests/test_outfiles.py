"""Writing files: names from stored text stay names, links are never followed, and a folder is
replaced only when it is exactly a previous export of ours."""

from __future__ import annotations

import hashlib
import html as html_lib
import json
import string

import pytest

from disfer.errors import ConfigError
from disfer.outfiles import markdown_text, new_partial_folder, safe_name, swap_in, write_bytes, writing


@pytest.mark.parametrize("bad", ["..", "../../elsewhere", "/etc", "a/b", "a\\b", "", ".hidden", "-rf",
                                 "x\x00y", "a" * 101, "name with space", "..."])
def test_unsafe_names_are_refused(bad):
    with pytest.raises(ConfigError, match="cannot be used as a file or folder name"):
        safe_name(bad, "split")


@pytest.mark.parametrize("good", ["PublicTest", "anger", "17-gaussian_blur-2", "minixception-ft-salt_pepper",
                                  "v1.2+cu"])
def test_safe_names_pass(good):
    assert safe_name(good, "x") == good


def test_a_planted_link_is_replaced_not_followed(tmp_path):
    out, target = tmp_path / "out", tmp_path / "victim.txt"
    out.mkdir()
    target.write_text("precious")
    (out / "1-original-0.png").symlink_to(target)
    write_bytes(out, "1-original-0.png", b"png")
    assert target.read_text() == "precious"
    assert not (out / "1-original-0.png").is_symlink() and (out / "1-original-0.png").read_bytes() == b"png"


def test_a_linked_folder_on_the_way_is_refused(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "Training").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ConfigError, match="symbolic link"):
        write_bytes(out, "Training/anger/1.png", b"png")
    assert list(elsewhere.iterdir()) == []


def _export(folder, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    manifest = {"files": {rel: {"sha256": hashlib.sha256(d).hexdigest()} for rel, d in files.items()}}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _new(tmp_path, out):
    tmp = new_partial_folder(out)
    (tmp / "data.csv").write_text("new")
    return tmp


def test_force_replaces_exactly_a_previous_export(tmp_path):
    out = tmp_path / "out"
    _export(out, {"data.csv": b"old", "PublicTest/anger/1.png": b"png"})
    swap_in(_new(tmp_path, out), out, force=True)
    assert sorted(p.name for p in out.rglob("*")) == ["data.csv"]
    assert (out / "data.csv").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("intruder", ["thesis.docx", "sub/data.csv"])
def test_force_refuses_a_folder_with_other_files(tmp_path, intruder):
    out = tmp_path / "out"
    _export(out, {"data.csv": b"old"})
    (out / intruder).parent.mkdir(parents=True, exist_ok=True)
    (out / intruder).write_text("mine")
    tmp = _new(tmp_path, out)
    with pytest.raises(ConfigError, match="not exactly a previous export"):
        swap_in(tmp, out, force=True)
    assert (out / intruder).read_text() == "mine" and (out / "data.csv").read_bytes() == b"old"


def test_force_refuses_a_changed_file(tmp_path):
    out = tmp_path / "out"
    _export(out, {"data.csv": b"old"})
    (out / "data.csv").write_text("edited by hand")
    with pytest.raises(ConfigError, match="not exactly a previous export"):
        swap_in(_new(tmp_path, out), out, force=True)
    assert (out / "data.csv").read_text() == "edited by hand"


def test_without_force_a_non_empty_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    _export(out, {"data.csv": b"old"})
    with pytest.raises(ConfigError, match="pass --force"):
        swap_in(_new(tmp_path, out), out, force=False)


@pytest.mark.parametrize("force", [False, True])
def test_a_linked_output_folder_is_refused(tmp_path, force):
    real = tmp_path / "real"
    _export(real, {"data.csv": b"old"})
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    with pytest.raises(ConfigError, match="symbolic link"):
        swap_in(_new(tmp_path, tmp_path / "link"), tmp_path / "link", force=force)
    assert (real / "data.csv").read_bytes() == b"old"


def test_a_folder_under_a_file_is_one_clear_error(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not a folder|cannot create"):
        new_partial_folder(blocker / "out")


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    (tmp_path / "manifest.csv").write_text("old")
    with pytest.raises(RuntimeError), writing(tmp_path, "manifest.csv", "w") as fh:
        fh.write("half")
        raise RuntimeError("disk gone")
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.csv"]
    assert (tmp_path / "manifest.csv").read_text() == "old"


@pytest.mark.parametrize("text", ["![b](http://127.0.0.1:8599/beacon.png)", "<img src=x onerror=alert(1)>",
                                  "[click](javascript:alert(1))", "**bold** _it_ `code` ~~s~~", "# heading",
                                  "1. item", "- item", "> quote", "a | b", "$x^2$", ":red[x] :material/home:",
                                  "&amp; &#60;", "back\\slash", string.punctuation, "plain name"])
def test_markdown_text_renders_as_exactly_its_text(text):
    """Checked with an independent CommonMark renderer: one paragraph holding the text itself, no
    image, link, HTML, emphasis, code, heading, list or table."""
    markdown_it = pytest.importorskip("markdown_it")
    escaped = markdown_text(text)
    assert "![" not in escaped and "<" not in escaped
    html = markdown_it.MarkdownIt().enable(["table", "strikethrough"]).render(escaped)
    assert html == f"<p>{html_lib.escape(text, quote=True).replace('&#x27;', chr(39))}</p>\n"


def test_markdown_text_is_one_line():
    assert markdown_text("a\nb\r\nc\x00d\u2028e") == "a b c d e"


def test_files_and_folders_get_the_modes_of_ordinary_ones(tmp_path):
    # Not tempfile's private 0600 / 0700: an export is read by others (a web server, a colleague).
    (tmp_path / "plain.txt").write_bytes(b"x")
    (tmp_path / "plain").mkdir()
    out = tmp_path / "out"
    tmp = new_partial_folder(out)
    write_bytes(tmp, "sub/data.csv", b"x")
    swap_in(tmp, out, force=False)
    mode = lambda p: p.stat().st_mode & 0o777  # noqa: E731
    assert mode(out / "sub" / "data.csv") == mode(tmp_path / "plain.txt")
    assert mode(out) == mode(out / "sub") == mode(tmp_path / "plain")
