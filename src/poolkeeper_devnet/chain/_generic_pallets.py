"""The engine's own pallets: System, Timestamp, Balances, Proxy state, ParachainInfo.

They follow the same ``Pallet`` contract as the Phala pallets, with two engine-only
liberties: a storage item name may be qualified (``"System.Account"``) to write another
pallet's storage, and Balances keeps immutable account records so that its rollback
snapshot is a cheap dict copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, cast

from poolkeeper_devnet.chain.pallets.base import (
    AccountHex,
    BadOrigin,
    BlockContext,
    DispatchError,
    Pallet,
    StorageChange,
    TokenError,
)

FLAGS_NEW_LOGIC = 1 << 127
"""AccountData.flags bit set on every account of the current Balances pallet."""


def normalize_account(value: Any) -> AccountHex:
    """An AccountId32 from scalecodec's value of an AccountId or MultiAddress."""
    if isinstance(value, dict) and len(value) == 1:
        variant, inner = next(iter(value.items()))
        if variant == "Id":
            return normalize_account(inner)
        raise DispatchError("System", "CannotLookup")
    if isinstance(value, bytes) and len(value) == 32:
        return "0x" + value.hex()
    if isinstance(value, str) and value.startswith("0x") and len(value) == 66:
        return value.lower()
    raise DispatchError("System", "CannotLookup")


@dataclass(frozen=True)
class AccountRecord:
    nonce: int = 0
    free: int = 0
    reserved: int = 0
    providers: int = 0
    consumers: int = 0

    def value(self) -> dict[str, Any]:
        return {
            "nonce": self.nonce,
            "consumers": self.consumers,
            "providers": self.providers,
            "sufficients": 0,
            "data": {
                "free": self.free,
                "reserved": self.reserved,
                "frozen": 0,
                "flags": FLAGS_NEW_LOGIC,
            },
        }


class System(Pallet):
    name: ClassVar[str] = "System"

    def dispatch(
        self, ctx: BlockContext, signer: AccountHex | None, call: str, args: Mapping[str, Any]
    ) -> None:
        if call == "remark":
            return
        if call == "remark_with_event":
            if signer is None:
                raise BadOrigin()
            from poolkeeper_devnet.codec import blake2_256, unhex

            remark = args.get("remark", "0x")
            data = unhex(remark) if isinstance(remark, str) and remark.startswith("0x") else b""
            ctx.emit("System", "Remarked", sender=signer, hash="0x" + blake2_256(data).hex())
            return
        raise BadOrigin()


