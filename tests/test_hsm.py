"""The master key in a PKCS#11 token (SoftHSM2 here, an HSM in production): generated inside it
as sensitive and never extractable, the keysets wrapped and unwrapped by the token. A file key
moves into the token with `keys rewrap`; the token's key rotates the same way; a wrong PIN or a
missing key is a clear error that reveals nothing."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rempart.patients.models import Patient
from rempart.vault import crypto, keystore

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "7431-rempart"
pytestmark = pytest.mark.skipif(not Path(MODULE).exists(), reason="SoftHSM2 is not installed "
                                "(scripts/test installs it)")  # fmt: skip


@pytest.fixture(scope="session")
def token_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SoftHSM2 configuration for the run (the library reads it once per process), with the
    tokens the tests use."""
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")  # fmt: skip
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in ("rempart-move", "rempart-init"):
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,  # noqa: S603, S607
                        "--pin", PIN, "--so-pin", "so-" + PIN],
                       check=True, capture_output=True)  # fmt: skip
    return folder


@pytest.fixture
def hsm(token_dir: Path, private_vault: Path, settings: object) -> Iterator[object]:
    settings.REMPART_PKCS11_MODULE = MODULE  # type: ignore[attr-defined]
    settings.REMPART_PKCS11_PIN = PIN  # type: ignore[attr-defined]
    settings.REMPART_PKCS11_KEY = "rempart-master"  # type: ignore[attr-defined]
    yield settings
    settings.REMPART_PKCS11_MODULE = ""  # type: ignore[attr-defined]
    keystore.reset_vault()


def _first_name() -> str | None:
    keystore.reset_vault()
    return Patient.objects.order_by("id").first().birth_name  # type: ignore[union-attr]


def test_a_file_master_key_moves_into_the_token_and_the_key_never_leaves_it(group, hsm):
    import pkcs11
    from pkcs11 import Attribute

    hsm.REMPART_PKCS11_TOKEN = "rempart-move"  # type: ignore[attr-defined]
    hsm.REMPART_PKCS11_MODULE = ""  # type: ignore[attr-defined]
    expected = _first_name()  # with the file key, before the move
    hsm.REMPART_PKCS11_MODULE = MODULE  # type: ignore[attr-defined]
    master_file = Path(hsm.REMPART_MASTER_KEY_PATH)  # type: ignore[attr-defined]
    old = crypto.open_master_key(master_file.read_text(encoding="utf-8"))
    token = keystore.hsm_master()
    assert token is not None and not token.exists()
    token.generate()
    moved = keystore.rewrap_keysets(old)
    assert set(crypto.ALL_CATEGORIES) <= set(moved)
    master_file.unlink()  # the file key is gone: only the token opens the keysets now
    assert _first_name() == expected
    keyset = (Path(hsm.REMPART_KEYS_DIR) / "identity.json").read_text()  # type: ignore[attr-defined]
    with pytest.raises(crypto.MasterKeyError):
        crypto.unwrap_keyset(keyset, old, "identity")
    # The key's value cannot be read out of the token, nor wrapped out of it.
    lib = pkcs11.lib(MODULE)
    with lib.get_token(token_label="rempart-move").open(user_pin=PIN) as session:
        key = session.get_key(label="rempart-master")
        assert key[Attribute.EXTRACTABLE] is False and key[Attribute.SENSITIVE] is True
        with pytest.raises(pkcs11.PKCS11Error):
            key[Attribute.VALUE]  # reading it is the attack
    # A wrong PIN: a clear error naming the token, no key, nothing else.
    hsm.REMPART_PKCS11_PIN = "0000"  # type: ignore[attr-defined]
    with pytest.raises(crypto.MasterKeyError, match="cannot be opened"):
        _first_name()
    hsm.REMPART_PKCS11_PIN = PIN  # type: ignore[attr-defined]
    # Rotation inside the token: a new key, the keysets rewrapped, the old key no longer needed.
    keystore.hsm_master("rempart-master-2").generate()  # type: ignore[union-attr]
    hsm.REMPART_PKCS11_KEY = "rempart-master-2"  # type: ignore[attr-defined]
    keystore.rewrap_keysets(keystore.hsm_master("rempart-master"))
    with lib.get_token(token_label="rempart-move").open(rw=True, user_pin=PIN) as session:
        session.get_key(label="rempart-master").destroy()
    assert _first_name() == expected
    # A wrong old key changes nothing: every keyset is opened before any is written.
    keys_dir = Path(hsm.REMPART_KEYS_DIR)  # type: ignore[attr-defined]
    before = {p.name: p.read_text() for p in keys_dir.glob("*.json")}
    with pytest.raises(crypto.MasterKeyError):
        keystore.rewrap_keysets(crypto.open_master_key(crypto.new_master_key()))
    assert {p.name: p.read_text() for p in keys_dir.glob("*.json")} == before
    assert _first_name() == expected


def test_keys_init_creates_the_master_key_inside_the_token(hsm, tmp_path):
    hsm.REMPART_PKCS11_TOKEN = "rempart-init"  # type: ignore[attr-defined]
    hsm.REMPART_KEYS_DIR = tmp_path / "keys"  # type: ignore[attr-defined]
    hsm.REMPART_MASTER_KEY_PATH = tmp_path / "master.key"  # type: ignore[attr-defined]
    made = keystore.init_keys(create_master=True)
    assert "pkcs11:rempart-init/rempart-master" in made
    assert not (tmp_path / "master.key").exists()  # no key on the disk
    handle = keystore.read_keyset("identity")
    assert handle is not None
    # Keysets exist and the token loses its key: init refuses to make one that cannot open them.
    import pkcs11

    with pkcs11.lib(MODULE).get_token(token_label="rempart-init").open(rw=True, user_pin=PIN) as s:
        s.get_key(label="rempart-master").destroy()
    with pytest.raises(crypto.MasterKeyError, match="refusing"):
        keystore.init_keys(create_master=True)
