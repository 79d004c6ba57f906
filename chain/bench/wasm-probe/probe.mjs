// Runs the WASM probe under Node's WebAssembly engine (V8, optimising JIT) and prints
// nanoseconds per verification. Usage: node probe.mjs <module.wasm> [iterations]
import { readFileSync } from 'node:fs';

const [, , path, iters = '50'] = process.argv;
const n = Number(iters);
const { instance } = await WebAssembly.instantiate(readFileSync(path), {});
// Warm up (lets V8 tier up to its optimising compiler).
const failures = instance.exports.run(3);
const start = process.hrtime.bigint();
instance.exports.run(n);
const ns = Number(process.hrtime.bigint() - start) / n;
console.log(`wasm (node ${process.version}): ${Math.round(ns)} ns per verification (${failures} expected failures)`);
