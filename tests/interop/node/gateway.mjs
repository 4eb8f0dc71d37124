// Drives the official Node Fabric Gateway client for fabricml's interop tests and benchmarks.
//
// node gateway.mjs CONFIG_JSON submit|evaluate FUNCTION [ARGS...]
// node gateway.mjs CONFIG_JSON bench FUNCTION TOTAL CONCURRENCY
//
// CONFIG_JSON: {"address", "tlsRoot", "serverName", "mspId", "certPath", "keyPath", "channel", "chaincode"}
import * as grpc from '@grpc/grpc-js';
import { connect, signers } from '@hyperledger/fabric-gateway';
import { createPrivateKey, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

const [configText, mode, fn, ...rest] = process.argv.slice(2);
const config = JSON.parse(configText);

const client = new grpc.Client(config.address, grpc.credentials.createSsl(readFileSync(config.tlsRoot)), {
    'grpc.ssl_target_name_override': config.serverName,
});
const gateway = connect({
    client,
    identity: { mspId: config.mspId, credentials: readFileSync(config.certPath) },
    signer: signers.newPrivateKeySigner(createPrivateKey(readFileSync(config.keyPath))),
    evaluateOptions: () => ({ deadline: Date.now() + 5000 }),
    endorseOptions: () => ({ deadline: Date.now() + 15000 }),
    submitOptions: () => ({ deadline: Date.now() + 5000 }),
    commitStatusOptions: () => ({ deadline: Date.now() + 60000 }),
});
const contract = gateway.getNetwork(config.channel).getContract(config.chaincode);
const text = (bytes) => Buffer.from(bytes).toString('utf8');

async function bench(total, concurrency) {
    const latencies = [];
    let next = 0;
    const worker = async () => {
        while (next < total) {
            next += 1;
            const started = process.hrtime.bigint();
            await contract.submitTransaction(fn, `bench-node-${randomUUID()}`, 'v');
            latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
        }
    };
    const started = process.hrtime.bigint();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    latencies.sort((a, b) => a - b);
    const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
    return { transactions: total, seconds, tps: total / seconds, p50_ms: pct(50), p99_ms: pct(99) };
}

try {
    let out;
    if (mode === 'submit') {
        out = { result: text(await contract.submitTransaction(fn, ...rest)) };
    } else if (mode === 'evaluate') {
        out = { result: text(await contract.evaluateTransaction(fn, ...rest)) };
    } else if (mode === 'bench') {
        out = await bench(Number(rest[0]), Number(rest[1]));
    } else {
        throw new Error(`unknown mode ${mode}; use submit, evaluate or bench`);
    }
    process.stdout.write(JSON.stringify(out) + '\n');
} catch (err) {
    process.stderr.write(`${err.constructor.name}: ${err.message}\n`);
    process.exitCode = 1;
} finally {
    gateway.close();
    client.close();
}
