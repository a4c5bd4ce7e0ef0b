// polkadot.js's default flows against a devnet chain, as a third-party client would run
// them: `node flows.mjs ws://127.0.0.1:PORT`. Prints one JSON line of what it saw (the
// Python test checks it against the chain) and exits 0; any failure, unhandled rejection
// or uncaught exception exits 1 with the reason on stderr.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';

const fail = (why) => {
  console.error(`polkadot.js flows: ${why instanceof Error ? why.stack : why}`);
  process.exit(1);
};
process.on('unhandledRejection', (reason) => fail(`unhandled rejection: ${reason}`));
process.on('uncaughtException', (error) => fail(`uncaught exception: ${error}`));
const watchdog = setTimeout(() => fail('timed out'), Number(process.env.FLOWS_TIMEOUT_MS || 120000));

const url = process.argv[2];
if (!url) fail('usage: node flows.mjs ws://host:port');

const check = (condition, what) => {
  if (!condition) throw new Error(`check failed: ${what}`);
};

/** The first `count` values a subscription delivers (then it is unsubscribed). */
async function take (subscribe, count) {
  const values = [];
  let unsubscribe = () => {};
  await new Promise((resolve, reject) => {
    subscribe((value) => {
      values.push(value);
      if (values.length === count) resolve();
    }).then((unsub) => { unsubscribe = unsub; }, reject);
  });
  unsubscribe();
  return values;
}

/** signAndSend with its defaults (nonce, mortal era, tip 0), watched until Finalized. */
async function sendAndFinalize (api, tx, pair) {
  const statuses = [];
  let unsubscribe = () => {};
  const result = await new Promise((resolve, reject) => {
    tx.signAndSend(pair, (update) => {
      const { status, dispatchError, events } = update;
      statuses.push(status.type);
      if (status.isInvalid || status.isDropped || status.isUsurped) {
        reject(new Error(`transaction ${status.type}`));
      } else if (status.isFinalized) {
        if (dispatchError) reject(new Error(`dispatch error ${dispatchError.toString()}`));
        else resolve({ block: status.asFinalized.toHex(), events });
      }
    }).then((unsub) => { unsubscribe = unsub; }, reject);
  });
  unsubscribe();
  return {
    ...result,
    statuses,
    events: result.events.map(({ event }) => `${event.section}.${event.method}`)
  };
}

async function main () {
  await cryptoWaitReady();
  const api = await ApiPromise.create({ provider: new WsProvider(url) });
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 30 });
  const alice = keyring.addFromUri('//Alice');
  const bob = keyring.addFromUri('//Bob');
  const charlie = keyring.addFromUri('//Charlie');
  const seen = {
    specName: api.runtimeVersion.specName.toString(),
    specVersion: api.runtimeVersion.specVersion.toNumber(),
    ss58Format: api.registry.chainSS58,
    genesisHash: api.genesisHash.toHex()
  };

  // follow new and finalized heads (chain_subscribeNewHead / chain_subscribeFinalizedHeads)
  const heads = await take((cb) => api.rpc.chain.subscribeNewHeads(cb), 3);
  seen.heads = heads.map((h) => h.number.toNumber());
  check(seen.heads[2] > seen.heads[0], `new heads advance: ${seen.heads}`);
  const finalized = await take((cb) => api.rpc.chain.subscribeFinalizedHeads(cb), 2);
  seen.finalized = finalized.map((h) => h.number.toNumber());
  check(seen.finalized[1] > seen.finalized[0], `finalized heads advance: ${seen.finalized}`);
  const derived = await take((cb) => api.derive.chain.subscribeNewHeads(cb), 1);
  seen.derivedHead = derived[0].number.toNumber();

  // Phala storage, decoded by polkadot.js from the served metadata
  const pools = await api.query.phalaBasePool.pools.entries();
  seen.pools = pools.map(([key, value]) => [key.args[0].toNumber(), Object.keys(value.unwrap().toJSON())[0]]);
  const workers = await api.query.phalaRegistry.workers.entries();
  seen.workers = workers.map(([key]) => key.args[0].toHex()).sort();
  const assignments = await api.query.phalaStakePoolv2.workerAssignments.entries();
  seen.assignments = assignments.map(([key, pid]) => [key.args[0].toHex(), pid.unwrap().toNumber()]).sort();
  const bindings = await api.query.phalaComputation.workerBindings.entries();
  const sessions = await api.query.phalaComputation.sessions.entries();
  seen.sessions = sessions.map(([key, info]) => [key.args[0].toString(), info.unwrap().state.toString()]).sort();
  seen.bindings = bindings.map(([key, session]) => [key.args[0].toHex(), session.unwrap().toString()]).sort();
  seen.coolDown = (await api.query.phalaComputation.coolDownPeriod()).toNumber();

  // queryMulti, once and as a subscription
  const [aliceAccount, bobAccount] = await api.queryMulti([
    [api.query.system.account, alice.address],
    [api.query.system.account, bob.address]
  ]);
  seen.bobFreeBefore = bobAccount.data.free.toString();
  check(aliceAccount.data.free.gtn(0), 'Alice has funds');
  const multi = await take((cb) => api.queryMulti([
    api.query.timestamp.now,
    [api.query.system.account, charlie.address]
  ], cb), 1);
  seen.multiSubscribed = multi[0].length;

  // a storage subscription that sees the transfer below
  const amount = 10n ** 12n;
  let unsubscribeBob = () => {};
  const bobChanged = new Promise((resolve, reject) => {
    api.query.system.account(bob.address, (account) => {
      if (account.data.free.toString() !== seen.bobFreeBefore) resolve(account.data.free.toString());
    }).then((unsub) => { unsubscribeBob = unsub; }, reject);
  });

  const transfer = api.tx.balances.transferKeepAlive(bob.address, amount);
  seen.paymentInfo = (await transfer.paymentInfo(alice)).partialFee.toString();
  seen.transfer = await sendAndFinalize(api, transfer, alice);
  seen.bobFreeSubscribed = await bobChanged;
  unsubscribeBob();
  check(BigInt(seen.bobFreeSubscribed) - BigInt(seen.bobFreeBefore) === amount, 'Bob received the transfer');

  const batch = api.tx.utility.batch([
    api.tx.balances.transferKeepAlive(charlie.address, amount),
    api.tx.system.remark('0x706f6f6c6b6565706572')
  ]);
  seen.batch = await sendAndFinalize(api, batch, alice);
  check(seen.batch.events.includes('utility.BatchCompleted'), `batch completed: ${seen.batch.events}`);
  seen.aliceNonce = (await api.rpc.system.accountNextIndex(alice.address)).toNumber();

  await api.disconnect();
  clearTimeout(watchdog);
  console.log(JSON.stringify(seen));
  process.exit(0);
}

main().catch(fail);
