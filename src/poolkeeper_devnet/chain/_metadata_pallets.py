"""The devnet runtime's pallets as metadata: storage, calls, events, errors, constants.

Names, argument names, hashers, shapes and call/event/error indices are Khala's (spec 1251),
so a client written against Khala works unchanged on the devnet; pallet indices are Khala's
or Phala's (`LAYOUTS` in `_metadata.py`). Calls whose argument types would drag in
unrelated parts of Khala are left out (`Utility.dispatch_as`); error enums are always complete
because clients look errors up by position. `Grandpa` is devnet-only (Khala is a parachain):
it holds the finality authority set id a solo chain's relay needs. `ParachainSystem` carries
only `ValidationData` (what parachain mode writes), with no calls: the devnet has no inherents.

Storage spec: `"u32"` for a plain value, `"Twox64Concat(Public) => u64"` for a map
(several `Hasher(Key)` for an N-map).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from poolkeeper_devnet.chain._typereg import parse_expr, parse_variants

PHA = 10**12


@dataclass(frozen=True)
class StorageDecl:
    name: str
    value: str
    keys: tuple[tuple[str, str], ...]  # (hasher, key type)
    optional: bool
    default: Any
    docs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConstDecl:
    name: str
    type: str
    value: Any


@dataclass(frozen=True)
class PalletDecl:
    name: str
    module: str  # Rust path of the pallet module holding Call/Event/Error
    storage: tuple[StorageDecl, ...] = ()
    calls: str | None = None
    events: str | None = None
    errors: str | None = None
    constants: tuple[ConstDecl, ...] = ()
    instanced: bool = False  # Call<T, I> rather than Call<T>
    event_params: tuple[str, ...] | None = None  # overrides ("T",) / ("T", "I") for Event


TYPE_DEFAULT: Any = object()  # "use the type's Default::default()"


def item(
    name: str,
    spec: str,
    *,
    optional: bool = False,
    default: Any = TYPE_DEFAULT,
    docs: str | None = None,
) -> StorageDecl:
    """A storage entry; `default` (value shape) overrides the type's zero for Default entries."""
    if "=>" not in spec:
        parse_expr(spec)
        return StorageDecl(name, spec.strip(), (), optional, default, _lines(docs))
    key_part, value = spec.split("=>")
    keys = tuple(
        (v.name, str(v.fields[0][1])) for v in parse_variants(key_part) if len(v.fields) == 1
    )
    return StorageDecl(name, value.strip(), keys, optional, default, _lines(docs))


def _lines(docs: str | None) -> tuple[str, ...]:
    return () if docs is None else (docs,)


def const(name: str, type_: str, value: Any) -> ConstDecl:
    return ConstDecl(name, type_, value)


# Runtime version served by the devnet: Khala's spec, the devnet's implementation.
SPEC_VERSION = 1251
TRANSACTION_VERSION = 6

# pallet_balances' default account: no funds, the "new logic" flag (bit 127) set.
_NO_FUNDS = {"free": 0, "reserved": 0, "frozen": 0, "flags": 1 << 127}

_WEIGHT_ZERO = {"ref_time": 0, "proof_size": 0}
_BLOCK_WEIGHTS = {
    "base_block": {"ref_time": 392_184_000, "proof_size": 0},
    "max_block": {"ref_time": 500_000_000_000, "proof_size": 5_242_880},
    "per_class": {
        "normal": {
            "base_extrinsic": {"ref_time": 113_638_000, "proof_size": 0},
            "max_extrinsic": {"ref_time": 349_886_362_000, "proof_size": 3_670_016},
            "max_total": {"ref_time": 375_000_000_000, "proof_size": 3_932_160},
            "reserved": _WEIGHT_ZERO,
        },
        "operational": {
            "base_extrinsic": {"ref_time": 113_638_000, "proof_size": 0},
            "max_extrinsic": {"ref_time": 474_886_362_000, "proof_size": 4_980_736},
            "max_total": {"ref_time": 500_000_000_000, "proof_size": 5_242_880},
            "reserved": {"ref_time": 125_000_000_000, "proof_size": 1_310_720},
        },
        "mandatory": {
            "base_extrinsic": {"ref_time": 113_638_000, "proof_size": 0},
            "max_extrinsic": None,
            "max_total": None,
            "reserved": None,
        },
    },
}

