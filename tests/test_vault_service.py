"""KeyService end to end: keys sealed in the store, a passphrase added and removed without loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from computehub_tui.clock import ManualClock
from computehub_tui.engine.keys import KeyService
from computehub_tui.vault import PassphraseRequired, Vault, VaultError


async def test_passphrase_can_be_added_changed_and_removed_without_losing_keys(tmp_path: Path) -> None:
    async with KeyService(tmp_path, ManualClock()) as keys:
        await keys.bind("vast", "vk_live_aaaaaaaaaaaaaaaa1234")
        assert await keys.set_passphrase("correct horse battery") in ("argon2id", "scrypt")
    assert Vault.is_passphrase_protected(tmp_path)

    async with KeyService(tmp_path, ManualClock()) as locked:
        with pytest.raises(PassphraseRequired):
            await locked.bindings()
    async with KeyService(tmp_path, ManualClock(), passphrase="wrong passphrase") as wrong:
        with pytest.raises(VaultError):
            await wrong.bindings()
    async with KeyService(tmp_path, ManualClock(), passphrase="correct horse battery") as unlocked:
        assert (await unlocked.stored_key("vast")).reveal() == "vk_live_aaaaaaaaaaaaaaaa1234"  # type: ignore[union-attr]
        assert await unlocked.set_passphrase(None) is None
    assert not Vault.is_passphrase_protected(tmp_path)
    async with KeyService(tmp_path, ManualClock()) as plain:
        binding = next(b for b in await plain.bindings() if b.provider == "vast")
    assert binding.source == "vault" and binding.masked.endswith("1234")
