// @phala/sdk's pRuntime client (PhactoryAPI over pRPC/protobuf) against one simulated
// pRuntime: `node phactory.mjs http://127.0.0.1:PORT before|after`. `before` (a fresh
// worker): GetInfo, and GetRuntimeInfo refused with an error the SDK decodes as a PrpcError.
// `after` (once initialized): GetInfo and GetRuntimeInfo. Prints one JSON line of what it
// decoded; any failure or unhandled rejection exits 1 with the reason on stderr.
// (The SDK's bundled protobuf has no InitRuntimeRequest, so initialization is the test's.)
import { createPruntimeClient } from '@phala/sdk';

const fail = (why) => {
  console.error(`phala-sdk phactory: ${why instanceof Error ? why.stack : why}`);
  process.exit(1);
};
process.on('unhandledRejection', (reason) => fail(`unhandled rejection: ${reason}`));
process.on('uncaughtException', (error) => fail(`uncaught exception: ${error}`));
setTimeout(() => fail('timed out'), 60000).unref();

const [url, phase] = process.argv.slice(2);
if (!url || !['before', 'after'].includes(phase)) fail('usage: node phactory.mjs URL before|after');

const hex = (bytes) => Buffer.from(bytes || []).toString('hex');

function infoOf (info) {
  return {
    initialized: info.initialized,
    registered: info.registered,
    genesisBlockHash: info.genesisBlockHash || null,
    publicKey: info.publicKey || null,
    ecdhPublicKey: info.ecdhPublicKey || null,
    headernum: Number(info.headernum),
    paraHeadernum: Number(info.paraHeadernum),
    blocknum: Number(info.blocknum),
    devMode: info.devMode,
    score: Number(info.score),
    version: info.version,
    canLoadChainState: info.canLoadChainState,
    systemPublicKey: info.system ? info.system.publicKey : null
  };
}

async function main () {
  const client = createPruntimeClient(url);
  const seen = { info: infoOf(await client.getInfo({})) };
  if (phase === 'before') {
    try {
      await client.getRuntimeInfo({});
      seen.error = null;
    } catch (error) {
      seen.error = String(error.message);
    }
  } else {
    const runtime = await client.getRuntimeInfo({});
    seen.runtimeInfo = {
      publicKey: hex(runtime.encodedPublicKey),
      ecdhPublicKey: hex(runtime.encodedEcdhPublicKey),
      genesisBlockHash: hex(runtime.encodedGenesisBlockHash),
      runtimeInfoBytes: runtime.encodedRuntimeInfo.length,
      attestation: runtime.attestation ? runtime.attestation.provider : null
    };
  }
  console.log(JSON.stringify(seen));
  process.exit(0);
}

main().catch(fail);
