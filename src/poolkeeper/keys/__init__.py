"""Keys and secrets: where the master secret comes from and how accounts are derived.

Secret values live in types that refuse to print themselves, so a stray log line or
exception cannot leak a mnemonic or a seed.
"""
