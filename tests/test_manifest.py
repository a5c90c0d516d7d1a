"""dataset.json: what the download stage hands to preparation, written atomically, read strictly."""

import json
import re
from dataclasses import asdict

import pytest

from nucleiseg.errors import ConfigError
from nucleiseg.manifest import MANIFEST_NAME, Manifest

FULL = Manifest(
    source="kaggle", origin="data-science-bowl-2018", stage1_train="/data/dsb/stage1_train",
    n_images=670, stage1_test="/data/dsb/stage1_test",
    stage1_solution="/data/dsb/stage1_solution.csv",
)
LOCAL = Manifest(source="local", origin="/data/dsb", stage1_train="/data/dsb/stage1_train",
                 n_images=3)


@pytest.mark.parametrize("manifest", [FULL, LOCAL], ids=["with test set", "train only"])
def test_round_trip(tmp_path, manifest):
    path = tmp_path / MANIFEST_NAME
    manifest.write(path)
    assert Manifest.read(path) == manifest
    assert json.loads(path.read_text()) == asdict(manifest)  # plain JSON, every field by name


def test_write_creates_missing_folders(tmp_path):
    path = tmp_path / "resources" / "dsb2018" / MANIFEST_NAME
    LOCAL.write(path)
    assert Manifest.read(path) == LOCAL


def test_write_replaces_the_old_file_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / MANIFEST_NAME
    FULL.write(path)
    LOCAL.write(path)  # shorter: a write in place would leave the old file's tail
    assert json.loads(path.read_text()) == asdict(LOCAL)
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / MANIFEST_NAME
    LOCAL.write(path)
    before = path.read_bytes()
    unserializable = Manifest(source="local", origin=object(), stage1_train="/x", n_images=1)
    with pytest.raises(TypeError):
        unserializable.write(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]


def test_a_temporary_left_by_a_killed_write_is_removed(tmp_path):
    path = tmp_path / MANIFEST_NAME
    stale = tmp_path / f".{MANIFEST_NAME}.k1ll3d.part"
    stale.write_text('{"source": "loc')
    LOCAL.write(path)
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]


@pytest.mark.parametrize("content", [
    {k: v for k, v in asdict(LOCAL).items() if k != "n_images"},  # an older or truncated schema
    {**asdict(LOCAL), "checksum": "abc"},  # a newer one
    [asdict(LOCAL)],
    None,
], ids=["missing field", "unknown field", "a list", "null"])
def test_a_manifest_of_another_shape_is_a_config_error_naming_the_file(tmp_path, content):
    path = tmp_path / MANIFEST_NAME
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=re.escape(str(path))) as caught:
        Manifest.read(path)
    assert "rerun the download rule" in str(caught.value)


def test_a_missing_manifest_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / MANIFEST_NAME
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        Manifest.read(path)


@pytest.mark.parametrize("text", ["", '{"source": "local", "origin": '], ids=["empty", "cut short"])
def test_a_manifest_that_is_not_json_is_a_config_error_naming_the_file(tmp_path, text):
    path = tmp_path / MANIFEST_NAME
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        Manifest.read(path)
