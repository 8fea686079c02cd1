// Room calls from the browser: offer toolkits to the room and call others' tools.
//
// A room call is a y-websocket message of type 5 carrying one JSON object as a lib0
// var-string (docs/room-document.md). The unmodified WebsocketProvider lets a page add
// a handler for a message type (`provider.messageHandlers[5]`) and send raw frames on
// `provider.ws`; offers are tied to the connection, so they are made again on every sync.
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

const ROOM_CALL = 5

export class RoomCalls {
  /** `provider`: the WebsocketProvider of the room document (path ''). */
  constructor (provider) {
    this.provider = provider
    this.offered = new Map() // name -> { spec, run(tool, args, call) -> Promise<result> }
    this.pending = new Map() // our call id -> { resolve, reject }
    this.running = new Map() // server call id -> AbortController
    this.nextId = 1
    provider.messageHandlers[ROOM_CALL] = (encoder, decoder) => {
      this.receive(JSON.parse(decoding.readVarString(decoder)))
    }
    provider.on('sync', (synced) => {
      if (!synced) return
      for (const { spec } of this.offered.values()) this.send({ type: 'offer', toolkit: spec })
    })
    provider.on('status', ({ status }) => {
      if (status === 'connected') return
      for (const { reject } of this.pending.values()) reject(new Error('disconnected'))
      this.pending.clear()
      for (const controller of this.running.values()) controller.abort()
      this.running.clear()
    })
  }

  send (call) {
    const ws = this.provider.ws
    if (!ws || ws.readyState !== 1) return false
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, ROOM_CALL)
    encoding.writeVarString(encoder, JSON.stringify(call))
    ws.send(encoding.toUint8Array(encoder))
    return true
  }

  /** Offer a toolkit: `spec` as the room lists it, `run(tool, args, { from, signal })`. */
  offer (spec, run) {
    this.offered.set(spec.name, { spec, run })
    if (this.provider.synced) this.send({ type: 'offer', toolkit: spec })
  }

  /** Call `tool` of `toolkit` ("OFFERER/NAME" or a name only one offers). */
  call (toolkit, tool, args, timeout) {
    const id = `page-${this.nextId++}`
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      const call = { type: 'call', id, toolkit, tool, arguments: args }
      if (timeout) call.timeout = timeout
      if (!this.send(call)) {
        this.pending.delete(id)
        reject(new Error('not connected'))
      }
    })
  }

  receive (call) {
    if (call.type === 'result') {
      const waiter = this.pending.get(call.id)
      if (!waiter) return
      this.pending.delete(call.id)
      if ('error' in call) waiter.reject(Object.assign(new Error(call.error), { reason: call.reason }))
      else waiter.resolve(call.result)
    } else if (call.type === 'call') {
      this.run(call)
    } else if (call.type === 'cancel') {
      this.running.get(call.id)?.abort()
      this.running.delete(call.id)
    } else if (call.type === 'error') {
      console.warn('room call refused:', call.error)
    }
  }

  async run (call) {
    const offered = this.offered.get(call.toolkit)
    if (!offered) {
      this.send({ type: 'result', id: call.id, error: 'this toolkit is no longer offered' })
      return
    }
    const controller = new AbortController()
    this.running.set(call.id, controller)
    let reply
    try {
      reply = { result: await offered.run(call.tool, call.arguments, { from: call.from, signal: controller.signal }) }
    } catch (error) {
      reply = { error: `${call.tool} failed: ${error.message}` }
    }
    if (!this.running.delete(call.id)) return // cancelled: the server already answered
    this.send({ type: 'result', id: call.id, ...reply })
  }
}