SYSTEM = PalletDecl(
    "System",
    "frame_system::pallet",
    storage=(
        item(
            "Account",
            "Blake2_128Concat(AccountId32) => AccountInfo<u32, AccountData<u128>>",
            default={
                "nonce": 0,
                "consumers": 0,
                "providers": 0,
                "sufficients": 0,
                "data": _NO_FUNDS,
            },
        ),
        item("ExtrinsicCount", "u32", optional=True),
        item("BlockWeight", "PerDispatchClass<Weight>"),
        item("AllExtrinsicsLen", "u32", optional=True),
        item("BlockHash", "Twox64Concat(u32) => H256"),
        item("ExtrinsicData", "Twox64Concat(u32) => Vec<u8>"),
        item("Number", "u32"),
        item("ParentHash", "H256"),
        item("Digest", "Digest"),
        item("Events", "Vec<EventRecord<RuntimeEvent, H256>>"),
        item("EventCount", "u32"),
        item("EventTopics", "Blake2_128Concat(H256) => Vec<(u32, u32)>"),
        item("LastRuntimeUpgrade", "LastRuntimeUpgradeInfo", optional=True),
        item("UpgradedToU32RefCount", "bool"),
        item("UpgradedToTripleRefCount", "bool"),
        item("ExecutionPhase", "Phase", optional=True),
    ),
    calls="remark{remark: Vec<u8>}, set_heap_pages{pages: u64}, set_code{code: Vec<u8>},"
    " set_code_without_checks{code: Vec<u8>}, set_storage{items: Vec<(Vec<u8>, Vec<u8>)>},"
    " kill_storage{keys: Vec<Vec<u8>>}, kill_prefix{prefix: Vec<u8>, subkeys: u32},"
    " remark_with_event{remark: Vec<u8>}",
    events="ExtrinsicSuccess{dispatch_info: DispatchInfo},"
    " ExtrinsicFailed{dispatch_error: DispatchError, dispatch_info: DispatchInfo}, CodeUpdated,"
    " NewAccount{account: AccountId32}, KilledAccount{account: AccountId32},"
    " Remarked{sender: AccountId32, hash: H256}",
    errors="InvalidSpecName, SpecVersionNeedsToIncrease, FailedToExtractRuntimeVersion,"
    " NonDefaultComposite, NonZeroRefCount, CallFiltered",
    constants=(
        const("BlockWeights", "BlockWeights", _BLOCK_WEIGHTS),
        const(
            "BlockLength",
            "BlockLength",
            {"max": {"normal": 3_932_160, "operational": 5_242_880, "mandatory": 5_242_880}},
        ),
        const("BlockHashCount", "u32", 1200),
        const("DbWeight", "RuntimeDbWeight", {"read": 25_000_000, "write": 100_000_000}),
        const("Version", "RuntimeVersion", None),  # filled from RUNTIME_VERSION
        const("SS58Prefix", "u16", 30),
    ),
)

TIMESTAMP = PalletDecl(
    "Timestamp",
    "pallet_timestamp::pallet",
    storage=(item("Now", "u64"), item("DidUpdate", "bool")),
    calls="set{now: Compact<u64>}",
    constants=(const("MinimumPeriod", "u64", 6000),),
)

# Devnet-only: a solo chain's GRANDPA authority set (the set itself is at `:grandpa_authorities`).
GRANDPA = PalletDecl(
    "Grandpa",
    "pallet_grandpa::pallet",
    storage=(
        item("CurrentSetId", "u64", docs="Devnet only: the id of the GRANDPA authority set."),
        item(
            "Authorities",
            "WeakBoundedVec<(GrandpaAuthorityId, u64)>",
            docs="Devnet only: the GRANDPA authority set (also at `:grandpa_authorities`).",
        ),
    ),
)

UTILITY = PalletDecl(
    "Utility",
    "pallet_utility::pallet",
    calls="batch{calls: Vec<RuntimeCall>}, as_derivative{index: u16, call: RuntimeCall},"
    " batch_all{calls: Vec<RuntimeCall>}, force_batch=4{calls: Vec<RuntimeCall>},"
    " with_weight{call: RuntimeCall, weight: Weight}",
    events="BatchInterrupted{index: u32, error: DispatchError}, BatchCompleted,"
    " BatchCompletedWithErrors, ItemCompleted, ItemFailed{error: DispatchError},"
    " DispatchedAs{result: Result<(), DispatchError>}",
    event_params=(),
    errors="TooManyCalls",
    constants=(const("batched_calls_limit", "u32", 10922),),
)

_ADDR = "MultiAddress<AccountId32, ()>"

PROXY = PalletDecl(
    "Proxy",
    "pallet_proxy::pallet",
    storage=(
        item(
            "Proxies",
            "Twox64Concat(AccountId32) =>"
            " (BoundedVec<ProxyDefinition<AccountId32, ProxyType, u32>>, u128)",
        ),
        item(
            "Announcements",
            "Twox64Concat(AccountId32) => (BoundedVec<Announcement<AccountId32, H256, u32>>, u128)",
        ),
    ),
    calls=f"proxy{{real: {_ADDR}, force_proxy_type: Option<ProxyType>, call: RuntimeCall}},"
    f" add_proxy{{delegate: {_ADDR}, proxy_type: ProxyType, delay: u32}},"
    f" remove_proxy{{delegate: {_ADDR}, proxy_type: ProxyType, delay: u32}},"
    " remove_proxies,"
    " create_pure{proxy_type: ProxyType, delay: u32, index: u16},"
    f" kill_pure{{spawner: {_ADDR}, proxy_type: ProxyType, index: u16, height: Compact<u32>,"
    " ext_index: Compact<u32>},"
    f" announce{{real: {_ADDR}, call_hash: H256}},"
    f" remove_announcement{{real: {_ADDR}, call_hash: H256}},"
    f" reject_announcement{{delegate: {_ADDR}, call_hash: H256}},"
    f" proxy_announced{{delegate: {_ADDR}, real: {_ADDR}, force_proxy_type: Option<ProxyType>,"
    " call: RuntimeCall}",
    events="ProxyExecuted{result: Result<(), DispatchError>},"
    " PureCreated{pure: AccountId32, who: AccountId32, proxy_type: ProxyType,"
    " disambiguation_index: u16},"
    " Announced{real: AccountId32, proxy: AccountId32, call_hash: H256},"
    " ProxyAdded{delegator: AccountId32, delegatee: AccountId32, proxy_type: ProxyType,"
    " delay: u32},"
    " ProxyRemoved{delegator: AccountId32, delegatee: AccountId32, proxy_type: ProxyType,"
    " delay: u32}",
    errors="TooMany, NotFound, NotProxy, Unproxyable, Duplicate, NoPermission, Unannounced,"
    " NoSelfProxy",
    constants=(
        const("ProxyDepositBase", "u128", 550_000_000_000),
        const("ProxyDepositFactor", "u128", 330_000_000_000),
        const("MaxProxies", "u32", 32),
        const("MaxPending", "u32", 32),
        const("AnnouncementDepositBase", "u128", 630_000_000_000),
        const("AnnouncementDepositFactor", "u128", 660_000_000_000),
    ),
)

