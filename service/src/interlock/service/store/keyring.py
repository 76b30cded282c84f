"""The service's own encryption keys: the newest writes, every one of them reads.

Secrets (connections, and channels, which are ``apprise`` connections) are Fernet
tokens. The keys come from the settings: ``secret_key`` (the newest: every write uses
it) and ``previous_secret_keys`` (still accepted for reading). That is
``cryptography``'s :class:`~cryptography.fernet.MultiFernet`, and what makes rotating
the key possible without downtime:

1. add the new key to ``previous_secret_keys`` on every replica (each can read what
   the others will write with it), restarting them one by one;
2. make it ``secret_key`` and move the old one to ``previous_secret_keys``, one by one;
3. ``interlock connections reencrypt`` (``POST /api/connections/reencrypt``) rewrites
   every stored secret with the newest key;
4. drop the old key.

No message here ever holds a key or a secret.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from interlock.service.store.errors import StoreError

__all__ = ["Key", "Keyring", "NoKey", "WrongKey"]

Key = str | bytes | SecretStr


class NoKey(StoreError):
    """No secret key is configured, so no secret can be written or read."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what}: no secret key is configured to encrypt secrets; set "
            "INTERLOCK_SECRET_KEY (or secret_key in config/interlock.toml)"
        )


class WrongKey(StoreError):
    """A stored secret was encrypted under none of the configured keys."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} cannot be decrypted with the configured secret keys; it was stored "
            "under another key: add that key to previous_secret_keys "
            "(INTERLOCK_PREVIOUS_SECRET_KEYS), or set the secret again"
        )


class Keyring:
    """Encrypts with the newest key, decrypts with any.

    Args:
        keys: Newest first; an empty sequence: secrets cannot be stored.

    Raises:
        StoreError: a key is not a Fernet key (the message does not repeat it).
    """

    def __init__(self, keys: Sequence[Key]) -> None:
        self._fernets = [_fernet(key, position) for position, key in enumerate(keys, 1)]
        self._multi = MultiFernet(self._fernets) if self._fernets else None

    def __repr__(self) -> str:
        return f"Keyring({len(self._fernets)} keys)"

    @property
    def size(self) -> int:
        """How many keys it holds."""
        return len(self._fernets)

    def encrypt(self, what: str, data: bytes) -> bytes:
        """``data`` encrypted with the newest key; ``what`` names it in errors.

        Raises:
            NoKey: there is no key.
        """
        return self._need(what).encrypt(data)

    def decrypt(self, what: str, token: bytes) -> bytes:
        """The clear text of ``token``, encrypted under any of the keys.

        Raises:
            NoKey: there is no key.
            WrongKey: none of the keys encrypted it.
        """
        try:
            return self._need(what).decrypt(token)
        except InvalidToken:
            raise WrongKey(what) from None

    def rotate(self, what: str, token: bytes) -> bytes | None:
        """``token`` encrypted with the newest key; ``None`` if it is already.

        Raises:
            NoKey: there is no key.
            WrongKey: none of the keys encrypted it.
        """
        multi = self._need(what)
        try:
            self._fernets[0].decrypt(token)
        except InvalidToken:
            pass
        else:
            return None
        try:
            return multi.rotate(token)
        except InvalidToken:
            raise WrongKey(what) from None

    def _need(self, what: str) -> MultiFernet:
        if self._multi is None:
            raise NoKey(what)
        return self._multi


def _fernet(key: Key, position: int) -> Fernet:
    if isinstance(key, SecretStr):
        key = key.get_secret_value()
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        # The message never repeats the key.
        which = "the secret key" if position == 1 else f"previous secret key #{position - 1}"
        raise StoreError(
            f"{which} is not a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None
