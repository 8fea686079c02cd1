// Yjs side of benchmarks/traces.py: replays one editing trace through a Y.XmlText (inside an
// XmlElement of the XmlFragment "default", as meshdoc stores rich text) and prints
// {"ops", "seconds", "ok"} as JSON: CPU seconds, the best of REPEAT runs (default 3, so the
// JIT is warm).
// Usage: node traces_yjs.mjs TRACE.json.gz [REPEAT]
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import * as Y from 'yjs'

// CPU time of the whole process (all threads, so garbage collection counts), in seconds.
function cpuSeconds () {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1e6
}

if (process.argv[2] === '--edits') {
  // {"update": base64 document, "edits": [[pos, text], ...], "warmup": n}: n untimed edits,
  // then each edit in its own transaction; prints {"seconds"} for the timed edits.
  const job = JSON.parse(readFileSync(process.argv[3], 'utf8'))
  const doc = new Y.Doc()
  Y.applyUpdate(doc, Buffer.from(job.update, 'base64'))
  const text = doc.getXmlFragment('default').get(0).get(0)
  const warmup = job.warmup || 1
  for (const [pos, s] of job.edits.slice(0, warmup)) doc.transact(() => text.insert(pos, s))
  const start = cpuSeconds()
  for (const [pos, s] of job.edits.slice(warmup)) doc.transact(() => text.insert(pos, s))
  process.stdout.write(JSON.stringify({ seconds: cpuSeconds() - start }) + '\n')
  process.exit(0)
}

const trace = JSON.parse(gunzipSync(readFileSync(process.argv[2])).toString('utf8'))
const ops = trace.txns.reduce((n, txn) => n + txn.patches.length, 0)

function textOf (doc) {
  return doc.getXmlFragment('default').get(0).get(0)
}

function baseUpdate () {
  const doc = new Y.Doc()
  doc.clientID = 1 << 30
  const p = new Y.XmlElement('p')
  doc.getXmlFragment('default').insert(0, [p])
  p.insert(0, [new Y.XmlText()])
  if (trace.startContent) textOf(doc).insert(0, trace.startContent)
  return Y.encodeStateAsUpdate(doc)
}

function applyPatches (doc, text, patches, origin = null) {
  doc.transact(() => {
    for (const [pos, del, ins] of patches) {
      if (del > 0) text.delete(pos, del)
      if (ins) text.insert(pos, ins)
    }
  }, origin)
}

function sequential () {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, baseUpdate())
  const text = textOf(doc)
  const start = cpuSeconds()
  for (const txn of trace.txns) applyPatches(doc, text, txn.patches)
  const seconds = cpuSeconds() - start
  return { seconds, result: text.toString() }
}

// One replica per agent: a transaction runs on its agent's replica once the replica has
// merged every update in the transaction's causal history (an agent's own transactions are
// causally ordered, so "how many of agent b's transactions" describes a history).
function concurrent () {
  const n = trace.numAgents
  const base = baseUpdate()
  const replicas = []
  for (let a = 0; a < n; a++) {
    const doc = new Y.Doc()
    doc.clientID = a + 1
    Y.applyUpdate(doc, base)
    const r = { doc, text: textOf(doc), applied: new Array(n).fill(0), last: null }
    doc.on('update', (update, origin) => { if (origin === 'local') r.last = update })
    replicas.push(r)
  }
  const updates = Array.from({ length: n }, () => [])
  const seen = [] // per txn: how many txns of each agent its history holds
  const start = cpuSeconds()
  trace.txns.forEach((txn, i) => {
    const target = new Array(n).fill(0)
    for (const p of txn.parents) for (let b = 0; b < n; b++) target[b] = Math.max(target[b], seen[p][b])
    const r = replicas[txn.agent]
    const missing = [] // merged in trace order, so no update waits for another
    for (let b = 0; b < n; b++) {
      if (b === txn.agent) continue
      for (let k = r.applied[b]; k < target[b]; k++) missing.push(updates[b][k])
      r.applied[b] = Math.max(r.applied[b], target[b])
    }
    missing.sort((x, y) => x.index - y.index)
    for (const { update } of missing) Y.applyUpdate(r.doc, update)
    if (r.applied[txn.agent] !== target[txn.agent]) throw new Error(`txn ${i}: agent history out of order`)
    r.last = null
    applyPatches(r.doc, r.text, txn.patches, 'local')
    updates[txn.agent].push({ index: i, update: r.last || new Uint8Array([0, 0]) })
    r.applied[txn.agent] += 1
    target[txn.agent] += 1
    seen.push(target)
  })
  const final = new Y.Doc()
  Y.applyUpdate(final, base)
  const taken = new Array(n).fill(0) // in trace order, so no update waits for another
  for (const txn of trace.txns) Y.applyUpdate(final, updates[txn.agent][taken[txn.agent]++].update)
  const seconds = cpuSeconds() - start
  return { seconds, result: textOf(final).toString() }
}

const repeat = Number(process.argv[3] || 3)
let best = Infinity
let ok = true
for (let k = 0; k < repeat; k++) {
  const { seconds, result } = trace.kind === 'concurrent' ? concurrent() : sequential()
  best = Math.min(best, seconds)
  ok = ok && result === trace.endContent
}
process.stdout.write(JSON.stringify({ ops, seconds: best, ok }) + '\n')