PARACHAIN_INFO = PalletDecl(
    "ParachainInfo",
    "parachain_info::pallet",
    storage=(item("ParachainId", "ParaId", default=100),),
)

PARACHAIN_SYSTEM = PalletDecl(
    "ParachainSystem",
    "cumulus_pallet_parachain_system::pallet",
    storage=(
        item(
            "ValidationData",
            "PersistedValidationData",
            optional=True,
            docs="The `PersistedValidationData` set for this block.",
        ),
    ),
    errors="OverlappingUpgrades, ProhibitedByPolkadot, TooBig, ValidationDataNotAvailable,"
    " HostConfigurationNotAvailable, NotScheduled, NothingAuthorized, Unauthorized",
)

BALANCES = PalletDecl(
    "Balances",
    "pallet_balances::pallet",
    instanced=True,
    storage=(
        item("TotalIssuance", "u128"),
        item("InactiveIssuance", "u128"),
        item("Account", "Blake2_128Concat(AccountId32) => AccountData<u128>", default=_NO_FUNDS),
        item("Locks", "Blake2_128Concat(AccountId32) => WeakBoundedVec<BalanceLock<u128>>"),
        item("Reserves", "Blake2_128Concat(AccountId32) => BoundedVec<ReserveData<[u8; 8], u128>>"),
        item("Holds", "Blake2_128Concat(AccountId32) => BoundedVec<IdAmount<(), u128>>"),
        item("Freezes", "Blake2_128Concat(AccountId32) => BoundedVec<IdAmount<(), u128>>"),
    ),
    calls=f"transfer_allow_death{{dest: {_ADDR}, value: Compact<u128>}},"
    f" set_balance_deprecated{{who: {_ADDR}, new_free: Compact<u128>,"
    " old_reserved: Compact<u128>},"
    f" force_transfer{{source: {_ADDR}, dest: {_ADDR}, value: Compact<u128>}},"
    f" transfer_keep_alive{{dest: {_ADDR}, value: Compact<u128>}},"
    f" transfer_all{{dest: {_ADDR}, keep_alive: bool}},"
    f" force_unreserve{{who: {_ADDR}, amount: u128}},"
    " upgrade_accounts{who: Vec<AccountId32>},"
    f" transfer{{dest: {_ADDR}, value: Compact<u128>}},"
    f" force_set_balance{{who: {_ADDR}, new_free: Compact<u128>}}",
    events="Endowed{account: AccountId32, free_balance: u128},"
    " DustLost{account: AccountId32, amount: u128},"
    " Transfer{from: AccountId32, to: AccountId32, amount: u128},"
    " BalanceSet{who: AccountId32, free: u128},"
    " Reserved{who: AccountId32, amount: u128},"
    " Unreserved{who: AccountId32, amount: u128},"
    " ReserveRepatriated{from: AccountId32, to: AccountId32, amount: u128,"
    " destination_status: BalanceStatus},"
    " Deposit{who: AccountId32, amount: u128},"
    " Withdraw{who: AccountId32, amount: u128},"
    " Slashed{who: AccountId32, amount: u128},"
    " Minted{who: AccountId32, amount: u128},"
    " Burned{who: AccountId32, amount: u128},"
    " Suspended{who: AccountId32, amount: u128},"
    " Restored{who: AccountId32, amount: u128},"
    " Upgraded{who: AccountId32},"
    " Issued{amount: u128}, Rescinded{amount: u128},"
    " Locked{who: AccountId32, amount: u128},"
    " Unlocked{who: AccountId32, amount: u128},"
    " Frozen{who: AccountId32, amount: u128},"
    " Thawed{who: AccountId32, amount: u128}",
    errors="VestingBalance, LiquidityRestrictions, InsufficientBalance, ExistentialDeposit,"
    " Expendability, ExistingVestingSchedule, DeadAccount, TooManyReserves, TooManyHolds,"
    " TooManyFreezes",
    constants=(
        const("ExistentialDeposit", "u128", 10**10),
        const("MaxLocks", "u32", 50),
        const("MaxReserves", "u32", 50),
        const("MaxHolds", "u32", 0),
        const("MaxFreezes", "u32", 0),
    ),
)

TRANSACTION_PAYMENT = PalletDecl(
    "TransactionPayment",
    "pallet_transaction_payment::pallet",
    storage=(
        item("NextFeeMultiplier", "FixedU128", default=10**18),
        item("StorageVersion", "Releases"),
    ),
    events="TransactionFeePaid{who: AccountId32, actual_fee: u128, tip: u128}",
    constants=(const("OperationalFeeMultiplier", "u8", 5),),
)

PHALA_MQ = PalletDecl(
    "PhalaMq",
    "phala_pallets::mq::pallet",
    storage=(
        item("OffchainIngress", "Twox64Concat(MessageOrigin) => u64", optional=True),
        item("QueuedOutboundMessage", "Vec<Message>", optional=True),
        item("OutboundMessages", "Vec<Message>"),
    ),
    calls="sync_offchain_message{signed_message: SignedMessage},"
    " push_message{destination: Vec<u8>, payload: Vec<u8>},"
    " force_push_pallet_message{destination: Vec<u8>, payload: Vec<u8>}",
    errors="BadSender, BadSequence, BadDestination",
)

