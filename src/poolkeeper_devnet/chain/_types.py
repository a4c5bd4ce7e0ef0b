"""The devnet runtime's named types, declared with Khala's paths, field names and variant indices.

Clients decode the devnet with the metadata it serves, so these shapes are what make the
devnet's storage, calls and events look like Khala's. Keys are the names used in type
expressions (usually the last path segment; renamed where two paths share one). The pallets'
own Call/Event/Error enums are declared with the pallets in `_metadata_pallets.py`.

Devnet deviations from the 2023 Khala metadata (both from current Phala source):
`AttestationReport::SgxDcap` (variant 1) with its `Collateral`, and `AttestationProvider::Dcap` (2).
"""

from __future__ import annotations

from poolkeeper_devnet.chain._typereg import (
    Decl,
    VariantDecl,
    enum,
    enum_of,
    parse_expr,
    struct,
)

_U8 = parse_expr("u8")
_ERA = enum_of(
    "sp_runtime::generic::era::Era",
    [VariantDecl("Immortal", 0, ())]
    + [VariantDecl(f"Mortal{i}", i, ((None, _U8),)) for i in range(1, 256)],
)

TYPES: dict[str, Decl] = {
    # ------------------------------------------------------------------ primitives of the chain
    "AccountId32": struct("sp_core::crypto::AccountId32", "[u8; 32]"),
    "H256": struct("primitive_types::H256", "[u8; 32]"),
    "Public": struct("sp_core::sr25519::Public", "[u8; 32]"),
    "Sr25519Signature": struct("sp_core::sr25519::Signature", "[u8; 64]"),
    "Ed25519Signature": struct("sp_core::ed25519::Signature", "[u8; 64]"),
    "EcdsaSignature": struct("sp_core::ecdsa::Signature", "[u8; 65]"),
    "GrandpaAuthorityId": struct("sp_consensus_grandpa::app::Public", "Ed25519Public"),
    "Ed25519Public": struct("sp_core::ed25519::Public", "[u8; 32]"),
    "Permill": struct("sp_arithmetic::per_things::Permill", "u32"),
    "FixedU128": struct("sp_arithmetic::fixed_point::FixedU128", "u128"),
    "ParaId": struct("polkadot_parachain::primitives::Id", "u32"),
    "HeadData": struct("polkadot_parachain::primitives::HeadData", "Vec<u8>"),
    "PersistedValidationData": struct(
        "polkadot_primitives::v4::PersistedValidationData<H, N>",
        "parent_head: HeadData, relay_parent_number: u32, relay_parent_storage_root: H256,"
        " max_pov_size: u32",
    ),
    "Weight": struct(
        "sp_weights::weight_v2::Weight", "ref_time: Compact<u64>, proof_size: Compact<u64>"
    ),
    "MultiAddress": enum(
        "sp_runtime::multiaddress::MultiAddress<AccountId, AccountIndex>",
        "Id(AccountId), Index(Compact<AccountIndex>), Raw(Vec<u8>), Address32([u8; 32]),"
        " Address20([u8; 20])",
    ),
    "MultiSignature": enum(
        "sp_runtime::MultiSignature",
        "Ed25519(Ed25519Signature), Sr25519(Sr25519Signature), Ecdsa(EcdsaSignature)",
    ),
    # ------------------------------------------------------------------ frame_system
    "AccountInfo": struct(
        "frame_system::AccountInfo<Index, AccountData>",
        "nonce: Index, consumers: u32, providers: u32, sufficients: u32, data: AccountData",
    ),
    "AccountData": struct(
        "pallet_balances::types::AccountData<Balance>",
        "free: Balance, reserved: Balance, frozen: Balance, flags: ExtraFlags",
    ),
    "ExtraFlags": struct("pallet_balances::types::ExtraFlags", "u128"),
    "PerDispatchClass": struct(
        "frame_support::dispatch::PerDispatchClass<T>", "normal: T, operational: T, mandatory: T"
    ),
    "Digest": struct("sp_runtime::generic::digest::Digest", "logs: Vec<DigestItem>"),
    "DigestItem": enum(
        "sp_runtime::generic::digest::DigestItem",
        "PreRuntime=6([u8; 4], Vec<u8>), Consensus=4([u8; 4], Vec<u8>), Seal=5([u8; 4], Vec<u8>),"
        " Other=0(Vec<u8>), RuntimeEnvironmentUpdated=8",
    ),
    "EventRecord": struct(
        "frame_system::EventRecord<E, T>", "phase: Phase, event: E, topics: Vec<T>"
    ),
    "Phase": enum("frame_system::Phase", "ApplyExtrinsic(u32), Finalization, Initialization"),
    "LastRuntimeUpgradeInfo": struct(
        "frame_system::LastRuntimeUpgradeInfo", "spec_version: Compact<u32>, spec_name: str"
    ),
    "DispatchInfo": struct(
        "frame_support::dispatch::DispatchInfo",
        "weight: Weight, class: DispatchClass, pays_fee: Pays",
    ),
    "DispatchClass": enum(
        "frame_support::dispatch::DispatchClass", "Normal, Operational, Mandatory"
    ),
    "Pays": enum("frame_support::dispatch::Pays", "Yes, No"),
    "DispatchError": enum(
        "sp_runtime::DispatchError",
        "Other, CannotLookup, BadOrigin, Module(ModuleError), ConsumerRemaining, NoProviders,"
        " TooManyConsumers, Token(TokenError), Arithmetic(ArithmeticError),"
        " Transactional(TransactionalError), Exhausted, Corruption, Unavailable",
    ),
    "ModuleError": struct("sp_runtime::ModuleError", "index: u8, error: [u8; 4]"),
    "TokenError": enum(
        "sp_runtime::TokenError",
        "FundsUnavailable, OnlyProvider, BelowMinimum, CannotCreate, UnknownAsset, Frozen,"
        " Unsupported, CannotCreateHold, NotExpendable",
    ),
    "ArithmeticError": enum(
        "sp_arithmetic::ArithmeticError", "Underflow, Overflow, DivisionByZero"
    ),
    "TransactionalError": enum("sp_runtime::TransactionalError", "LimitReached, NoLayer"),
    "BlockWeights": struct(
        "frame_system::limits::BlockWeights",
        "base_block: Weight, max_block: Weight, per_class: PerDispatchClass<WeightsPerClass>",
    ),
    "WeightsPerClass": struct(
        "frame_system::limits::WeightsPerClass",
        "base_extrinsic: Weight, max_extrinsic: Option<Weight>, max_total: Option<Weight>,"
        " reserved: Option<Weight>",
    ),
    "BlockLength": struct("frame_system::limits::BlockLength", "max: PerDispatchClass<u32>"),
    "RuntimeDbWeight": struct("sp_weights::RuntimeDbWeight", "read: u64, write: u64"),
    "RuntimeVersion": struct(
        "sp_version::RuntimeVersion",
        "spec_name: str, impl_name: str, authoring_version: u32, spec_version: u32,"
        " impl_version: u32, apis: Cow<Vec<([u8; 8], u32)>>, transaction_version: u32,"
        " state_version: u8",
    ),
    # ------------------------------------------------------------------ extrinsic format
    "UncheckedExtrinsic": struct(
        "sp_runtime::generic::unchecked_extrinsic::UncheckedExtrinsic<Address, Call, Signature,"
        " Extra>",
        "Vec<u8>",
    ),
    "Era": _ERA,
    "CheckNonZeroSender": struct(
        "frame_system::extensions::check_non_zero_sender::CheckNonZeroSender<T>"
    ),
    "CheckSpecVersion": struct("frame_system::extensions::check_spec_version::CheckSpecVersion<T>"),
    "CheckTxVersion": struct("frame_system::extensions::check_tx_version::CheckTxVersion<T>"),
    "CheckGenesis": struct("frame_system::extensions::check_genesis::CheckGenesis<T>"),
    "CheckMortality": struct("frame_system::extensions::check_mortality::CheckMortality<T>", "Era"),
    "CheckNonce": struct("frame_system::extensions::check_nonce::CheckNonce<T>", "Compact<u32>"),
    "CheckWeight": struct("frame_system::extensions::check_weight::CheckWeight<T>"),
    "CheckMqSequence": struct("phala_pallets::mq::check_seq::CheckMqSequence<T>"),
    "ChargeTransactionPayment": struct(
        "pallet_transaction_payment::ChargeTransactionPayment<T>", "Compact<u128>"
    ),
    "Runtime": struct("khala_parachain_runtime::Runtime"),
    # ------------------------------------------------------------------ Balances / payment
    "BalanceStatus": enum("frame_support::traits::tokens::misc::BalanceStatus", "Free, Reserved"),
    "BalanceLock": struct(
        "pallet_balances::types::BalanceLock<Balance>",
        "id: [u8; 8], amount: Balance, reasons: Reasons",
    ),
    "Reasons": enum("pallet_balances::types::Reasons", "Fee, Misc, All"),
    "ReserveData": struct(
        "pallet_balances::types::ReserveData<ReserveIdentifier, Balance>",
        "id: ReserveIdentifier, amount: Balance",
    ),
    "IdAmount": struct("pallet_balances::types::IdAmount<Id, Balance>", "id: Id, amount: Balance"),
    "Releases": enum("pallet_transaction_payment::Releases", "V1Ancient, V2"),
    # ------------------------------------------------------------------ Proxy
    "ProxyType": enum(
        "khala_parachain_runtime::ProxyType",
        "Any, NonTransfer, CancelProxy, Governance, Collator, StakePoolManager",
    ),
    "ProxyDefinition": struct(
        "pallet_proxy::ProxyDefinition<AccountId, ProxyType, BlockNumber>",
        "delegate: AccountId, proxy_type: ProxyType, delay: BlockNumber",
    ),
    "Announcement": struct(
        "pallet_proxy::Announcement<AccountId, Hash, BlockNumber>",
        "real: AccountId, call_hash: Hash, height: BlockNumber",
    ),
    # ------------------------------------------------------------------ PhalaMq
    "SignedMessage": struct(
        "phala_mq::types::SignedMessage", "message: Message, sequence: u64, signature: Vec<u8>"
    ),
    "Message": struct(
        "phala_mq::types::Message", "sender: MessageOrigin, destination: Topic, payload: Vec<u8>"
    ),
    "MessageOrigin": enum(
        "phala_mq::types::MessageOrigin",
        "Pallet(Vec<u8>), Contract(H256), Worker(Public), AccountId(H256), MultiLocation(Vec<u8>),"
        " Gatekeeper, Cluster(H256), Reserved=255",
    ),
    "Topic": struct("phala_mq::types::Topic", "Vec<u8>"),
    # ------------------------------------------------------------------ PhalaRegistry
    "WorkerRegistrationInfo": struct(
        "phala_types::WorkerRegistrationInfo<AccountId>",
        "version: u32, machine_id: Vec<u8>, pubkey: Public, ecdh_pubkey: Public,"
        " genesis_block_hash: H256, features: Vec<u32>, operator: Option<AccountId>",
    ),
    "WorkerRegistrationInfoV2": struct(
        "phala_types::WorkerRegistrationInfoV2<AccountId>",
        "version: u32, machine_id: Vec<u8>, pubkey: Public, ecdh_pubkey: Public,"
        " genesis_block_hash: H256, features: Vec<u32>, operator: Option<AccountId>,"
        " para_id: u32, max_consensus_version: u32",
    ),
    "Attestation": enum(
        "phala_pallets::utils::attestation_legacy::Attestation",
        "SgxIas{ra_report: Vec<u8>, signature: Vec<u8>, raw_signing_cert: Vec<u8>}",
    ),
    # DCAP: devnet extension (Khala 2023 has SgxIas only).
    "AttestationReport": enum(
        "phala_types::AttestationReport",
        "SgxIas{ra_report: Vec<u8>, signature: Vec<u8>, raw_signing_cert: Vec<u8>},"
        " SgxDcap{quote: Vec<u8>, collateral: Option<Collateral>}",
    ),
    "Collateral": enum("sgx_attestation::types::Collateral", "SgxV30(SgxV30QuoteCollateral)"),
    "SgxV30QuoteCollateral": struct(
        "sgx_attestation::types::SgxV30QuoteCollateral",
        "pck_crl_issuer_chain: str, root_ca_crl: str, pck_crl: str, tcb_info_issuer_chain: str,"
        " tcb_info: str, tcb_info_signature: Vec<u8>, qe_identity_issuer_chain: str,"
        " qe_identity: str, qe_identity_signature: Vec<u8>",
    ),
    # Dcap: devnet extension (Khala 2023 has Root and Ias only).
    "AttestationProvider": enum("phala_types::AttestationProvider", "Root, Ias, Dcap"),
    "WorkerEndpointPayload": struct(
        "phala_types::WorkerEndpointPayload",
        "pubkey: Public, versioned_endpoints: VersionedWorkerEndpoints, signing_time: u64",
    ),
    "VersionedWorkerEndpoints": enum("phala_types::VersionedWorkerEndpoints", "V1(Vec<str>)"),
    "WorkerInfoV2": struct(
        "phala_pallets::registry::pallet::WorkerInfoV2<AccountId>",
        "pubkey: Public, ecdh_pubkey: Public, runtime_version: u32, last_updated: u64,"
        " operator: Option<AccountId>, attestation_provider: Option<AttestationProvider>,"
        " confidence_level: u8, initial_score: Option<u32>, features: Vec<u32>",
    ),
    "KnownConsensusVersion": struct(
        "phala_pallets::registry::pallet::KnownConsensusVersion", "version: u32, count: u32"
    ),
    # ------------------------------------------------------------------ PhalaComputation
    "TokenomicParameters": struct(
        "phala_types::messaging::TokenomicParameters",
        "pha_rate: u128, rho: u128, budget_per_block: u128, v_max: u128, cost_k: u128,"
        " cost_b: u128, slash_rate: u128, treasury_ratio: u128, heartbeat_window: u32,"
        " rig_k: u128, rig_b: u128, re: u128, k: u128, kappa: u128",
    ),
    "SessionInfo": struct(
        "phala_pallets::compute::computation::pallet::SessionInfo",
        "state: WorkerState, ve: u128, v: u128, v_updated_at: u64, benchmark: Benchmark,"
        " cool_down_start: u64, stats: SessionStats",
    ),
    "WorkerState": enum(
        "phala_pallets::compute::computation::pallet::WorkerState",
        "Ready, WorkerIdle, _Unused, WorkerUnresponsive, WorkerCoolingDown",
    ),
    "Benchmark": struct(
        "phala_pallets::compute::computation::pallet::Benchmark",
        "p_init: u32, p_instant: u32, iterations: u64, working_start_time: u64,"
        " challenge_time_last: u64",
    ),
    "SessionStats": struct(
        "phala_pallets::compute::computation::pallet::SessionStats", "total_reward: u128"
    ),
    # ------------------------------------------------------------------ pools
    "PoolProxy": enum(
        "phala_pallets::compute::pool_proxy::PoolProxy<AccountId, Balance>",
        "StakePool(StakePool<AccountId, Balance>), Vault(Vault<AccountId, Balance>)",
    ),
    "StakePool": struct(
        "phala_pallets::compute::pool_proxy::StakePool<AccountId, Balance>",
        "basepool: BasePool<AccountId, Balance>, payout_commission: Option<Permill>,"
        " cap: Option<Balance>, workers: Vec<Public>, cd_workers: Vec<Public>,"
        " lock_account: AccountId, owner_reward_account: AccountId",
    ),
    "Vault": struct(
        "phala_pallets::compute::pool_proxy::Vault<AccountId, Balance>",
        "basepool: BasePool<AccountId, Balance>, last_share_price_checkpoint: Balance,"
        " commission: Option<Permill>, owner_shares: Balance, invest_pools: Vec<u64>",
    ),
    "BasePool": struct(
        "phala_pallets::compute::base_pool::pallet::BasePool<AccountId, Balance>",
        "pid: u64, owner: AccountId, total_shares: Balance, total_value: Balance,"
        " withdraw_queue: Vec<WithdrawInfo<AccountId>>, value_subscribers: Vec<u64>, cid: u32,"
        " pool_account_id: AccountId",
    ),
    "WithdrawInfo": struct(
        "phala_pallets::compute::base_pool::pallet::WithdrawInfo<AccountId>",
        "user: AccountId, start_time: u64, nft_id: u32",
    ),
    "FinanceAccount": struct(
        "phala_pallets::compute::wrapped_balances::pallet::FinanceAccount<Balance>",
        "invest_pools: Vec<(u64, u32)>, locked: Balance",
    ),
    # ------------------------------------------------------------------ Assets
    "AssetDetails": struct(
        "pallet_assets::types::AssetDetails<Balance, AccountId, DepositBalance>",
        "owner: AccountId, issuer: AccountId, admin: AccountId, freezer: AccountId,"
        " supply: Balance, deposit: DepositBalance, min_balance: Balance, is_sufficient: bool,"
        " accounts: u32, sufficients: u32, approvals: u32, status: AssetStatus",
    ),
    "AssetStatus": enum("pallet_assets::types::AssetStatus", "Live, Frozen, Destroying"),
    "AssetAccount": struct(
        "pallet_assets::types::AssetAccount<Balance, DepositBalance, Extra>",
        "balance: Balance, is_frozen: bool, reason: ExistenceReason<DepositBalance>, extra: Extra",
    ),
    "ExistenceReason": enum(
        "pallet_assets::types::ExistenceReason<Balance>",
        "Consumer, Sufficient, DepositHeld(Balance), DepositRefunded",
    ),
    "Approval": struct(
        "pallet_assets::types::Approval<Balance, DepositBalance>",
        "amount: Balance, deposit: DepositBalance",
    ),
    "AssetMetadata": struct(
        "pallet_assets::types::AssetMetadata<DepositBalance, BoundedString>",
        "deposit: DepositBalance, name: BoundedString, symbol: BoundedString, decimals: u8,"
        " is_frozen: bool",
    ),
}
