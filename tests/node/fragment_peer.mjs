// An unmodified yjs + y-websocket peer that reports its element tree, driven over stdin/stdout.
//
//   node fragment_peer.mjs <server url> <room name/doc path>
//
// Prints {"event":"synced"} once synced; each stdin line {"id": n, "op": "state"} is
// answered with {"id": n, "xml": <the "default" XmlFragment's toString()>, "update":
// <the whole document state, base64>}; {"op": "quit"} disconnects and exits.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import readline from 'node:readline'

const [url, room] = process.argv.slice(2)
const doc = new Y.Doc()
const fragment = doc.getXmlFragment('default')
const provider = new WebsocketProvider(url, room, doc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true,
  maxBackoffTime: 500
})
const emit = (value) => process.stdout.write(JSON.stringify(value) + '\n')
let synced = false
provider.on('sync', (isSynced) => {
  if (isSynced && !synced) {
    synced = true
    emit({ event: 'synced' })
  }
})

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', (line) => {
  if (!line.trim()) return
  const command = JSON.parse(line)
  if (command.op === 'quit') {
    provider.destroy()
    emit({ id: command.id })
    setTimeout(() => process.exit(0), 20)
    return
  }
  emit({
    id: command.id,
    xml: fragment.toString(),
    update: Buffer.from(Y.encodeStateAsUpdate(doc)).toString('base64')
  })
})
lines.on('close', () => {
  provider.destroy()
  setTimeout(() => process.exit(0), 20)
})