PHALA_REGISTRY = PalletDecl(
    "PhalaRegistry",
    "phala_pallets::registry::pallet",
    storage=(
        item("Gatekeeper", "Vec<Public>"),
        item("GatekeeperMasterPubkey", "Public", optional=True),
        item("GatekeeperLaunchedAt", "(u32, u64)", optional=True),
        item("RotationCounter", "u64"),
        item("MasterKeyRotationLock", "Option<u64>"),
        item("Workers", "Twox64Concat(Public) => WorkerInfoV2<AccountId32>", optional=True),
        item("WorkerAddedAt", "Twox64Concat(Public) => u32", optional=True),
        item("ContractKeys", "Twox64Concat(H256) => Public", optional=True),
        item("ClusterKeys", "Twox64Concat(H256) => Public", optional=True),
        item("TopicKey", "Blake2_128Concat(Vec<u8>) => Vec<u8>", optional=True),
        item("BenchmarkDuration", "u32", optional=True),
        item("PRuntimeAllowList", "Vec<Vec<u8>>"),
        item("PRuntimeAddedAt", "Twox64Concat(Vec<u8>) => u32", optional=True),
        item("RelaychainGenesisBlockHashAllowList", "Vec<H256>"),
        item("Endpoints", "Twox64Concat(Public) => VersionedWorkerEndpoints", optional=True),
        item("TempWorkersIterKey", "Option<Vec<u8>>"),
        item("MinimumPRuntimeVersion", "(u32, u32, u32)"),
        item("PRuntimeConsensusVersion", "u32"),
        item("MaxKnownPRuntimeConsensusVersion", "KnownConsensusVersion"),
    ),
    calls="force_set_benchmark_duration{value: u32},"
    " force_register_worker{pubkey: Public, ecdh_pubkey: Public, operator: Option<AccountId32>},"
    " force_register_topic_pubkey{topic: Vec<u8>, pubkey: Vec<u8>},"
    " register_gatekeeper{gatekeeper: Public},"
    " unregister_gatekeeper{gatekeeper: Public},"
    " rotate_master_key,"
    " register_worker{pruntime_info: WorkerRegistrationInfo<AccountId32>,"
    " attestation: Attestation},"
    " register_worker_v2{pruntime_info: WorkerRegistrationInfoV2<AccountId32>,"
    " attestation: Option<AttestationReport>},"
    " update_worker_endpoint{endpoint_payload: WorkerEndpointPayload, signature: Vec<u8>},"
    " add_pruntime{pruntime_hash: Vec<u8>},"
    " remove_pruntime{pruntime_hash: Vec<u8>},"
    " add_relaychain_genesis_block_hash{genesis_block_hash: H256},"
    " remove_relaychain_genesis_block_hash{genesis_block_hash: H256},"
    " set_minimum_pruntime_version{major: u32, minor: u32, patch: u32},"
    " set_pruntime_consensus_version{version: u32}",
    events="GatekeeperAdded{pubkey: Public}, GatekeeperRemoved{pubkey: Public},"
    " WorkerAdded{pubkey: Public, attestation_provider: Option<AttestationProvider>,"
    " confidence_level: u8},"
    " WorkerUpdated{pubkey: Public, attestation_provider: Option<AttestationProvider>,"
    " confidence_level: u8},"
    " MasterKeyRotated{rotation_id: u64, master_pubkey: Public},"
    " MasterKeyRotationFailed{rotation_lock: Option<u64>, gatekeeper_rotation_id: u64},"
    " InitialScoreSet{pubkey: Public, init_score: u32},"
    " MinimumPRuntimeVersionChangedTo(u32, u32, u32),"
    " PRuntimeConsensusVersionChangedTo(u32),"
    " GatekeeperLaunched",
    errors="CannotHandleUnknownMessage, InvalidSender, InvalidPubKey, MalformedSignature,"
    " InvalidSignatureLength, InvalidSignature, UnknownContract, InvalidIASSigningCert,"
    " InvalidReport, InvalidQuoteStatus, BadIASReport, OutdatedIASReport,"
    " UnknownQuoteBodyFormat, InvalidRuntimeInfoHash, InvalidRuntimeInfo, InvalidInput,"
    " InvalidBenchReport, WorkerNotFound, NoneAttestationDisabled, InvalidGatekeeper,"
    " InvalidMasterPubkey, MasterKeyMismatch, MasterKeyUninitialized, GenesisBlockHashRejected,"
    " GenesisBlockHashAlreadyExists, GenesisBlockHashNotFound, PRuntimeRejected,"
    " PRuntimeAlreadyExists, PRuntimeNotFound, UnknownCluster, NotImplemented,"
    " CannotRemoveLastGatekeeper, MasterKeyInRotation, InvalidRotatedMasterPubkey,"
    " InvalidEndpointSigningTime, NotMigrationRoot, ParachainIdMismatch,"
    " InvalidConsensusVersion",
    constants=(
        # The devnet registers simulated workers without SGX: attestation `None` is accepted.
        const("NoneAttestationEnabled", "bool", True),
        const("VerifyPRuntime", "bool", True),
        const("VerifyRelaychainGenesisBlockHash", "bool", True),
    ),
)