class Timestamp(Pallet):
    """``Timestamp.Now``, set by the engine when each block starts (an inherent, not a call)."""

    name: ClassVar[str] = "Timestamp"

    def __init__(self) -> None:
        super().__init__()
        self.now_ms = 0

    def set_now(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.record_change("Now", (), now_ms)

    def dispatch(
        self, ctx: BlockContext, signer: AccountHex | None, call: str, args: Mapping[str, Any]
    ) -> None:
        raise BadOrigin()


class ParachainInfo(Pallet):
    name: ClassVar[str] = "ParachainInfo"

    def __init__(self) -> None:
        super().__init__()
        self.parachain_id = 2035

    def genesis(self, config: Mapping[str, Any]) -> None:
        self.parachain_id = int(config.get("parachain_id", self.parachain_id))
        self.record_change("ParachainId", (), self.parachain_id)

    def dispatch(
        self, ctx: BlockContext, signer: AccountHex | None, call: str, args: Mapping[str, Any]
    ) -> None:
        raise BadOrigin()


class Balances(Pallet):
    """Free and reserved PHA per account, and the account nonce (System.Account).

    Transfers fail as the fungible-based pallet_balances of Khala 1251 does
    (``fungible::Mutate::transfer``): ``Token.FundsUnavailable`` above the free balance,
    ``Token.NotExpendable`` when a keep-alive transfer would leave less than the existential
    deposit, ``Token.Frozen`` when an account holding a reserve (a consumer reference) would
    drop below it, ``Token.BelowMinimum`` when the destination would end below it. The
    Currency-trait paths keep their module errors: ``withdraw`` (fees) ``InsufficientBalance``
    / ``Expendability``, ``reserve`` (proxy deposits) ``InsufficientBalance``. Served a
    metadata of the older pallet (``KeepAlive`` instead of ``Expendability``), transfers
    report that pallet's module errors instead (``fungible_transfers = False``).
    """

    name: ClassVar[str] = "Balances"

    def __init__(self, existential_deposit: int = 10_000_000_000) -> None:
        super().__init__()
        self.existential_deposit = existential_deposit
        self.accounts: dict[AccountHex, AccountRecord] = {}
        self.total_issuance = 0
        self.keep_alive_error = "Expendability"
        self.fungible_transfers = True

    # ---- state ---------------------------------------------------------------------
    def account(self, who: AccountHex) -> AccountRecord:
        return self.accounts.get(who) or AccountRecord()

    def _put(self, who: AccountHex, record: AccountRecord) -> None:
        if record.free == 0 and record.reserved == 0 and record.nonce == 0 and who in self.accounts:
            del self.accounts[who]
            self.record_change("System.Account", (who,), None)
            return
        self.accounts[who] = record
        self.record_change("System.Account", (who,), record.value())

    def _set_issuance(self, value: int) -> None:
        self.total_issuance = value
        self.record_change("TotalIssuance", (), value)

    def genesis(self, config: Mapping[str, Any]) -> None:
        for who, amount in (config.get("balances") or {}).items():
            self.endow(normalize_account(who), int(amount))

    def endow(self, who: AccountHex, amount: int) -> None:
        record = self.account(who)
        self._put(who, replace(record, free=record.free + amount, providers=1))
        self._set_issuance(self.total_issuance + amount)

    def snapshot(self) -> object:
        return (dict(self.accounts), dict(self._pending_changes), self.total_issuance)

    def restore(self, snapshot: object) -> None:
        saved = cast(tuple[dict[AccountHex, AccountRecord], dict[Any, Any], int], snapshot)
        self.accounts = dict(saved[0])
        self._pending_changes = dict(saved[1])
        self.total_issuance = saved[2]

    # ---- the BalancesApi other pallets use ------------------------------------------
    def free(self, account: AccountHex) -> int:
        return self.account(account).free

    def nonce(self, account: AccountHex) -> int:
        return self.account(account).nonce

    def bump_nonce(self, account: AccountHex) -> None:
        record = self.account(account)
        self._put(account, replace(record, nonce=record.nonce + 1))

    def withdraw(self, account: AccountHex, amount: int) -> None:
        """Take ``amount`` out of the free balance, keeping the account alive."""
        record = self.account(account)
        if record.free < amount:
            raise DispatchError("Balances", "InsufficientBalance")
        if record.free - amount < self.existential_deposit and record.free != amount:
            raise DispatchError("Balances", self.keep_alive_error)
        self._put(account, replace(record, free=record.free - amount))
        self._set_issuance(self.total_issuance - amount)

    def deposit(self, account: AccountHex, amount: int) -> None:
        record = self.account(account)
        if record.free + amount < self.existential_deposit and record.providers == 0:
            raise DispatchError("Balances", "ExistentialDeposit")
        self._put(account, replace(record, free=record.free + amount, providers=1))
        self._set_issuance(self.total_issuance + amount)

    def transfer(self, src: AccountHex, dst: AccountHex, amount: int, keep_alive: bool) -> None:
        """Move free balance; without ``keep_alive`` a source left below ED is reaped."""
        source = self.account(src)
        target = self.account(dst)
        if self.fungible_transfers:
            self._check_fungible_transfer(source, target, amount, keep_alive)
        else:
            self._check_currency_transfer(source, target, amount, keep_alive, src == dst)
        if src == dst or amount == 0:
            return
        remaining = source.free - amount
        if remaining < self.existential_deposit and source.reserved == 0:
            self._set_issuance(self.total_issuance - remaining)
            self.accounts.pop(src, None)
            self.record_change("System.Account", (src,), None)
        else:
            self._put(src, replace(source, free=remaining))
        self._put(dst, replace(target, free=target.free + amount, providers=1))

    def _check_fungible_transfer(
        self, source: AccountRecord, target: AccountRecord, amount: int, keep_alive: bool
    ) -> None:
        """``can_withdraw(source).into_result(keep_alive)``, then ``can_deposit(target)``."""
        if amount == 0:
            return
        if source.free < amount:
            raise TokenError("FundsUnavailable")
        if source.free - amount < self.existential_deposit:
            if source.consumers > 0:
                # the provider reference is needed: the ED is not part of the liquid balance
                raise TokenError("Frozen")
            if keep_alive:
                raise TokenError("NotExpendable")
        if target.free + amount < self.existential_deposit:
            raise TokenError("BelowMinimum")

    def _check_currency_transfer(
        self,
        source: AccountRecord,
        target: AccountRecord,
        amount: int,
        keep_alive: bool,
        to_self: bool,
    ) -> None:
        """The module errors of pallet_balances before its fungible rewrite."""
        if source.free < amount:
            raise DispatchError("Balances", "InsufficientBalance")
        if source.free - amount < self.existential_deposit and keep_alive:
            raise DispatchError("Balances", self.keep_alive_error)
        if (
            not to_self
            and target.providers == 0
            and target.free + amount < self.existential_deposit
        ):
            raise DispatchError("Balances", "ExistentialDeposit")

    def reserve(self, account: AccountHex, amount: int) -> None:
        """Currency::reserve: a reserve holds a consumer reference on the account."""
        record = self.account(account)
        if record.free - amount < self.existential_deposit:
            raise DispatchError("Balances", "InsufficientBalance")
        reserved = record.reserved + amount
        self._put(
            account,
            replace(
                record, free=record.free - amount, reserved=reserved, consumers=int(reserved > 0)
            ),
        )

    def unreserve(self, account: AccountHex, amount: int) -> None:
        record = self.account(account)
        amount = min(amount, record.reserved)
        reserved = record.reserved - amount
        self._put(
            account,
            replace(
                record, free=record.free + amount, reserved=reserved, consumers=int(reserved > 0)
            ),
        )

    def is_new(self, account: AccountHex) -> bool:
        return account not in self.accounts

    # ---- calls ---------------------------------------------------------------------
    def dispatch(
        self, ctx: BlockContext, signer: AccountHex | None, call: str, args: Mapping[str, Any]
    ) -> None:
        if call in ("transfer", "transfer_allow_death", "transfer_keep_alive"):
            if signer is None:
                raise BadOrigin()
            dest = normalize_account(args["dest"])
            amount = int(args["value"])
            created = self.is_new(dest)
            self.transfer(signer, dest, amount, keep_alive=call == "transfer_keep_alive")
            if created and not self.is_new(dest):
                ctx.emit("System", "NewAccount", account=dest)
                ctx.emit("Balances", "Endowed", account=dest, free_balance=amount)
            ctx.emit("Balances", "Transfer", **{"from": signer, "to": dest, "amount": amount})
            if signer not in self.accounts:
                ctx.emit("System", "KilledAccount", account=signer)
            return
        if call == "transfer_all":
            if signer is None:
                raise BadOrigin()
            dest = normalize_account(args["dest"])
            keep_alive = bool(args.get("keep_alive"))
            record = self.account(signer)
            must_remain = keep_alive or record.consumers > 0
            amount = record.free - (self.existential_deposit if must_remain else 0)
            if amount > 0:
                self.transfer(signer, dest, amount, keep_alive)
                ctx.emit("Balances", "Transfer", **{"from": signer, "to": dest, "amount": amount})
            return
        if call in ("force_set_balance", "force_transfer") and signer is not None:
            raise BadOrigin()
        raise DispatchError("System", "CallFiltered")

    def take_storage_changes(self) -> Iterable[StorageChange]:
        return super().take_storage_changes()


PROXY_TYPES = ("Any", "NonTransfer", "CancelProxy", "Governance", "Collator", "StakePoolManager")


def proxy_type_name(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value))
    if isinstance(value, int) and 0 <= value < len(PROXY_TYPES):
        return PROXY_TYPES[value]
    return str(value)


