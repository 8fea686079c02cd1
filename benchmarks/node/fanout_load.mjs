// Fan-out load generator: real y-websocket clients in one Node process (or, with
// `--provider hocuspocus`, @hocuspocus/provider clients, each on a socket of its own as
// separate browser tabs are).
//
//   node fanout_load.mjs fanout --url ws://127.0.0.1:PORT --readers 20 --edits 2000 \
//        --steady-edits 600 --rate 200 [--provider y-websocket|hocuspocus] \
//        [--reader-processes K] [--burst-yield N]
//   node fanout_load.mjs rooms --url ws://127.0.0.1:PORT --rooms 200
//
// By default the writer and its readers share this process, so the fan-out figures are
// bounded by one Node thread decoding every update for every reader. `--reader-processes K`
// spreads the readers over K child processes (this script again, `readers` scenario, over
// IPC) so that the server, not the client, is what saturates; times are then taken on the
// system-wide monotonic clock (`process.hrtime`), which every process shares.
// `--burst-yield N` lets the writer yield to its event loop after every N burst edits
// (1, the default, after each one: the writer types as fast as its own loop turns).
//
// Talks to the driver (benchmarks/fanout.py, benchmarks/hocuspocus.py) by lines on stdout:
//   @phase NAME start|end   the driver samples the server's CPU time at each
//   @measure NAME           the driver samples the server's RSS, then writes a line to stdin
//   @result {json}          the measurements
import { fork } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
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

/** Milliseconds on the system-wide monotonic clock, comparable across processes. */
const now = () => Number(process.hrtime.bigint()) / 1e6

let stdinLines = null
const say = (line) => process.stdout.write(line + '\n')
const measure = async (name) => {
  say(`@measure ${name}`)
  stdinLines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]()
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
  const started = now()
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
        client.syncedAt = now()
        resolve()
      }
    })
  })
  return client
}

/** A Hocuspocus provider client; counts connections so reconnects show up. */
const connectHocuspocus = (room, name) => {
  const doc = new Y.Doc()
  const started = now()
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
        client.syncedAt = now()
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

/**
 * Arm `readers` for the next `edits` edits: resolves with, per reader, the time each
 * edit arrived (`received[reader][edit]`).
 */
const armReaders = (readers, edits) => {
  const received = readers.map(() => new Array(edits).fill(0))
  return Promise.all(readers.map((reader, index) => new Promise((resolve) => {
    const readerText = reader.doc.getText('text')
    const base = readerText.length
    let seen = 0
    const observer = () => {
      const at = now()
      const length = readerText.length - base
      for (; seen < length && seen < edits; seen++) received[index][seen] = at
      if (seen >= edits) {
        readerText.unobserve(observer)
        resolve(received[index])
      }
    }
    readerText.observe(observer)
  })))
}

const readerStats = (readers) => ({
  reconnects: readers.reduce((sum, c) => sum + Math.max(0, c.connects - 1), 0),
  lengths: readers.map((c) => c.doc.getText('text').length)
})

/** Readers in this process. */
const localGroup = async (room, names) => {
  const readers = names.map((name) => connect(room, name))
  await withTimeout(Promise.all(readers.map((r) => r.synced)), 'readers sync')
  return {
    connectMs: readers.map((r) => r.syncedAt - r.started),
    arm: async (edits) => {
      const cpu = process.cpuUsage()
      const received = armReaders(readers, edits).then((times) => {
        const used = process.cpuUsage(cpu)
        return { times, cpuSeconds: (used.user + used.system) / 1e6 }
      })
      return { received }
    },
    stats: async () => readerStats(readers),
    destroy: async () => destroy(readers)
  }
}

/** Readers in a child process (`readers` scenario), driven over IPC. */
const childGroup = async (room, names) => {
  const child = fork(fileURLToPath(import.meta.url), [
    'readers', '--url', url, '--provider', providerKind, '--room', room,
    '--names', names.join(','), '--timeout', String(timeoutMs / 1000)
  ], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const replies = []
  const waiting = []
  child.on('message', (message) => {
    const next = waiting.shift()
    if (next) next(message)
    else replies.push(message)
  })
  const failed = new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`a reader process exited with ${code}`)))
  })
  failed.catch(() => {})
  const reply = (what) => withTimeout(Promise.race([
    replies.length > 0
      ? Promise.resolve(replies.shift())
      : new Promise((resolve) => waiting.push(resolve)),
    failed
  ]), what)
  const { connectMs } = await reply('reader process sync')
  return {
    remote: true,
    connectMs,
    arm: async (edits) => {
      child.send({ type: 'arm', edits })
      await reply('reader process armed')
      return { received: reply('reader process receives') }
    },
    stats: async () => {
      child.send({ type: 'stats' })
      return reply('reader process stats')
    },
    destroy: async () => {
      child.removeAllListeners('exit')
      child.send({ type: 'stop' })
    }
  }
}

/** The `readers` scenario: a child of `fanout`, answering its parent over IPC. */
const readersChild = async () => {
  const group = await localGroup(option('room'), option('names').split(','))
  process.send({ connectMs: group.connectMs })
  for await (const message of messages()) {
    if (message.type === 'arm') {
      const { received } = await group.arm(message.edits)
      process.send({ armed: true })
      received.then((result) => process.send(result))
    } else if (message.type === 'stats') {
      process.send(await group.stats())
    } else {
      await group.destroy()
      return null
    }
  }
}