PHALA_COMPUTATION = PalletDecl(
    "PhalaComputation",
    "phala_pallets::compute::computation::pallet",
    storage=(
        item("TokenomicParameters", "TokenomicParameters", optional=True),
        item("ScheduledTokenomicUpdate", "TokenomicParameters", optional=True),
        item("OnlineWorkers", "u32"),
        item("ExpectedHeartbeatCount", "u32", optional=True),
        item("HeartbeatPaused", "bool", default=True),
        item("MaxBudgetLimit", "u128", default=24_000 << 56),
        item("BudgetUpdateNonce", "u64"),
        item("LastBugdetUpdateBlock", "u32"),
        item(
            "ContractAccount",
            "AccountId32",
            default="0x9e6399cd577e8ac536bdc017675f747b2d1893ad9cc8c69fd17eef73d4e6e51e",
        ),
        item("Sessions", "Twox64Concat(AccountId32) => SessionInfo", optional=True),
        item("SessionBindings", "Twox64Concat(AccountId32) => Public", optional=True),
        item("WorkerBindings", "Twox64Concat(Public) => AccountId32", optional=True),
        item("CoolDownPeriod", "u64"),
        item("NextSessionId", "u32"),
        item("ComputingStartBlock", "u32", optional=True),
        item("ComputingHalvingInterval", "u32", optional=True),
        item("Stakes", "Twox64Concat(AccountId32) => u128", optional=True),
    ),
    calls="set_cool_down_expiration{period: u64}, unbind{session: AccountId32},"
    " force_heartbeat, force_start_computing{session: AccountId32, stake: u128},"
    " force_stop_computing{session: AccountId32},"
    " update_tokenomic{new_params: TokenomicParameters}, set_heartbeat_paused{paused: bool},"
    " set_budget_per_block{nonce: u64, block_number: u32, budget: u128},"
    " update_contract_root{account_id: AccountId32}",
    events="CoolDownExpirationChanged{period: u64},"
    " WorkerStarted{session: AccountId32, init_v: u128, init_p: u32},"
    " WorkerStopped{session: AccountId32},"
    " WorkerReclaimed{session: AccountId32, original_stake: u128, slashed: u128},"
    " SessionBound{session: AccountId32, worker: Public},"
    " SessionUnbound{session: AccountId32, worker: Public},"
    " WorkerEnterUnresponsive{session: AccountId32},"
    " WorkerExitUnresponsive{session: AccountId32},"
    " SessionSettled{session: AccountId32, v_bits: u128, payout_bits: u128},"
    " InternalErrorWorkerSettleFailed{worker: Public},"
    " SubsidyBudgetHalved, InternalErrorWrongHalvingConfigured, TokenomicParametersChanged,"
    " SessionSettlementDropped{session: AccountId32, v: u128, payout: u128},"
    " BenchmarkUpdated{session: AccountId32, p_instant: u32},"
    " BudgetUpdated{nonce: u64, budget: u128}",
    errors="BadSender, _InvalidMessage, WorkerNotRegistered, _GatekeeperNotRegistered,"
    " DuplicateBoundSession, BenchmarkMissing, SessionNotFound, SessionNotBound,"
    " WorkerNotReady, WorkerNotComputing, WorkerNotBound, CoolDownNotReady, InsufficientStake,"
    " TooMuchStake, InternalErrorBadTokenomicParameters, DuplicateBoundWorker,"
    " BenchmarkTooLow, InternalErrorCannotStartWithExistingStake, NotMigrationRoot,"
    " NonceIndexInvalid, BudgetUpdateBlockInvalid, BudgetExceedMaxLimit,"
    " WorkerReregisterNeeded",
)

PHALA_STAKE_POOL_V2 = PalletDecl(
    "PhalaStakePoolv2",
    "phala_pallets::compute::stake_pool_v2::pallet",
    storage=(
        item("LegacyRewards", "Twox64Concat((AccountId32, u64)) => u128", optional=True),
        item("WorkerAssignments", "Twox64Concat(Public) => u64", optional=True),
        item("SubAccountAssignments", "Twox64Concat(AccountId32) => u64", optional=True),
        item("SubAccountPreimages", "Twox64Concat(AccountId32) => (u64, Public)", optional=True),
        item("StakepoolIterateStartPos", "Option<u64>"),
    ),
    calls="create, add_worker{pid: u64, pubkey: Public},"
    " remove_worker{pid: u64, worker: Public},"
    " set_cap{pid: u64, cap: u128},"
    " set_payout_pref{pid: u64, payout_commission: Option<Permill>},"
    " claim_legacy_rewards{pid: u64, target: AccountId32},"
    " backfill_add_missing_reward{input: Vec<(AccountId32, u64, u128)>},"
    " claim_owner_rewards{pid: u64, target: AccountId32},"
    " check_and_maybe_force_withdraw{pid: u64},"
    " contribute{pid: u64, amount: u128, as_vault: Option<u64>},"
    " withdraw{pid: u64, shares: u128, as_vault: Option<u64>},"
    " reset_iter_pos,"
    " fix_missing_worker_lock{max_iterations: u32},"
    " start_computing{pid: u64, worker: Public, stake: u128},"
    " stop_computing{pid: u64, worker: Public},"
    " reclaim_pool_worker{pid: u64, worker: Public},"
    " restart_computing=17{pid: u64, worker: Public, stake: u128}",
    events="PoolCreated{owner: AccountId32, pid: u64, cid: u32, pool_account_id: AccountId32},"
    " PoolCommissionSet{pid: u64, commission: u32},"
    " PoolCapacitySet{pid: u64, cap: u128},"
    " PoolWorkerAdded{pid: u64, worker: Public, session: AccountId32},"
    " Contribution{pid: u64, user: AccountId32, amount: u128, shares: u128,"
    " as_vault: Option<u64>},"
    " OwnerRewardsWithdrawn{pid: u64, user: AccountId32, amount: u128},"
    " PoolSlashed{pid: u64, amount: u128},"
    " SlashSettled{pid: u64, user: AccountId32, amount: u128},"
    " RewardDismissedNotInPool{worker: Public, amount: u128},"
    " RewardDismissedNoShare{pid: u64, amount: u128},"
    " RewardDismissedDust{pid: u64, amount: u128},"
    " PoolWorkerRemoved{pid: u64, worker: Public},"
    " WorkerReclaimed{pid: u64, worker: Public},"
    " RewardReceived{pid: u64, to_owner: u128, to_stakers: u128},"
    " WorkingStarted{pid: u64, worker: Public, amount: u128},"
    " RewardToOwnerDismissedDust{pid: u64, amount: u128},"
    " RewardToDistributionDismissedDust{pid: u64, amount: u128}",
    errors="WorkerNotRegistered, BenchmarkMissing, WorkerExists, WorkerAlreadyStopped,"
    " WorkerDoesNotExist, WorkerInAnotherPool, UnauthorizedOperator, UnauthorizedPoolOwner,"
    " InadequateCapacity, StakeExceedsCapacity, PoolDoesNotExist, _PoolIsBusy,"
    " InsufficientContribution, NoNftToWithdraw, InsufficientBalance, PoolStakeNotFound,"
    " InsufficientFreeStake, InvalidWithdrawalAmount, FailedToBindSessionAndWorker,"
    " InternalSubsidyPoolCannotWithdraw, PoolBankrupt, NoRewardToClaim, FeatureNotEnabled,"
    " WorkersExceedLimit, CannotRestartWithLessStake, InvalidForceRewardAmount,"
    " WithdrawQueueNotEmpty, MissingCollectionId, VaultIsLocked, SessionDoesNotExist,"
    " WorkerIsNotReady, LockAccountStakeError, NoLegacyRewardToClaim",
    constants=(
        const("MinContribution", "u128", 10**10),
        const("GracePeriod", "u64", 604_800),
        const("MaxPoolWorkers", "u32", 200),
    ),
)

