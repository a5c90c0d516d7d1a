"""The download stage (nucleiseg.download): every source up to the network, no network used.

Archives are built in tmp_path from a few real DSB2018 images (shared/data/dsb2018); `file://`
URLs stand in for the Broad Institute's server. Kaggle is covered up to the client call: the
credential lookup, the translation of the client's failures, and reuse of a downloaded zip.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from nucleiseg.download import fetch_dataset
from nucleiseg.download.archive import safe_member_path, zip_problem
from nucleiseg.download.kaggle import (
    explain_kaggle_failure,
    find_kaggle_credentials,
    kaggle_config_dir,
)
from nucleiseg.errors import ConfigError, DownloadError
from nucleiseg.manifest import Manifest

REPO = Path(__file__).resolve().parents[1]
SHARED_DSB = REPO.parent / "shared" / "data" / "dsb2018"

N_TRAIN, N_TEST = 3, 2
SOLUTION_CSV = "ImageId,EncodedPixels,Height,Width,Usage\n{id},1 5 10 3,256,256,Public\n"
KAGGLE_ENV = (
    "KAGGLE_USERNAME",
    "KAGGLE_KEY",
    "KAGGLE_API_TOKEN",
    "KAGGLE_CONFIG_DIR",
    "KAGGLE_API_V1_TOKEN",
    "KAGGLE_KERNEL_RUN_TYPE",
    "XDG_CONFIG_HOME",
)


# --- building small real archives -------------------------------------------------------------


def _small_ids(n: int) -> list[str]:
    """The `n` real samples with the fewest masks (small archives, fast tests)."""
    train = SHARED_DSB / "stage1_train"
    if not train.is_dir():
        pytest.skip(
            f"real DSB2018 images not found at {SHARED_DSB} (see shared/data/PROVENANCE.md)"
        )
    meta = SHARED_DSB / "stage1_train_meta.csv"
    if meta.is_file():
        with open(meta, newline="") as fh:
            rows = sorted(csv.DictReader(fh), key=lambda r: (int(r["n_masks"]), r["id"]))
        return [r["id"] for r in rows[:n]]
    return sorted(p.name for p in train.iterdir() if p.is_dir())[:n]


def _sample_members(sample_id: str, with_masks: bool) -> dict[str, bytes]:
    folder = SHARED_DSB / "stage1_train" / sample_id
    members = {
        f"{sample_id}/images/{sample_id}.png": (folder / "images" / f"{sample_id}.png").read_bytes()
    }
    if with_masks:
        for mask in sorted((folder / "masks").iterdir()):
            members[f"{sample_id}/masks/{mask.name}"] = mask.read_bytes()
    return members


def _write_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def dsb(tmp_path_factory):
    """Real-image stand-ins for the BBBC038 files and for Kaggle's nested competition zip."""
    ids = _small_ids(N_TRAIN + N_TEST)
    train_ids, test_ids = ids[:N_TRAIN], ids[N_TRAIN:]
    train_members, test_members = {}, {}
    for sample_id in train_ids:
        train_members.update(_sample_members(sample_id, with_masks=True))
    for sample_id in test_ids:
        test_members.update(_sample_members(sample_id, with_masks=False))
    solution = SOLUTION_CSV.format(id=test_ids[0])

    root = tmp_path_factory.mktemp("dsb_sources")
    server = root / "bbbc038"  # what https://data.broadinstitute.org/bbbc/BBBC038/ serves
    _write_zip(server / "stage1_train.zip", train_members)
    _write_zip(server / "stage1_test.zip", test_members)
    (server / "stage1_solution.csv").write_text(solution)

    kaggle_zip = _write_zip(
        root / "kaggle" / "data-science-bowl-2018.zip",
        {
            "stage1_train.zip": _zip_bytes(train_members),
            "stage1_test.zip": _zip_bytes(test_members),
            "stage1_solution.csv.zip": _zip_bytes({"stage1_solution.csv": solution.encode()}),
            "stage1_train_labels.csv.zip": _zip_bytes({"stage1_train_labels.csv": b"ImageId,x\n"}),
        },
    )
    return SimpleNamespace(
        train_ids=train_ids,
        test_ids=test_ids,
        train_members=train_members,
        test_members=test_members,
        solution=solution,
        server=server,
        kaggle_zip=kaggle_zip,
    )


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by its relative POSIX path, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _assert_extracted(dsb, manifest: Manifest, dest: Path) -> None:
    assert manifest.stage1_train == str(dest / "stage1_train")
    assert manifest.n_images == N_TRAIN
    assert _tree(dest / "stage1_train") == dsb.train_members
    assert manifest.stage1_test == str(dest / "stage1_test")
    assert _tree(dest / "stage1_test") == dsb.test_members
    assert manifest.stage1_solution == str(dest / "stage1_solution.csv")
    assert (dest / "stage1_solution.csv").read_text() == dsb.solution
    assert Manifest.read(dest / "dataset.json") == manifest
    leftovers = [p.name for p in dest.rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


@pytest.fixture
def no_kaggle_credentials(tmp_path, monkeypatch):
    """An environment where the kaggle client would find no credentials at all."""
    for name in KAGGLE_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, expected",
    [
        ("synthetic", "generated by its own rule"),
        ("ftp", "must be one of kaggle, bbbc038, local"),
        (None, "must be one of kaggle, bbbc038, local"),
    ],
)
def test_fetch_dataset_rejects_other_sources(tmp_path, source, expected):
    with pytest.raises(ConfigError, match=expected):
        fetch_dataset({"source": source}, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


# --- kaggle -----------------------------------------------------------------------------------


def test_kaggle_without_credentials_says_how_to_get_them(
    tmp_path, monkeypatch, no_kaggle_credentials
):
    config_dir = tmp_path / "kaggle-config"  # absent: importing the client would create it
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))
    settings = {"source": "kaggle", "kaggle": {"competition": "data-science-bowl-2018"}}
    with pytest.raises(DownloadError) as caught:
        fetch_dataset(settings, tmp_path / "dest")
    message = str(caught.value)
    for needed in (
        "KAGGLE_USERNAME",
        "KAGGLE_KEY",
        "KAGGLE_API_TOKEN",
        "~/.kaggle",
        str(config_dir / "kaggle.json"),
        "https://www.kaggle.com/settings/api",
        "https://www.kaggle.com/competitions/data-science-bowl-2018/rules",
        "dataset.source: bbbc038",
        "dataset.source: local",
        "dataset.local.path",
    ):
        assert needed in message, needed
    assert not config_dir.exists(), "the kaggle client was imported before credentials were checked"
    assert not (tmp_path / "dest" / "dataset.json").exists()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    "case, found",
    [
        ("nothing", False),
        ("env username and key", True),
        ("env username only", False),
        ("env api token", True),
        ("kaggle.json in KAGGLE_CONFIG_DIR", True),
        ("kaggle.json in ~/.kaggle, KAGGLE_CONFIG_DIR elsewhere", False),
        ("kaggle.json username + env key", True),
        ("kaggle.json without key", False),
        ("~/.kaggle/access_token", True),
        ("empty ~/.kaggle/access_token", False),
        ("access_token in KAGGLE_CONFIG_DIR", True),
        ("oauth login", True),
        ("kaggle.json in XDG folder, no ~/.kaggle", True),
    ],
)
def test_find_kaggle_credentials_mirrors_the_client(
    tmp_path, monkeypatch, no_kaggle_credentials, case, found
):
    home = no_kaggle_credentials
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    key_json = json.dumps({"username": "ada", "key": "0123"})
    if case == "env username and key":
        monkeypatch.setenv("KAGGLE_USERNAME", "ada")
        monkeypatch.setenv("KAGGLE_KEY", "0123")
    elif case == "env username only":
        monkeypatch.setenv("KAGGLE_USERNAME", "ada")
    elif case == "env api token":
        monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_0123")
    elif case == "kaggle.json in KAGGLE_CONFIG_DIR":
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))
        _write(config_dir / "kaggle.json", key_json)
    elif case == "kaggle.json in ~/.kaggle, KAGGLE_CONFIG_DIR elsewhere":
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))
        _write(home / ".kaggle" / "kaggle.json", key_json)
    elif case == "kaggle.json username + env key":
        _write(home / ".kaggle" / "kaggle.json", json.dumps({"username": "ada"}))
        monkeypatch.setenv("KAGGLE_KEY", "0123")
    elif case == "kaggle.json without key":
        _write(home / ".kaggle" / "kaggle.json", json.dumps({"username": "ada"}))
    elif case == "~/.kaggle/access_token":
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))  # the client ignores it here
        _write(home / ".kaggle" / "access_token", "KGAT_0123\n")
    elif case == "empty ~/.kaggle/access_token":
        _write(home / ".kaggle" / "access_token", "\n")
    elif case == "access_token in KAGGLE_CONFIG_DIR":
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))
        _write(config_dir / "access_token", "KGAT_0123\n")
    elif case == "oauth login":
        _write(home / ".kaggle" / "credentials.json", json.dumps({"refresh_token": "r"}))
    elif case == "kaggle.json in XDG folder, no ~/.kaggle":
        if not sys.platform.startswith("linux"):
            pytest.skip("the client uses the XDG folder on Linux only")
        _write(home / ".config" / "kaggle" / "kaggle.json", key_json)
        assert kaggle_config_dir() == home / ".config" / "kaggle"

    credentials = find_kaggle_credentials()
    assert (credentials is not None) == found, credentials
    if case == "access_token in KAGGLE_CONFIG_DIR":
        # The client reads access_token from ~/.kaggle only: it is handed over by variable.
        assert credentials.env == {"KAGGLE_API_TOKEN": str(config_dir / "access_token")}


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.url = "https://api.kaggle.com/v1/competitions.CompetitionApiService/DownloadDataFiles"
    return requests.HTTPError(f"{status} Client Error", response=response)