def proxy_allows(proxy_type: str, pallet: str, call: str) -> bool:
    """The runtime's InstanceFilter: may a proxy of this type make this call?"""
    if proxy_type == "Any":
        return True
    if pallet == "Utility":
        return True
    if proxy_type == "NonTransfer":
        return pallet not in ("Balances", "Assets", "PhalaWrappedBalances")
    if proxy_type == "CancelProxy":
        return pallet == "Proxy" and call == "reject_announcement"
    if proxy_type == "StakePoolManager":
        return (pallet, call) in _STAKE_POOL_MANAGER_CALLS
    return False


_STAKE_POOL_MANAGER_CALLS = frozenset(
    # The runtime's list (phala-blockchain standalone/runtime ProxyType::StakePoolManager):
    # worker lifecycle and pool creation only; set_cap, set_payout_pref and the money calls
    # stay with the owner.
    {
        ("PhalaStakePoolv2", c)
        for c in (
            "add_worker",
            "remove_worker",
            "start_computing",
            "stop_computing",
            "restart_computing",
            "reclaim_pool_worker",
            "create",
        )
    }
    | {
        ("PhalaRegistry", "register_worker"),
        ("PhalaRegistry", "register_worker_v2"),
        ("PhalaMq", "sync_offchain_message"),
    }
)