PHALA_BASE_POOL = PalletDecl(
    "PhalaBasePool",
    "phala_pallets::compute::base_pool::pallet",
    storage=(
        item("NextNftId", "Twox64Concat(u32) => u32"),
        item("LockIterateStartPos", "Option<(u32, u32)>"),
        item("PoolCount", "u64"),
        item("PoolCollections", "Twox64Concat(u32) => u64", optional=True),
        item("CollectionIndex", "u32"),
        item("Pools", "Twox64Concat(u64) => PoolProxy<AccountId32, u128>", optional=True),
        item("NftLocks", "Twox64Concat((u32, u32)) => ()", optional=True),
        item("PoolContributionWhitelists", "Twox64Concat(u64) => Vec<AccountId32>", optional=True),
        item("PoolDescriptions", "Twox64Concat(u64) => BoundedVec<u8>", optional=True),
    ),
    calls="add_staker_to_whitelist{pid: u64, staker: AccountId32},"
    " set_pool_description{pid: u64, description: BoundedVec<u8>},"
    " reset_lock_iter_pos, remove_unused_lock{max_iterations: u32},"
    " remove_staker_from_whitelist{pid: u64, staker: AccountId32}",
    events="NftCreated{pid: u64, cid: u32, nft_id: u32, owner: AccountId32, shares: u128},"
    " WithdrawalQueued{pid: u64, user: AccountId32, shares: u128, nft_id: u32,"
    " as_vault: Option<u64>},"
    " Withdrawal{pid: u64, user: AccountId32, amount: u128, shares: u128},"
    " PoolWhitelistCreated{pid: u64}, PoolWhitelistDeleted{pid: u64},"
    " PoolWhitelistStakerAdded{pid: u64, staker: AccountId32},"
    " PoolWhitelistStakerRemoved{pid: u64, staker: AccountId32}",
    errors="MissCollectionId, PoolBankrupt, InvalidShareToWithdraw, InvalidWithdrawalAmount,"
    " RmrkError, PoolDoesNotExist, PoolTypeNotMatch, NftIdNotFound, InvalidSharePrice,"
    " AttrLocked, UnauthorizedPoolOwner, AlreadyInContributeWhitelist,"
    " NotInContributeWhitelist, ExceedWhitelistMaxLen, NoWhitelistCreated,"
    " ExceedMaxDescriptionLen, NotMigrationRoot, BurnNftFailed, TransferSharesAmountInvalid",
)

_ID = "id: Compact<u32>"

