// ort_bench: the ONNX Runtime side of `make bench` (tests/bench/run_bench.py).
// Loads an exported Fastformer (tests/bench/ort_export.py) into an
// onnxruntime-node session and answers the same stdin line protocol as
// bench_engine and torch_bench, so that the driver can interleave them:
//   info           -> ok onnxruntime VERSION threads T
//   fwd B L N      -> ok WALL 0 CPU     N runs on B x L bench ids (seconds; CPU = process CPU)
//   run JSON       -> ok {"pooled": [...], "probabilities": [...]} for the ids [[...], ...]
//   quit
// Ids are bench_engine.c's bench_id(s, t, V), so both time the same inputs.
//
// usage: node ort_bench.mjs --ort-dir DIR --model FILE.onnx --vocab V --threads T
//   --ort-dir is where `npm install onnxruntime-node` put node_modules (build/bench/ort).
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';

function parseArgs(argv) {
    const args = {};
    for (let i = 0; i < argv.length; i += 2) {
        if (!argv[i].startsWith('--') || i + 1 >= argv.length)
            throw new Error(`bad argument '${argv[i]}'`);
        args[argv[i].slice(2)] = argv[i + 1];
    }
    for (const key of ['ort-dir', 'model', 'vocab', 'threads'])
        if (!(key in args))
            throw new Error(`missing --${key}`);
    return args;
}

// The same function as bench_engine.c's bench_id: uint32 arithmetic.
function benchId(s, t, vocabSize) {
    let x = (Math.imul(s, 1000003) + Math.imul(t, 7919) + 12345) >>> 0;
    x = Math.imul(x, 2654435761) >>> 0;
    x = (x ^ (x >>> 16)) >>> 0;
    return 1 + (x % (vocabSize - 1));
}

function idsTensor(ort, rows) {
    const batch = rows.length, length = rows[0].length;
    const data = new BigInt64Array(batch * length);
    rows.forEach((row, s) => {
        if (row.length !== length)
            throw new Error('rows of different lengths (pad with 0)');
        row.forEach((id, t) => { data[s * length + t] = BigInt(id); });
    });
    return new ort.Tensor('int64', data, [batch, length]);
}

// Feeds per batch x length, built once: the timed loop does only session.run.
function benchFeeds(ort, cache, vocabSize, batch, length) {
    const key = `${batch}x${length}`;
    if (!cache.has(key)) {
        const rows = Array.from({ length: batch },
            (_, s) => Array.from({ length }, (_, t) => benchId(s, t, vocabSize)));
        cache.set(key, { input_ids: idsTensor(ort, rows) });
    }
    return cache.get(key);
}

function cpuSeconds() {
    const u = process.cpuUsage(); // getrusage of the whole process: every ORT thread
    return (u.user + u.system) / 1e6;
}

async function command(ort, session, state, line) {
    const words = line.trim().split(/\s+/);
    switch (words[0]) {
    case 'info':
        return `ok onnxruntime ${state.version} threads ${state.threads}`;
    case 'fwd': {
        const [batch, length, reps] = words.slice(1, 4).map(Number);
        if (!(batch >= 1 && length >= 1 && reps >= 1))
            throw new Error(`bad command: ${line.trim()}`);
        const feeds = benchFeeds(ort, state.feeds, state.vocabSize, batch, length);
        const t0 = process.hrtime.bigint(), c0 = cpuSeconds();
        for (let i = 0; i < reps; i++)
            await session.run(feeds);
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        return `ok ${wall.toFixed(9)} 0 ${(cpuSeconds() - c0).toFixed(9)}`;
    }
    case 'run': {
        const rows = JSON.parse(line.trim().slice(3));
        const out = await session.run({ input_ids: idsTensor(ort, rows) });
        return 'ok ' + JSON.stringify({ pooled: Array.from(out.pooled.data),
                                        probabilities: Array.from(out.probabilities.data) });
    }
    default:
        throw new Error(`bad command: ${line.trim()}`);
    }
}

async function main() {
    const args = parseArgs(process.argv.slice(2));
    const require = createRequire(path.join(path.resolve(args['ort-dir']), 'package.json'));
    const ort = require('onnxruntime-node');
    const threads = Number(args.threads);
    const session = await ort.InferenceSession.create(args.model, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
    });
    const state = { threads, vocabSize: Number(args.vocab), feeds: new Map(),
                    version: require('onnxruntime-node/package.json').version };
    const rl = readline.createInterface({ input: process.stdin, terminal: false });
    for await (const line of rl) {
        if (line.trim() === 'quit')
            break;
        if (!line.trim())
            continue;
        let reply;
        try {
            reply = await command(ort, session, state, line);
        } catch (e) {
            reply = `error ${String(e.message || e).split('\n')[0]}`;
        }
        process.stdout.write(reply + '\n');
    }
    rl.close();
}

main().catch((e) => {
    process.stderr.write(`ort_bench: ${e.message || e}\n`);
    process.exit(1);
});