@pytest.mark.parametrize(
    "exc, expected",
    [
        (
            _http_error(403),
            [
                "HTTP 403",
                "not accepted the competition's rules",
                "https://www.kaggle.com/competitions/data-science-bowl-2018/rules",
                "cannot accept them for you",
            ],
        ),
        (_http_error(401), ["HTTP 401", "https://www.kaggle.com/settings/api", "KAGGLE_KEY"]),
        (_http_error(404), ["HTTP 404", "dataset.kaggle.competition"]),
        (
            SystemExit(1),
            [
                "no credentials it could use",
                "KAGGLE_USERNAME",
                "KAGGLE_API_TOKEN",
                "~/.kaggle/access_token",
                "kaggle auth login",
            ],
        ),
        (
            requests.exceptions.ConnectionError("Failed to resolve 'api.kaggle.com'"),
            ["could not reach Kaggle", "no internet access", "Failed to resolve"],
        ),
        (ConnectionResetError(104, "Connection reset by peer"), ["could not reach Kaggle"]),
        (RuntimeError("something new"), ["RuntimeError: something new"]),
    ],
    ids=["403", "401", "404", "SystemExit", "requests-ConnectionError", "reset", "other"],
)
def test_explain_kaggle_failure(exc, expected):
    error = explain_kaggle_failure(exc, "data-science-bowl-2018")
    assert isinstance(error, DownloadError)
    message = str(error)
    for needed in expected + [
        "Kaggle download of competition 'data-science-bowl-2018' failed",
        "dataset.source: bbbc038",
        "dataset.source: local",
        "dataset.local.path",
    ]:
        assert needed in message, needed


