// The page on the unmodified @hocuspocus/provider (`?provider=hocuspocus`): one socket to
// the server's root path carries both the document and the room document
// (docs/hocuspocus.md). Each provider is wrapped in the few parts of y-websocket's
// WebsocketProvider the page reads (awareness, status, sync, room calls), so the rest of
// the page is the same code for both providers.
//
// Room calls travel as Stateless messages: `ws.send` takes the y-websocket frame
// (type 5, a var-string of JSON) and sends its JSON with `sendStateless`; a Stateless
// from the server reaches `messageHandlers[5]` as y-websocket would hand it over.
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'

const ROOM_CALL = 5

/** "4403 reason" (a CLOSE from the server) or a permission-denied reason as a close event. */
const closeEventOf = (reason, fallback) => {
  const match = /^(\d{4}) ?(.*)$/.exec(reason || '')
  return match ? { code: Number(match[1]), reason: match[2] } : { code: fallback, reason }
}

class Adapter {
  constructor (socket, name, ydoc, token) {
    this.socket = socket
    this.listeners = new Map()
    this.messageHandlers = []
    this.provider = new HocuspocusProvider({ websocketProvider: socket, name, document: ydoc, token })
    this.provider.attach()
    this.awareness = this.provider.awareness
    this.ws = {
      get readyState () { return socket.status === 'connected' ? 1 : 0 },
      send: (frame) => {
        const decoder = decoding.createDecoder(frame)
        if (decoding.readVarUint(decoder) === ROOM_CALL) this.provider.sendStateless(decoding.readVarString(decoder))
      }
    }
    socket.on('status', ({ status }) => this.emit('status', { status }))
    this.provider.on('synced', () => this.emit('sync', true))
    this.provider.on('stateless', ({ payload }) => {
      const handler = this.messageHandlers[ROOM_CALL]
      if (!handler) return
      const encoder = encoding.createEncoder()
      encoding.writeVarString(encoder, payload)
      handler(encoding.createEncoder(), decoding.createDecoder(encoding.toUint8Array(encoder)))
    })
    this.provider.on('authenticationFailed', ({ reason }) => this.emit('connection-close', closeEventOf(reason, 4403)))
    this.provider.on('close', ({ event }) => event?.reason && this.emit('connection-close', closeEventOf(event.reason, 4400)))
  }

  get wsconnected () { return this.socket.status === 'connected' }
  get wsconnecting () { return this.socket.status === 'connecting' }
  get synced () { return this.provider.isSynced }

  on (event, listener) {
    if (!this.listeners.has(event)) this.listeners.set(event, [])
    this.listeners.get(event).push(listener)
  }

  emit (event, ...args) {
    for (const listener of this.listeners.get(event) || []) listener(...args)
  }
}

/** The document's and the room document's providers, multiplexed over one socket. */
export function hocuspocusProviders (me, ydoc, roomDoc) {
  const socket = new HocuspocusProviderWebsocket({ url: me.server })
  const token = me.params.token || ''
  return {
    provider: new Adapter(socket, `${me.room}/${me.path}`, ydoc, token),
    roomProvider: new Adapter(socket, me.room, roomDoc, token)
  }
}
