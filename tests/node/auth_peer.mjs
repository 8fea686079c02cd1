// A y-websocket client with a token: syncs a document, optionally tries to write,
// publishes awareness, and reports what it saw as one JSON line on stdout.
//
//   node auth_peer.mjs '{"url":"ws://127.0.0.1:8000","room":"team/notes/a.md",
//                        "token":"…","write":"hello","waitMs":1500}'
//
// The token travels as the `token` query parameter, the way any y-websocket app
// passes it: new WebsocketProvider(url, room, doc, { params: { token } }).
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const opts = JSON.parse(process.argv[2])
const doc = new Y.Doc()
const text = doc.getText('t')
const closes = []
const result = { synced: false, closes, text: '', peers: [], writeAttempted: false }

const params = opts.token === undefined || opts.token === null ? {} : { token: opts.token }
const provider = new WebsocketProvider(opts.url, opts.room, doc, {
  WebSocketPolyfill: WebSocket,
  params,
  disableBc: true,
  maxBackoffTime: 300
})
provider.awareness.setLocalStateField('user', { name: opts.claimName || 'node', claimedId: 'forged-id' })

let finished = false
const finish = () => {
  if (finished) return
  finished = true
  result.text = text.toString()
  result.peers = Array.from(provider.awareness.getStates().entries())
    .filter(([id]) => id !== doc.clientID)
    .map(([, state]) => state)
  provider.destroy()
  process.stdout.write(JSON.stringify(result) + '\n')
  setTimeout(() => process.exit(0), 50)
}

provider.on('connection-close', (event) => {
  if (event) closes.push({ code: event.code, reason: event.reason })
})
provider.on('closed', () => setTimeout(finish, 100))
provider.on('sync', (synced) => {
  if (!synced || result.synced) return
  result.synced = true
  if (opts.write) {
    result.writeAttempted = true
    text.insert(text.length, opts.write)
  }
  setTimeout(finish, opts.waitMs ?? 1000)
})
setTimeout(finish, opts.timeoutMs ?? 8000)
