"""Keys and secrets: where the master secret comes from and how accounts are derived.

Secret values live in types that refuse to print themselves, so a stray log line or
exception cannot leak a mnemonic or a seed. See docs/accounts.md for the derivation
scheme and the rules for secret sources.
"""

from poolkeeper.keys._derive import (
    ROOT_JUNCTION,
    DerivedKey,
    derivation_junctions,
    derivation_label_problem,
    derivation_path,
    derive_address,
    derive_key,
    derive_keys,
    junction_chain_code,
)
from poolkeeper.keys._generate import (
    AddressChange,
    GenerateResult,
    account_keys,
    generate_addresses,
    inventory_files,
)
from poolkeeper.keys._own import OwnKeys, own_keys
from poolkeeper.keys._redact import (
    MASK,
    RedactingFilter,
    install_log_redaction,
    redact,
    register_secret,
)
from poolkeeper.keys._ring import KeyRing
from poolkeeper.keys._secret import Mnemonic, Secret
from poolkeeper.keys._sources import (
    KEYRING_USERNAME,
    describe_secret_source,
    load_account_key,
    load_master_secret,
    load_relay_key,
    secret_from_env,
    secret_from_file,
    secret_from_keyring,
)
from poolkeeper.keys._suri import key_from_secret

__all__ = [
    "KEYRING_USERNAME",
    "MASK",
    "ROOT_JUNCTION",
    "AddressChange",
    "DerivedKey",
    "GenerateResult",
    "KeyRing",
    "Mnemonic",
    "OwnKeys",
    "RedactingFilter",
    "Secret",
    "account_keys",
    "derivation_junctions",
    "derivation_label_problem",
    "derivation_path",
    "derive_address",
    "derive_key",
    "derive_keys",
    "describe_secret_source",
    "generate_addresses",
    "install_log_redaction",
    "inventory_files",
    "junction_chain_code",
    "key_from_secret",
    "load_account_key",
    "load_master_secret",
    "load_relay_key",
    "own_keys",
    "redact",
    "register_secret",
    "secret_from_env",
    "secret_from_file",
    "secret_from_keyring",
]