@dataclass(frozen=True)
class ProxyDefinition:
    delegate: AccountHex
    proxy_type: str
    delay: int


class Proxy(Pallet):
    """Proxy.Proxies and its calls except ``proxy`` itself (the engine dispatches that)."""

    name: ClassVar[str] = "Proxy"

    def __init__(self, deposit_base: int = 0, deposit_factor: int = 0) -> None:
        super().__init__()
        self.deposit_base = deposit_base
        self.deposit_factor = deposit_factor
        self.proxies: dict[AccountHex, tuple[tuple[ProxyDefinition, ...], int]] = {}

    def definitions(self, real: AccountHex) -> tuple[ProxyDefinition, ...]:
        return self.proxies.get(real, ((), 0))[0]

    def _put(self, ctx: BlockContext | None, real: AccountHex, defs: list[ProxyDefinition]) -> None:
        old_deposit = self.proxies.get(real, ((), 0))[1]
        deposit = self.deposit_base + self.deposit_factor * len(defs) if defs else 0
        if ctx is not None:
            balances = ctx.pallet("Balances")
            assert isinstance(balances, Balances)
            if deposit > old_deposit:
                balances.reserve(real, deposit - old_deposit)
            elif deposit < old_deposit:
                balances.unreserve(real, old_deposit - deposit)
        if defs:
            self.proxies[real] = (tuple(defs), deposit)
            value = [
                [
                    {"delegate": d.delegate, "proxy_type": d.proxy_type, "delay": d.delay}
                    for d in defs
                ],
                deposit,
            ]
            self.record_change("Proxies", (real,), value)
        else:
            self.proxies.pop(real, None)
            self.record_change("Proxies", (real,), None)

    def genesis(self, config: Mapping[str, Any]) -> None:
        for entry in config.get("proxies") or []:
            real = normalize_account(entry["real"])
            defs = list(self.definitions(real))
            defs.append(
                ProxyDefinition(
                    normalize_account(entry["delegate"]),
                    proxy_type_name(entry.get("proxy_type", "Any")),
                    int(entry.get("delay", 0)),
                )
            )
            self._put(None, real, defs)

    def dispatch(
        self, ctx: BlockContext, signer: AccountHex | None, call: str, args: Mapping[str, Any]
    ) -> None:
        if signer is None:
            raise BadOrigin()
        if call in ("add_proxy", "remove_proxy"):
            definition = ProxyDefinition(
                normalize_account(args["delegate"]),
                proxy_type_name(args["proxy_type"]),
                int(args["delay"]),
            )
            defs = list(self.definitions(signer))
            event_args = {
                "delegator": signer,
                "delegatee": definition.delegate,
                "proxy_type": definition.proxy_type,
                "delay": definition.delay,
            }
            if call == "add_proxy":
                if definition.delegate == signer:
                    raise DispatchError("Proxy", "NoSelfProxy")
                if definition in defs:
                    raise DispatchError("Proxy", "Duplicate")
                if len(defs) >= 32:
                    raise DispatchError("Proxy", "TooMany")
                defs.append(definition)
                self._put(ctx, signer, defs)
                ctx.emit("Proxy", "ProxyAdded", **event_args)
            else:
                if definition not in defs:
                    raise DispatchError("Proxy", "NotFound")
                defs.remove(definition)
                self._put(ctx, signer, defs)
                ctx.emit("Proxy", "ProxyRemoved", **event_args)
            return
        if call == "remove_proxies":
            self._put(ctx, signer, [])
            return
        raise DispatchError("System", "CallFiltered")

    def find(
        self, real: AccountHex, delegate: AccountHex, force_type: str | None
    ) -> ProxyDefinition:
        for definition in self.definitions(real):
            if definition.delegate == delegate and (
                force_type is None or definition.proxy_type == force_type
            ):
                return definition
        raise DispatchError("Proxy", "NotProxy")