def test_kaggle_reuses_a_downloaded_zip_without_credentials(tmp_path, dsb, no_kaggle_credentials):
    dest = tmp_path / "dest"
    archive = dest / "downloads" / "data-science-bowl-2018.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(dsb.kaggle_zip.read_bytes())
    manifest = fetch_dataset(
        {"source": "kaggle", "kaggle": {"competition": "data-science-bowl-2018"}}, dest
    )
    assert manifest.source == "kaggle" and manifest.origin == "data-science-bowl-2018"
    _assert_extracted(dsb, manifest, dest)
    assert archive.read_bytes() == dsb.kaggle_zip.read_bytes()
    assert zip_problem(dest / "downloads" / "stage1_train.zip") is None


def test_kaggle_damaged_zip_is_deleted_and_downloaded_again(tmp_path, dsb, no_kaggle_credentials):
    dest = tmp_path / "dest"
    archive = dest / "downloads" / "data-science-bowl-2018.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(dsb.kaggle_zip.read_bytes()[:5000])  # an interrupted download
    # Downloading again needs credentials, which are missing here: that is the error expected.
    with pytest.raises(DownloadError, match="no Kaggle API credentials were found"):
        fetch_dataset({"source": "kaggle"}, dest)
    assert not archive.exists()


# --- bbbc038 ----------------------------------------------------------------------------------


def _bbbc038(server: Path) -> dict:
    return {"source": "bbbc038", "bbbc038": {"url": server.as_uri() + "/"}}