async function * messages () {
  const queue = []
  let wake = null
  process.on('message', (message) => {
    queue.push(message)
    if (wake) wake()
  })
  while (true) {
    while (queue.length > 0) yield queue.shift()
    await new Promise((resolve) => { wake = resolve })
    wake = null
  }
}

/** Writer appends one character per edit; each reader records when each edit arrived. */
const runEdits = async (writer, groups, edits, rate, label, burstYield) => {
  const text = writer.doc.getText('text')
  const sent = new Float64Array(edits)
  const armed = await Promise.all(groups.map((group) => group.arm(edits)))
  const done = Promise.all(armed.map(({ received }) => received))
  say(`@phase ${label} start`)
  const cpu = process.cpuUsage()
  const begin = now()
  for (let i = 0; i < edits; i++) {
    if (rate > 0) {
      const due = begin + (i * 1000) / rate
      const wait = due - now()
      if (wait > 1) await sleep(wait)
    }
    sent[i] = now()
    text.insert(text.length, 'x')
    if (rate <= 0 && (i + 1) % burstYield === 0) await tick()
  }
  const results = await withTimeout(done, `${label}: every reader receives ${edits} edits`)
  const writerCpu = process.cpuUsage(cpu)
  const received = results.flatMap((result) => result.times)
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
    latency_ms_p99: percentile(latencies, 99),
    // CPU the load itself used: the writer's (to its last edit received) and the readers'
    writer_cpu_s: (writerCpu.user + writerCpu.system) / 1e6,
    client_cpu_s: (writerCpu.user + writerCpu.system) / 1e6 +
      results.reduce((sum, result, i) => sum + (groups[i].remote ? result.cpuSeconds : 0), 0)
  }
}

const fanout = async () => {
  const readersCount = Number(option('readers', '20'))
  const edits = Number(option('edits', '2000'))
  const steadyEdits = Number(option('steady-edits', '600'))
  const rate = Number(option('rate', '200'))
  const processes = Math.max(1, Number(option('reader-processes', '1')))
  const burstYield = Math.max(1, Number(option('burst-yield', '1')))
  const room = 'fanout/doc'
  const writer = connect(room, 'writer')
  await withTimeout(writer.synced, 'writer sync')
  const names = Array.from({ length: readersCount }, (_, i) => `reader-${i}`)
  const shares = Array.from({ length: processes }, (_, p) => names.filter((_, i) => i % processes === p))
  const groups = await Promise.all(
    processes === 1
      ? [localGroup(room, names)]
      : shares.filter((share) => share.length > 0).map((share) => childGroup(room, share))
  )
  const connectMs = groups.flatMap((group) => group.connectMs)
  const burst = await runEdits(writer, groups, edits, 0, 'burst', burstYield)
  const steady = steadyEdits > 0 ? await runEdits(writer, groups, steadyEdits, rate, 'steady', 1) : null
  const stats = await Promise.all(groups.map((group) => group.stats()))
  const lengths = [writer.doc.getText('text').length, ...stats.flatMap((s) => s.lengths)]
  const result = {
    readers: readersCount,
    reader_processes: processes,
    burst_yield: burstYield,
    connect_ms_p50: percentile(connectMs, 50),
    connect_ms_p99: percentile(connectMs, 99),
    burst,
    steady: steady && { ...steady, rate },
    reconnects: Math.max(0, writer.connects - 1) + stats.reduce((sum, s) => sum + s.reconnects, 0),
    converged: lengths.every((length) => length === edits + steadyEdits)
  }
  await Promise.all(groups.map((group) => group.destroy()))
  destroy([writer])
  return result
}

const rooms = async () => {
  const roomCount = Number(option('rooms', '200'))
  await measure('empty')
  const begin = now()
  const pairs = Array.from({ length: roomCount }, (_, i) => [
    connect(`room-${i}/doc`, `a-${i}`),
    connect(`room-${i}/doc`, `b-${i}`)
  ])
  const clients = pairs.flat()
  await withTimeout(Promise.all(clients.map((c) => c.synced)), 'every client sync')
  const allConnected = now() - begin
  const connectMs = clients.map((c) => c.syncedAt - c.started)
  // one edit per room, from a to b, all rooms at once
  const latencies = []
  say('@phase rooms-edit start')
  await withTimeout(Promise.all(pairs.map(([a, b]) => new Promise((resolve) => {
    const text = b.doc.getText('text')
    const sentAt = now()
    const observer = () => {
      if (text.length > 0) {
        latencies.push(now() - sentAt)
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
  const scenarios = { fanout, rooms, readers: readersChild }
  if (!url || !(scenario in scenarios)) {
    console.error('usage: node fanout_load.mjs fanout|rooms --url ws://HOST:PORT [options]')
    process.exit(2)
  }
  const result = await scenarios[scenario]()
  if (scenario === 'readers') process.exit(0)
  say(`@result ${JSON.stringify(result)}`)
  await sleep(100)
  process.exit(0)
}

main().catch((error) => {
  console.error(error.stack || String(error))
  process.exit(1)
})
