from __future__ import annotations

import json
import os
import pickle

import pytest

from distillguard.errors import ConfigError, KeyFileError
from distillguard.watermark.keys import KeyRing, SecretKey, generate_key, load_key_file, write_key_file


def test_generate_key_is_random_32_bytes() -> None:
    a, b = generate_key(), generate_key()
    assert len(a) == 32 and a != b


def test_key_id_and_repr_hide_material() -> None:
    k = SecretKey(bytes(range(32)))
    assert len(k.key_id) == 16 and k.key_id in repr(k) and k.key_id in str(k)
    assert k.hex() not in repr(k) and bytes(range(32)).hex()[:16] not in str(k)
    assert pickle.loads(pickle.dumps(k)) == k  # worker processes need it
    with pytest.raises(ConfigError, match="32 bytes"):
        SecretKey(b"x" * 31)


def test_subkeys_are_domain_separated() -> None:
    k = SecretKey(bytes(32))
    assert k.derive("context") != k.derive("kgw/green")
    assert k.derive("context") == SecretKey(bytes(32)).derive("context")
    assert len({k.sip(p).k0 for p in ("a", "b", "c")}) == 3


def test_write_and_load_round_trip(tmp_path) -> None:
    path = tmp_path / "wm.key"
    key = write_key_file(path, scheme="kgw")
    assert os.stat(path).st_mode & 0o777 == 0o600
    doc = json.loads(path.read_text())
    assert doc["key_id"] == key.key_id and doc["scheme"] == "kgw"
    assert load_key_file(path) == key
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path)
    new = write_key_file(path, force=True)
    assert new != key and load_key_file(path) == new


@pytest.mark.parametrize(
    ("content", "mode", "match"),
    [
        (None, 0o600, "does not exist"),
        ("{not json", 0o600, "not valid UTF-8 JSON"),
        ('{"format": "other"}', 0o600, "not a distillguard key file"),
        ('{"format": "distillguard-key", "version": 1, "key": "abcd"}', 0o600, "malformed 'key'"),
        ("GOOD", 0o644, "accessible by group or others"),
        ("GOOD", 0o640, "chmod 600"),
        ("BADID", 0o600, "does not match"),
    ],
)
def test_load_rejects_bad_files(tmp_path, content, mode, match) -> None:
    path = tmp_path / "k.json"
    secret = "ab" * 32
    if content is not None:
        if content in ("GOOD", "BADID"):
            kid = SecretKey(bytes.fromhex(secret)).key_id if content == "GOOD" else "0" * 16
            content = json.dumps({"format": "distillguard-key", "version": 1, "key_id": kid, "key": secret})
        path.write_text(content)
        os.chmod(path, mode)
    with pytest.raises(KeyFileError, match=match) as info:
        load_key_file(path)
    assert str(path) in str(info.value) and secret not in str(info.value)


def test_keyring_rotation_basics() -> None:
    a, b = SecretKey(bytes(32)), SecretKey(bytes([1] * 32))
    ring = KeyRing([a, b])
    assert ring.primary == a and ring.key_ids == (a.key_id, b.key_id) and ring.get(b.key_id) == b
    assert a.hex() not in repr(ring)
    with pytest.raises(ConfigError):
        KeyRing([a, a])
    with pytest.raises(ConfigError):
        KeyRing([])


def test_load_or_create_key_file_creates_once_then_loads(tmp_path) -> None:
    import stat

    from distillguard.watermark.keys import load_or_create_key_file

    path = tmp_path / "sub" / "wm.key"
    first = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key_file(path) == first
    path.write_text("not a key")
    import pytest

    from distillguard.watermark.keys import KeyFileError

    with pytest.raises(KeyFileError):
        load_or_create_key_file(path)  # a broken key is an error, never silently replaced