ASSETS = PalletDecl(
    "Assets",
    "pallet_assets::pallet",
    instanced=True,
    storage=(
        item(
            "Asset",
            "Blake2_128Concat(u32) => AssetDetails<u128, AccountId32, u128>",
            optional=True,
        ),
        item(
            "Account",
            "Blake2_128Concat(u32), Blake2_128Concat(AccountId32) => AssetAccount<u128, u128, ()>",
            optional=True,
        ),
        item(
            "Approvals",
            "Blake2_128Concat(u32), Blake2_128Concat(AccountId32), Blake2_128Concat(AccountId32)"
            " => Approval<u128, u128>",
            optional=True,
        ),
        item("Metadata", "Blake2_128Concat(u32) => AssetMetadata<u128, BoundedVec<u8>>"),
    ),
    calls=f"create{{{_ID}, admin: {_ADDR}, min_balance: u128}},"
    f" force_create{{{_ID}, owner: {_ADDR}, is_sufficient: bool, min_balance: Compact<u128>}},"
    f" start_destroy{{{_ID}}}, destroy_accounts{{{_ID}}}, destroy_approvals{{{_ID}}},"
    f" finish_destroy{{{_ID}}},"
    f" mint{{{_ID}, beneficiary: {_ADDR}, amount: Compact<u128>}},"
    f" burn{{{_ID}, who: {_ADDR}, amount: Compact<u128>}},"
    f" transfer{{{_ID}, target: {_ADDR}, amount: Compact<u128>}},"
    f" transfer_keep_alive{{{_ID}, target: {_ADDR}, amount: Compact<u128>}},"
    f" force_transfer{{{_ID}, source: {_ADDR}, dest: {_ADDR}, amount: Compact<u128>}},"
    f" freeze{{{_ID}, who: {_ADDR}}}, thaw{{{_ID}, who: {_ADDR}}},"
    f" freeze_asset{{{_ID}}}, thaw_asset{{{_ID}}},"
    f" transfer_ownership{{{_ID}, owner: {_ADDR}}},"
    f" set_team{{{_ID}, issuer: {_ADDR}, admin: {_ADDR}, freezer: {_ADDR}}},"
    f" set_metadata{{{_ID}, name: Vec<u8>, symbol: Vec<u8>, decimals: u8}},"
    f" clear_metadata{{{_ID}}},"
    f" force_set_metadata{{{_ID}, name: Vec<u8>, symbol: Vec<u8>, decimals: u8,"
    " is_frozen: bool},"
    f" force_clear_metadata{{{_ID}}},"
    f" force_asset_status{{{_ID}, owner: {_ADDR}, issuer: {_ADDR}, admin: {_ADDR},"
    f" freezer: {_ADDR}, min_balance: Compact<u128>, is_sufficient: bool, is_frozen: bool}},"
    f" approve_transfer{{{_ID}, delegate: {_ADDR}, amount: Compact<u128>}},"
    f" cancel_approval{{{_ID}, delegate: {_ADDR}}},"
    f" force_cancel_approval{{{_ID}, owner: {_ADDR}, delegate: {_ADDR}}},"
    f" transfer_approved{{{_ID}, owner: {_ADDR}, destination: {_ADDR},"
    " amount: Compact<u128>},"
    f" touch{{{_ID}}}, refund{{{_ID}, allow_burn: bool}},"
    f" set_min_balance{{{_ID}, min_balance: u128}}",
    events="Created{asset_id: u32, creator: AccountId32, owner: AccountId32},"
    " Issued{asset_id: u32, owner: AccountId32, amount: u128},"
    " Transferred{asset_id: u32, from: AccountId32, to: AccountId32, amount: u128},"
    " Burned{asset_id: u32, owner: AccountId32, balance: u128},"
    " TeamChanged{asset_id: u32, issuer: AccountId32, admin: AccountId32,"
    " freezer: AccountId32},"
    " OwnerChanged{asset_id: u32, owner: AccountId32},"
    " Frozen{asset_id: u32, who: AccountId32}, Thawed{asset_id: u32, who: AccountId32},"
    " AssetFrozen{asset_id: u32}, AssetThawed{asset_id: u32},"
    " AccountsDestroyed{asset_id: u32, accounts_destroyed: u32, accounts_remaining: u32},"
    " ApprovalsDestroyed{asset_id: u32, approvals_destroyed: u32, approvals_remaining: u32},"
    " DestructionStarted{asset_id: u32}, Destroyed{asset_id: u32},"
    " ForceCreated{asset_id: u32, owner: AccountId32},"
    " MetadataSet{asset_id: u32, name: Vec<u8>, symbol: Vec<u8>, decimals: u8,"
    " is_frozen: bool},"
    " MetadataCleared{asset_id: u32},"
    " ApprovedTransfer{asset_id: u32, source: AccountId32, delegate: AccountId32,"
    " amount: u128},"
    " ApprovalCancelled{asset_id: u32, owner: AccountId32, delegate: AccountId32},"
    " TransferredApproved{asset_id: u32, owner: AccountId32, delegate: AccountId32,"
    " destination: AccountId32, amount: u128},"
    " AssetStatusChanged{asset_id: u32},"
    " AssetMinBalanceChanged{asset_id: u32, new_min_balance: u128}",
    errors="BalanceLow, NoAccount, NoPermission, Unknown, Frozen, InUse, BadWitness,"
    " MinBalanceZero, UnavailableConsumer, BadMetadata, Unapproved, WouldDie, AlreadyExists,"
    " NoDeposit, WouldBurn, LiveAsset, AssetNotLive, IncorrectStatus, NotFrozen,"
    " CallbackFailed",
    constants=(
        const("RemoveItemsLimit", "u32", 1000),
        const("AssetDeposit", "u128", 10**10),
        const("AssetAccountDeposit", "u128", PHA),
        const("MetadataDepositBase", "u128", 830_000_000_000),
        const("MetadataDepositPerByte", "u128", 10**10),
        const("ApprovalDeposit", "u128", 10**10),
        const("StringLimit", "u32", 50),
    ),
)

PHALA_WRAPPED_BALANCES = PalletDecl(
    "PhalaWrappedBalances",
    "phala_pallets::compute::wrapped_balances::pallet",
    storage=(
        item(
            "VoteAccountMap",
            "Blake2_128Concat(u32), Blake2_128Concat(AccountId32) => (u128, u128)",
            optional=True,
        ),
        item(
            "AccountVoteMap",
            "Blake2_128Concat(AccountId32), Blake2_128Concat(u32) => ()",
            optional=True,
        ),
        item("StakerAccounts", "Twox64Concat(AccountId32) => FinanceAccount<u128>", optional=True),
        item("UnmintableDust", "u128"),
    ),
    calls="wrap{amount: u128}, unwrap_all, unwrap{amount: u128},"
    " vote{aye_amount: u128, nay_amount: u128, vote_id: u32},"
    " unlock{vote_id: u32, max_iterations: u32}, backfill_vote_lock",
    events="DustRemoved{user: AccountId32, amount: u128},"
    " Wrapped{user: AccountId32, amount: u128},"
    " Unwrapped{user: AccountId32, amount: u128},"
    " Voted{user: AccountId32, vote_id: u32, aye_amount: u128, nay_amount: u128}",
    errors="StakerAccountNotFound, UnwrapAmountExceedsAvaliableStake,"
    " VoteAmountLargerThanTotalStakes, ReferendumInvalid, ReferendumOngoing,"
    " IterationsIsNotVaild",
    constants=(
        const("WPhaAssetId", "u32", 10000),
        const(
            "WrappedBalancesAccountId",
            "AccountId32",
            "0x" + (b"wpha/" + bytes(27)).hex(),
        ),
    ),
)