def test_bbbc038_fetch_then_rerun_without_server(tmp_path, dsb):
    server = tmp_path / "server"
    server.mkdir()
    for name in ("stage1_train.zip", "stage1_test.zip", "stage1_solution.csv"):
        (server / name).write_bytes((dsb.server / name).read_bytes())
    dest = tmp_path / "dest"

    manifest = fetch_dataset(_bbbc038(server), dest)
    assert manifest.source == "bbbc038" and manifest.origin == server.as_uri() + "/"
    _assert_extracted(dsb, manifest, dest)
    downloads = dest / "downloads"
    assert sorted(p.name for p in downloads.iterdir()) == [
        "stage1_solution.csv",
        "stage1_test.zip",
        "stage1_train.zip",
    ]
    stamps = {p.name: p.stat().st_mtime_ns for p in downloads.iterdir()}

    for name in list(server.iterdir()):  # the server is gone: a rerun must not need it
        name.unlink()
    (dest / "dataset.json").unlink()
    again = fetch_dataset(_bbbc038(server), dest)
    assert again == manifest
    assert {p.name: p.stat().st_mtime_ns for p in downloads.iterdir()} == stamps
    _assert_extracted(dsb, again, dest)


def _corrupt_crc(zip_bytes: bytes, member_data: bytes) -> bytes:
    """Flip one byte inside a stored member's data: the zip still opens, its CRC fails."""
    at = zip_bytes.find(member_data[100:140])
    assert at > 0
    damaged = bytearray(zip_bytes)
    damaged[at + 5] ^= 0xFF
    return bytes(damaged)


@pytest.mark.parametrize("damage", ["truncated", "crc"])
def test_bbbc038_broken_download_is_refused_and_leaves_nothing(tmp_path, dsb, damage):
    server = tmp_path / "server"
    good = (dsb.server / "stage1_train.zip").read_bytes()
    if damage == "truncated":
        broken = good[: len(good) // 2]
    else:
        stored = _write_zip(tmp_path / "stored.zip", dsb.train_members, zipfile.ZIP_STORED)
        first = next(iter(dsb.train_members.values()))
        broken = _corrupt_crc(stored.read_bytes(), first)
        assert zipfile.ZipFile(io.BytesIO(broken)).namelist()  # it opens...
    server.mkdir()
    (server / "stage1_train.zip").write_bytes(broken)
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError) as caught:
        fetch_dataset(_bbbc038(server), dest)
    message = str(caught.value)
    assert (server / "stage1_train.zip").as_uri() in message
    assert "dataset.source: local" in message
    assert "CRC" in message if damage == "crc" else "not a readable zip" in message
    assert not (dest / "downloads" / "stage1_train.zip").exists()
    assert [p.name for p in (dest / "downloads").iterdir()] == []  # no .part left either
    assert not (dest / "stage1_train").exists()
    assert not (dest / "dataset.json").exists()


def test_bbbc038_damaged_download_on_disk_is_replaced(tmp_path, dsb):
    dest = tmp_path / "dest"
    (dest / "downloads").mkdir(parents=True)
    (dest / "downloads" / "stage1_train.zip").write_bytes(b"PK\x03\x04 not really a zip")
    (dest / "downloads" / "stage1_solution.csv").write_text("<html>502 Bad Gateway</html>")
    manifest = fetch_dataset(_bbbc038(dsb.server), dest)
    _assert_extracted(dsb, manifest, dest)
    assert (dest / "downloads" / "stage1_train.zip").read_bytes() == (
        dsb.server / "stage1_train.zip"
    ).read_bytes()


def test_bbbc038_without_test_set_and_solution(tmp_path, dsb):
    server = tmp_path / "server"
    server.mkdir()
    (server / "stage1_train.zip").write_bytes((dsb.server / "stage1_train.zip").read_bytes())
    manifest = fetch_dataset(_bbbc038(server), tmp_path / "dest")
    assert manifest.n_images == N_TRAIN
    assert manifest.stage1_test is None and manifest.stage1_solution is None
    assert not (tmp_path / "dest" / "stage1_test").exists()


def test_bbbc038_unreachable_server_names_url_and_alternative(tmp_path):
    server = tmp_path / "no-such-server"
    with pytest.raises(DownloadError) as caught:
        fetch_dataset(_bbbc038(server), tmp_path / "dest")
    message = str(caught.value)
    assert server.as_uri() + "/stage1_train.zip" in message
    assert "dataset.source: local" in message and "dataset.bbbc038.url" in message
    assert not (tmp_path / "dest" / "downloads" / "stage1_train.zip").exists()


