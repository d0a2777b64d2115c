from __future__ import annotations

import pytest

from core.secrets import (
    SecretBox,
    SecretDecryptionError,
    SecretKeyError,
    generate_key,
    mask_token,
)
from core.tenant_id import InvalidTenantIdError

TOKEN = "1000001:test-token-of-the-first-bot-xyz"


def test_round_trip_and_tenant_binding():
    box = SecretBox(generate_key())
    ciphertext = box.encrypt("client_001", TOKEN)
    assert TOKEN not in ciphertext
    assert box.decrypt("client_001", ciphertext) == TOKEN
    # The same ciphertext copied into another tenant's row does not open there.
    with pytest.raises(SecretDecryptionError, match="belongs to another tenant"):
        box.decrypt("client_002", ciphertext)


def test_rotation_keeps_old_secrets_readable_and_moves_them_to_the_new_key():
    old, new = generate_key(), generate_key()
    before = SecretBox(old).encrypt("client_007", TOKEN)
    rotating = SecretBox(f"{new},{old}")  # new primary, old still decrypts
    assert rotating.decrypt("client_007", before) == TOKEN
    after = rotating.rotate("client_007", before)
    assert after != before
    assert SecretBox(new).decrypt("client_007", after) == TOKEN  # old key can now be retired
    with pytest.raises(SecretDecryptionError):
        SecretBox(new).decrypt("client_007", before)


def test_wrong_key_gives_a_clear_error_without_the_secret():
    ciphertext = SecretBox(generate_key()).encrypt("client_001", TOKEN)
    with pytest.raises(SecretDecryptionError, match="not in ENCRYPTION_KEYS") as info:
        SecretBox(generate_key()).decrypt("client_001", ciphertext)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    "raw",
    ["", " , ", "not-a-key", "c2hvcnQ=", f"{generate_key()},oops"],
    ids=[
        "empty",
        "only-commas",
        "not-base64",
        "too-short",
        "a-key-then-junk",
    ],  # same in every worker
)
def test_malformed_keys_are_named(raw):
    with pytest.raises(SecretKeyError, match="ENCRYPTION_KEYS"):
        SecretBox(raw)


def test_bad_inputs():
    box = SecretBox(generate_key())
    with pytest.raises(InvalidTenantIdError):
        box.encrypt("../etc", TOKEN)
    with pytest.raises(ValueError, match="empty secret"):
        box.encrypt("client_001", "")
    with pytest.raises(SecretDecryptionError):
        box.decrypt("client_001", "garbage")


def test_mask_token_keeps_only_what_an_operator_may_see():
    assert mask_token(TOKEN) == "1000001:***xyz"
    assert "test-token" not in mask_token(TOKEN)