PALLETS: tuple[PalletDecl, ...] = (
    SYSTEM,
    TIMESTAMP,
    GRANDPA,
    UTILITY,
    PROXY,
    PARACHAIN_INFO,
    PARACHAIN_SYSTEM,
    BALANCES,
    TRANSACTION_PAYMENT,
    PHALA_MQ,
    PHALA_REGISTRY,
    PHALA_COMPUTATION,
    PHALA_STAKE_POOL_V2,
    PHALA_BASE_POOL,
    ASSETS,
    PHALA_WRAPPED_BALANCES,
)

# Devnet-only items, and devnet values that deliberately differ from Khala's.
DEVNET_ONLY_PALLETS = frozenset({"Grandpa"})
DEVNET_CONSTANT_VALUES = frozenset(
    {("System", "Version"), ("PhalaRegistry", "NoneAttestationEnabled")}
)

# One-line explanations of the errors a pool operator meets (shown by clients as the error's docs).
ERROR_DOCS: dict[tuple[str, str], str] = {
    ("Balances", "InsufficientBalance"): "The account's free balance is too low for this.",
    ("Balances", "ExistentialDeposit"): "The value is below the existential deposit.",
    ("Balances", "Expendability"): "The transfer would kill an account kept alive.",
    ("Proxy", "NotProxy"): "The sender is not a proxy of the real account.",
    ("Proxy", "Unproxyable"): "The proxy type does not allow this call.",
    ("Proxy", "NotFound"): "No such proxy.",
    ("Proxy", "Duplicate"): "That proxy is already registered.",
    ("Utility", "TooManyCalls"): "Too many calls in one batch.",
    ("PhalaMq", "BadSequence"): "The message sequence is not the next one expected.",
    ("PhalaMq", "BadSender"): "The message sender is not allowed.",
    ("PhalaRegistry", "GenesisBlockHashRejected"): "The worker's genesis hash is not allowed.",
    ("PhalaRegistry", "NoneAttestationDisabled"): "Registration without attestation is off.",
    ("PhalaRegistry", "ParachainIdMismatch"): "The worker was set up for another chain.",
    ("PhalaRegistry", "InvalidIASSigningCert"): "The attestation signing certificate is invalid.",
    ("PhalaRegistry", "InvalidRuntimeInfoHash"): "The attested runtime info hash does not match.",
    ("PhalaRegistry", "PRuntimeRejected"): "This pRuntime version is not allowed.",
    ("PhalaRegistry", "WorkerNotFound"): "No registered worker with this public key.",
    ("PhalaRegistry", "InvalidSignature"): "The signature does not verify.",
    ("PhalaComputation", "CoolDownNotReady"): "The cool-down period has not passed yet.",
    ("PhalaComputation", "InsufficientStake"): "The stake is below the worker's minimum.",
    ("PhalaComputation", "TooMuchStake"): "The stake is above the allowed maximum.",
    ("PhalaComputation", "BenchmarkTooLow"): "The worker's benchmark score is too low.",
    ("PhalaComputation", "WorkerNotBound"): "The worker is not bound to a session.",
    ("PhalaComputation", "SessionNotBound"): "The session is not bound to a worker.",
    ("PhalaComputation", "WorkerNotComputing"): "The worker is not computing.",
    ("PhalaComputation", "BadSender"): "Only the worker's operator may do this.",
    ("PhalaStakePoolv2", "WorkerNotRegistered"): "The worker is not registered.",
    ("PhalaStakePoolv2", "BenchmarkMissing"): "The worker has no initial benchmark score yet.",
    ("PhalaStakePoolv2", "WorkerExists"): "The worker is already in this pool.",
    ("PhalaStakePoolv2", "WorkerDoesNotExist"): "The worker is not in this pool.",
    ("PhalaStakePoolv2", "WorkerInAnotherPool"): "The worker is bound to another pool.",
    ("PhalaStakePoolv2", "UnauthorizedOperator"): "The signer is not the worker's operator.",
    ("PhalaStakePoolv2", "UnauthorizedPoolOwner"): "The signer does not own the pool.",
    ("PhalaStakePoolv2", "PoolDoesNotExist"): "No pool with this id.",
    ("PhalaStakePoolv2", "InsufficientFreeStake"): "The pool's free stake is too low.",
    ("PhalaStakePoolv2", "FailedToBindSessionAndWorker"): "The worker could not be bound.",
    ("PhalaStakePoolv2", "WorkersExceedLimit"): "The pool has the maximum number of workers.",
    ("PhalaStakePoolv2", "CannotRestartWithLessStake"): "A restart needs more stake than before.",
    ("PhalaStakePoolv2", "WorkerIsNotReady"): "The worker's session is not in the Ready state.",
    ("PhalaStakePoolv2", "InsufficientContribution"): "The contribution is below the minimum.",
    ("PhalaStakePoolv2", "StakeExceedsCapacity"): "The contribution would exceed the pool cap.",
    ("PhalaStakePoolv2", "InadequateCapacity"): "The cap is below the pool's current stake.",
    ("PhalaWrappedBalances", "UnwrapAmountExceedsAvaliableStake"): "Not that much to unwrap.",
    ("Assets", "BalanceLow"): "The asset balance is too low.",
}