# --- local ------------------------------------------------------------------------------------


def test_local_kaggle_nested_zip(tmp_path, dsb):
    dest = tmp_path / "dest"
    manifest = fetch_dataset({"source": "local", "local": {"path": str(dsb.kaggle_zip)}}, dest)
    assert manifest.source == "local" and manifest.origin == str(dsb.kaggle_zip)
    _assert_extracted(dsb, manifest, dest)
    assert sorted(p.name for p in (dest / "downloads").iterdir()) == [
        "stage1_solution.csv.zip",
        "stage1_test.zip",
        "stage1_train.zip",
    ]


@pytest.mark.parametrize("prefix", ["", "stage1_train/"])
def test_local_stage1_train_zip(tmp_path, dsb, prefix):
    archive = _write_zip(
        tmp_path / "in" / "stage1_train.zip",
        {prefix + name: data for name, data in dsb.train_members.items()},
    )
    dest = tmp_path / "dest"
    manifest = fetch_dataset({"source": "local", "local": {"path": str(archive)}}, dest)
    assert manifest.origin == str(archive)
    assert manifest.n_images == N_TRAIN
    assert manifest.stage1_test is None and manifest.stage1_solution is None
    assert _tree(dest / "stage1_train") == dsb.train_members


def test_local_extracted_root_is_used_in_place(tmp_path, dsb):
    root = tmp_path / "dsb2018"
    for folder, members in (("stage1_train", dsb.train_members), ("stage1_test", dsb.test_members)):
        for name, data in members.items():
            (root / folder / name).parent.mkdir(parents=True, exist_ok=True)
            (root / folder / name).write_bytes(data)
    (root / "stage1_solution.csv").write_text(dsb.solution)
    dest = tmp_path / "dest"
    manifest = fetch_dataset({"source": "local", "local": {"path": str(root)}}, dest)
    assert manifest == Manifest(
        "local",
        str(root),
        str(root / "stage1_train"),
        N_TRAIN,
        str(root / "stage1_test"),
        str(root / "stage1_solution.csv"),
    )
    assert sorted(p.name for p in dest.iterdir()) == ["dataset.json"]  # nothing copied


def test_local_shared_folder_in_place(tmp_path):
    if not (SHARED_DSB / "stage1_train").is_dir():
        pytest.skip(f"real DSB2018 images not found at {SHARED_DSB}")
    expected = sum(1 for p in (SHARED_DSB / "stage1_train").iterdir() if p.is_dir())
    assert expected == 664  # shared/data/PROVENANCE.md
    for path in (SHARED_DSB, SHARED_DSB / "stage1_train"):  # the root, or stage1_train itself
        dest = tmp_path / path.name
        manifest = fetch_dataset({"source": "local", "local": {"path": str(path)}}, dest)
        assert manifest.stage1_train == str(SHARED_DSB / "stage1_train")
        assert manifest.n_images == expected
        assert manifest.stage1_test is None and manifest.stage1_solution is None
        assert sorted(p.name for p in dest.iterdir()) == ["dataset.json"]


@pytest.mark.parametrize(
    "kind",
    ["missing", "empty setting", "text file", "folder of other things", "zip of other things"],
)
def test_local_bad_path_names_it(tmp_path, kind):
    path = tmp_path / "data"
    if kind == "text file":
        path.write_text("hello")
    elif kind == "folder of other things":
        (path / "notes").mkdir(parents=True)
    elif kind == "zip of other things":
        path = _write_zip(tmp_path / "data.zip", {"readme.txt": b"hi"})
    setting = "" if kind == "empty setting" else str(path)
    with pytest.raises(ConfigError) as caught:
        fetch_dataset({"source": "local", "local": {"path": setting}}, tmp_path / "dest")
    message = str(caught.value)
    assert "dataset.local.path" in message
    if kind != "empty setting":
        assert str(path) in message
    assert not (tmp_path / "dest" / "dataset.json").exists()


