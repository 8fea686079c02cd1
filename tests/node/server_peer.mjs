// An unmodified yjs + y-websocket peer driven over stdin/stdout, one JSON object per line.
//
//   node server_peer.mjs <server url> <room name> ['{"id":"ann","name":"Ann"}'] ['{"watchdog":1000}']
//
// The room name goes to WebsocketProvider as is ("my room/notes.md"); the third
// argument becomes the URL query (`params`). The fourth sets timings of the peer
// itself, to test in a second what y-websocket does over half a minute:
//
//   watchdog: ms   y-websocket's "no message received" watchdog, this much stricter:
//                  y-websocket drops a socket that received nothing for 30 s
//                  (`messageReconnectTimeout`, a module constant); with this, after
//                  `watchdog` ms ({"event":"watchdog"}, then the socket is closed
//                  and the provider reconnects, as after its own watchdog)
//   renew: ms      renew the local awareness state this often, as y-protocols'
//                  Awareness does every 15 s (`outdatedTimeout / 2`)
//
// Events are printed as they happen ({"event":"synced"}, {"event":"status",
// "status":"connected"}, {"event":"close","code":4400,"reason":"…"}); commands read
// from stdin are answered with {"id": <same id>, ...}:
//
//   {"id":1,"op":"insert","text":"hi"}        append to the shared text "t"
//   {"id":2,"op":"awareness","state":{...}}   set the local awareness state (null clears)
//   {"id":3,"op":"push","message":{...}}      append to the room document's "messages"
//   {"id":4,"op":"forge","key":"x","value":1} write into "participants" (must be refused;
//                                             "map":"documents" writes that map instead)
//   {"id":5,"op":"state"}                     report text, peers' awareness, presence (and
//                                             the "documents" map), the
//                                             "default" fragment's XML and the whole
//                                             document state (base64)
//   {"id":6,"op":"quit"}                      disconnect and exit
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import readline from 'node:readline'

const [url, room, paramsJson, timingsJson] = process.argv.slice(2)
const params = paramsJson ? JSON.parse(paramsJson) : {}
const timings = timingsJson ? JSON.parse(timingsJson) : {}
const doc = new Y.Doc()
const text = doc.getText('t')
const participants = doc.getMap('participants')
const messages = doc.getArray('messages')

const provider = new WebsocketProvider(url, room, doc, {
  WebSocketPolyfill: WebSocket,
  params,
  disableBc: true,
  maxBackoffTime: 500
})
provider.awareness.setLocalState({ user: { name: params.name || 'node' } })

const emit = (value) => process.stdout.write(JSON.stringify(value) + '\n')
let synced = false
provider.on('sync', (isSynced) => {
  if (isSynced && !synced) {
    synced = true
    emit({ event: 'synced' })
  }
})
provider.on('connection-close', (event) => {
  if (event) emit({ event: 'close', code: event.code, reason: event.reason })
})
provider.on('status', ({ status }) => emit({ event: 'status', status }))

if (timings.watchdog) {
  // The check y-websocket's constructor installs, with `timings.watchdog` for its
  // 30 s constant (and checked as often, a tenth of it).
  setInterval(() => {
    if (provider.wsconnected && Date.now() - provider.wsLastMessageReceived > timings.watchdog) {
      emit({ event: 'watchdog' })
      provider.ws.close()
    }
  }, timings.watchdog / 10)
}
if (timings.renew) {
  setInterval(() => {
    const local = provider.awareness.getLocalState()
    if (local !== null) provider.awareness.setLocalState(local)
  }, timings.renew)
}

const state = () => ({
  synced: provider.synced,
  connected: provider.wsconnected,
  clientId: doc.clientID,
  text: text.toString(),
  peers: Array.from(provider.awareness.getStates().entries())
    .filter(([id]) => id !== doc.clientID)
    .map(([id, value]) => ({ clientId: id, state: value })),
  participants: participants.toJSON(),
  documents: doc.getMap('documents').toJSON(),
  messages: messages.toJSON(),
  xml: doc.getXmlFragment('default').toString(),
  update: Buffer.from(Y.encodeStateAsUpdate(doc)).toString('base64')
})

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', (line) => {
  if (!line.trim()) return
  const command = JSON.parse(line)
  const reply = { id: command.id }
  switch (command.op) {
    case 'insert':
      text.insert(command.at ?? text.length, command.text)
      break
    case 'awareness':
      provider.awareness.setLocalState(command.state)
      break
    case 'push':
      messages.push([command.message])
      break
    case 'forge':
      doc.getMap(command.map ?? 'participants').set(command.key, command.value)
      break
    case 'state':
      Object.assign(reply, state())
      break
    case 'quit':
      provider.destroy()
      emit(reply)
      setTimeout(() => process.exit(0), 20)
      return
    default:
      reply.error = `unknown op ${command.op}`
  }
  emit(reply)
})
lines.on('close', () => {
  provider.destroy()
  setTimeout(() => process.exit(0), 20)
})
