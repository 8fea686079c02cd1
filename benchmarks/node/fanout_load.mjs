// Fan-out load generator: real y-websocket clients in one Node process (or, with
// `--provider hocuspocus`, @hocuspocus/provider clients, each on a socket of its own as
// separate browser tabs are).
//
//   node fanout_load.mjs fanout --url ws://127.0.0.1:PORT --readers 20 --edits 2000 \
//        --steady-edits 600 --rate 200 [--provider y-websocket|hocuspocus]
//   node fanout_load.mjs rooms --url ws://127.0.0.1:PORT --rooms 200
//
// Talks to the driver (benchmarks/fanout.py, benchmarks/hocuspocus.py) by lines on stdout:
//   @phase NAME start|end   the driver samples the server's CPU time at each
//   @measure NAME           the driver samples the server's RSS, then writes a line to stdin
//   @result {json}          the measurements
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { HocuspocusProvider } from '@hocuspocus/provider'

process.setMaxListeners(0) // one exit listener per provider
const args = process.argv.slice(2)
const scenario = args[0]
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`)
  return index >= 0 ? args[index + 1] : fallback
}
const url = option('url')
const providerKind = option('provider', 'y-websocket')
const timeoutMs = Number(option('timeout', '120')) * 1000

const stdin = createInterface({ input: process.stdin })
const stdinLines = stdin[Symbol.asyncIterator]()
const say = (line) => process.stdout.write(line + '\n')
const measure = async (name) => {
  say(`@measure ${name}`)
  await stdinLines.next()
}

const percentile = (values, p) => {
  if (values.length === 0) return null
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

const tick = () => new Promise((resolve) => setImmediate(resolve))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A y-websocket client; counts connections so reconnects show up. */
const connectWebsocket = (room, name) => {
  const doc = new Y.Doc()
  const started = performance.now()
  const provider = new WebsocketProvider(url, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    params: { id: name, name, kind: 'person' },
    maxBackoffTime: 1000
  })
  provider.awareness.setLocalStateField('user', { name })
  const client = { doc, provider, connects: 0, syncedAt: null, started }
  provider.on('status', ({ status }) => {
    if (status === 'connected') client.connects += 1
  })
  client.synced = new Promise((resolve) => {
    provider.on('sync', (isSynced) => {
      if (isSynced && client.syncedAt === null) {
        client.syncedAt = performance.now()
        resolve()
      }
    })
  })
  return client
}

/** A Hocuspocus provider client; counts connections so reconnects show up. */
const connectHocuspocus = (room, name) => {
  const doc = new Y.Doc()
  const started = performance.now()
  const provider = new HocuspocusProvider({
    url,
    name: room,
    document: doc,
    WebSocketPolyfill: WebSocket,
    token: 'bench'
  })
  provider.setAwarenessField('user', { name })
  const client = { doc, provider, connects: 0, syncedAt: null, started }
  provider.on('connect', () => { client.connects += 1 })
  client.synced = new Promise((resolve) => {
    provider.on('synced', () => {
      if (client.syncedAt === null) {
        client.syncedAt = performance.now()
        resolve()
      }
    })
  })
  return client
}

const connect = providerKind === 'hocuspocus' ? connectHocuspocus : connectWebsocket

const withTimeout = (promise, what) => Promise.race([
  promise,
  sleep(timeoutMs).then(() => { throw new Error(`timed out after ${timeoutMs} ms: ${what}`) })
])

const destroy = (clients) => {
  for (const client of clients) {
    client.provider.destroy()
    client.doc.destroy()
  }
}

/** Writer appends one character per edit; each reader records when each edit arrived. */
const runEdits = async (writer, readers, edits, rate, label) => {
  const text = writer.doc.getText('text')
  const base = text.length
  const sent = new Float64Array(edits)
  const received = readers.map(() => new Float64Array(edits))
  const done = readers.map((reader, index) => new Promise((resolve) => {
    const readerText = reader.doc.getText('text')
    let seen = readerText.length - base
    const observer = () => {
      const now = performance.now()
      const length = readerText.length - base
      for (; seen < length && seen < edits; seen++) received[index][seen] = now
      if (seen >= edits) {
        readerText.unobserve(observer)
        resolve()
      }
    }
    readerText.observe(observer)
  }))
  say(`@phase ${label} start`)
  const begin = performance.now()
  for (let i = 0; i < edits; i++) {
    if (rate > 0) {
      const due = begin + (i * 1000) / rate
      const wait = due - performance.now()
      if (wait > 1) await sleep(wait)
    }
    sent[i] = performance.now()
    text.insert(text.length, 'x')
    if (rate <= 0) await tick()
  }
  await withTimeout(Promise.all(done), `${label}: every reader receives ${edits} edits`)
  const end = Math.max(...received.map((times) => times[edits - 1]))
  say(`@phase ${label} end`)
  const latencies = []
  for (const times of received) {
    for (let i = 0; i < edits; i++) latencies.push(times[i] - sent[i])
  }
  return {
    edits,
    seconds: (end - begin) / 1000,
    edits_per_second: edits / ((end - begin) / 1000),
    latency_ms_p50: percentile(latencies, 50),
    latency_ms_p99: percentile(latencies, 99)
  }
}

const fanout = async () => {
  const readersCount = Number(option('readers', '20'))
  const edits = Number(option('edits', '2000'))
  const steadyEdits = Number(option('steady-edits', '600'))
  const rate = Number(option('rate', '200'))
  const room = 'fanout/doc'
  const writer = connect(room, 'writer')
  await withTimeout(writer.synced, 'writer sync')
  const readers = Array.from({ length: readersCount }, (_, i) => connect(room, `reader-${i}`))
  await withTimeout(Promise.all(readers.map((r) => r.synced)), 'readers sync')
  const connectMs = readers.map((r) => r.syncedAt - r.started)
  const burst = await runEdits(writer, readers, edits, 0, 'burst')
  const steady = steadyEdits > 0 ? await runEdits(writer, readers, steadyEdits, rate, 'steady') : null
  const clients = [writer, ...readers]
  const result = {
    readers: readersCount,
    connect_ms_p50: percentile(connectMs, 50),
    connect_ms_p99: percentile(connectMs, 99),
    burst,
    steady: steady && { ...steady, rate },
    reconnects: clients.reduce((sum, c) => sum + Math.max(0, c.connects - 1), 0),
    converged: clients.every((c) => c.doc.getText('text').length === edits + steadyEdits)
  }
  destroy(clients)
  return result
}

const rooms = async () => {
  const roomCount = Number(option('rooms', '200'))
  await measure('empty')
  const begin = performance.now()
  const pairs = Array.from({ length: roomCount }, (_, i) => [
    connect(`room-${i}/doc`, `a-${i}`),
    connect(`room-${i}/doc`, `b-${i}`)
  ])
  const clients = pairs.flat()
  await withTimeout(Promise.all(clients.map((c) => c.synced)), 'every client sync')
  const allConnected = performance.now() - begin
  const connectMs = clients.map((c) => c.syncedAt - c.started)
  // one edit per room, from a to b, all rooms at once
  const latencies = []
  say('@phase rooms-edit start')
  await withTimeout(Promise.all(pairs.map(([a, b]) => new Promise((resolve) => {
    const text = b.doc.getText('text')
    const sentAt = performance.now()
    const observer = () => {
      if (text.length > 0) {
        latencies.push(performance.now() - sentAt)
        text.unobserve(observer)
        resolve()
      }
    }
    text.observe(observer)
    a.doc.getText('text').insert(0, 'hello')
  }))), 'every room delivers its edit')
  say('@phase rooms-edit end')
  await sleep(500) // let the server settle before sampling memory
  await measure('rooms')
  const result = {
    rooms: roomCount,
    clients: clients.length,
    all_connected_s: allConnected / 1000,
    connect_ms_p50: percentile(connectMs, 50),
    connect_ms_p99: percentile(connectMs, 99),
    edit_latency_ms_p50: percentile(latencies, 50),
    edit_latency_ms_p99: percentile(latencies, 99),
    reconnects: clients.reduce((sum, c) => sum + Math.max(0, c.connects - 1), 0)
  }
  destroy(clients)
  return result
}

const main = async () => {
  const scenarios = { fanout, rooms }
  if (!url || !(scenario in scenarios)) {
    console.error('usage: node fanout_load.mjs fanout|rooms --url ws://HOST:PORT [options]')
    process.exit(2)
  }
  const result = await scenarios[scenario]()
  say(`@result ${JSON.stringify(result)}`)
  await sleep(100)
  process.exit(0)
}

main().catch((error) => {
  console.error(error.stack || String(error))
  process.exit(1)
})