@pytest.mark.parametrize("damage", ["truncated", "crc"])
def test_local_damaged_zip_is_the_users_to_replace_not_to_delete(tmp_path, dsb, damage):
    """The archive is the user's own file: the message says to replace it, never to delete it."""
    good = _write_zip(tmp_path / "good.zip", dsb.train_members, zipfile.ZIP_STORED).read_bytes()
    archive = tmp_path / "stage1_train.zip"
    if damage == "truncated":
        archive.write_bytes(good[: len(good) // 2])
    else:
        first = next(iter(dsb.train_members.values()))
        archive.write_bytes(_corrupt_crc(good, first))
    with pytest.raises(DownloadError) as caught:
        fetch_dataset({"source": "local", "local": {"path": str(archive)}}, tmp_path / "dest")
    message = str(caught.value)
    assert str(archive) in message and "Replace it with a complete copy" in message
    assert "delete" not in message.lower()
    assert archive.read_bytes()[:4] == good[:4]  # the user's file is left as it was


def test_local_stage1_test_zip_is_not_a_training_set(tmp_path, dsb):
    archive = _write_zip(tmp_path / "stage1_test.zip", dsb.test_members)
    with pytest.raises(DownloadError, match="no masks"):
        fetch_dataset({"source": "local", "local": {"path": str(archive)}}, tmp_path / "dest")
    assert not (tmp_path / "dest" / "stage1_train").exists()


@pytest.mark.parametrize(
    "evil",
    ["../evil.png", "/tmp/nucleiseg-evil.png", "a/../../evil.png", "C:/evil.png", "..\\evil.png"],
)
def test_zip_slip_member_is_refused(tmp_path, dsb, evil):
    archive = _write_zip(
        tmp_path / "in" / "stage1_train.zip", {**dsb.train_members, evil: b"gotcha"}
    )
    dest = tmp_path / "work" / "dest"
    old = dest / "stage1_train" / "old-sample" / "images" / "old-sample.png"
    _write(old, "from an earlier run")
    with pytest.raises(DownloadError) as caught:
        fetch_dataset({"source": "local", "local": {"path": str(archive)}}, dest)
    assert repr(evil) in str(caught.value) and "outside the target folder" in str(caught.value)
    assert old.read_text() == "from an earlier run"  # the earlier extraction is untouched
    assert _tree(dest / "stage1_train") == {
        "old-sample/images/old-sample.png": b"from an earlier run"
    }
    assert not (tmp_path / "work" / "evil.png").exists() and not (tmp_path / "evil.png").exists()
    assert [p.name for p in dest.iterdir()] == ["stage1_train"]


@pytest.mark.parametrize(
    "name, safe",
    [
        ("abc/images/abc.png", True),
        ("stage1_train/abc/masks/m.png", True),
        ("abc/", True),
        ("../x", False),
        ("/x", False),
        ("a/../../x", False),
        ("D:\\x", False),
        ("a\\..\\..\\x", False),
    ],
)
def test_safe_member_path(name, safe):
    if safe:
        assert ".." not in safe_member_path(name).parts
    else:
        with pytest.raises(DownloadError, match="unsafe member"):
            safe_member_path(name)


# --- through the real workflow ---------------------------------------------------------------


@pytest.mark.slow
def test_workflow_downloads_from_a_nested_kaggle_zip(tmp_path, dsb):
    from conftest import run_snakemake

    config = {"dataset": {"source": "local", "local": {"path": str(dsb.kaggle_zip)}},
              "split": {"fractions": {"train": 0.34, "val": 0.33, "test": 0.33}}}
    run_snakemake(tmp_path / "work", config, "resources/dsb2018/dataset.json")
    manifest = Manifest.read(tmp_path / "work" / "resources" / "dsb2018" / "dataset.json")
    assert manifest.n_images == N_TRAIN and manifest.stage1_test and manifest.stage1_solution
    assert "extracted" in (tmp_path / "work" / "logs" / "download_dataset.log").read_text()


@pytest.mark.slow
def test_workflow_without_kaggle_credentials_says_what_to_do(tmp_path, monkeypatch):
    from conftest import run_snakemake

    for name in [n for n in os.environ if n.startswith("KAGGLE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    result = run_snakemake(tmp_path / "work", {"dataset": {"source": "kaggle"}}, check=False)
    assert result.returncode != 0
    screen = result.stdout + result.stderr
    assert "nucleiseg error:" in screen  # the one clear line reaches the terminal, not only the log
    for needed in ("KAGGLE_API_TOKEN", "dataset.source: bbbc038", "dataset.local.path"):
        assert needed in screen
    assert not (tmp_path / "work" / "resources" / "dsb2018" / "dataset.json").exists()
