// A Node peer on the unmodified @hocuspocus/provider: one HocuspocusProviderWebsocket
// (one socket) with any number of HocuspocusProviders attached, driven by JSON lines.
//
//   node hocuspocus_peer.mjs ws://127.0.0.1:8000 '{"sessionAwareness":false}'
//
// stdin, one command a line: {"id": n, "op": ..., ...}; stdout: {"id": n, ...} answers
// and {"event": ...} lines for what the providers report.
//   attach {name, token?, awareness?}   a provider for document `name` on the socket
//   detach {name}                       provider.destroy() (sends CLOSE for it)
//   insert {name, text, index?}         edit the Y.Text "t"
//   awareness {name, state}             set the provider's local awareness state
//   stateless {name, payload}           provider.sendStateless(payload)
//   token {name, token}                 change the token and send it (a refresh or retry)
//   disconnect / connect                the socket
//   state                               {status, docs: {name: {...}}}
import * as Y from 'yjs'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import WebSocket from 'ws'
import readline from 'node:readline'

const url = process.argv[2]
const options = JSON.parse(process.argv[3] || '{}')
const out = (value) => process.stdout.write(JSON.stringify(value) + '\n')

const socket = new HocuspocusProviderWebsocket({
  url,
  WebSocketPolyfill: WebSocket,
  delay: 100,
  minDelay: 100,
  maxDelay: 500,
  jitter: false,
  messageReconnectTimeout: options.messageReconnectTimeout || 30000
})
socket.on('status', ({ status }) => out({ event: 'status', status }))
socket.on('disconnect', ({ event }) => out({ event: 'disconnect', code: event?.code, reason: event?.reason }))

const providers = new Map()
const tokens = new Map()

const attach = ({ name, token, awareness = true }) => {
  tokens.set(name, token ?? null)
  const document = new Y.Doc()
  const provider = new HocuspocusProvider({
    websocketProvider: socket,
    name,
    document,
    awareness: awareness ? undefined : null,
    sessionAwareness: !!options.sessionAwareness,
    token: () => tokens.get(name)
  })
  provider.on('authenticated', ({ scope }) => out({ event: 'authenticated', name, scope }))
  provider.on('authenticationFailed', ({ reason }) => out({ event: 'authenticationFailed', name, reason }))
  provider.on('synced', () => out({ event: 'synced', name }))
  provider.on('stateless', ({ payload }) => out({ event: 'stateless', name, payload }))
  provider.on('close', ({ event }) => out({ event: 'close', name, reason: event?.reason }))
  provider.attach()
  providers.set(name, provider)
}

const describe = (provider) => ({
  text: provider.document.getText('t').toString(),
  synced: provider.isSynced,
  unsynced: provider.unsyncedChanges,
  authenticated: provider.isAuthenticated,
  scope: provider.authorizedScope ?? null,
  peers: provider.awareness
    ? Array.from(provider.awareness.getStates().entries())
      .filter(([clientId]) => clientId !== provider.document.clientID)
      .map(([, state]) => state)
    : []
})

const handlers = {
  attach: (command) => { attach(command); return {} },
  detach: ({ name }) => { providers.get(name).destroy(); providers.delete(name); return {} },
  insert: ({ name, text, index }) => {
    const t = providers.get(name).document.getText('t')
    t.insert(index ?? t.length, text)
    return {}
  },
  awareness: ({ name, state }) => { providers.get(name).awareness.setLocalState(state); return {} },
  stateless: ({ name, payload }) => { providers.get(name).sendStateless(payload); return {} },
  token: async ({ name, token }) => { tokens.set(name, token); await providers.get(name).sendToken(); return {} },
  disconnect: () => { socket.disconnect(); return {} },
  connect: () => { socket.connect(); return {} },
  state: () => ({
    status: socket.status,
    docs: Object.fromEntries(Array.from(providers.entries()).map(([name, p]) => [name, describe(p)]))
  })
}

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  if (!line.trim()) return
  const command = JSON.parse(line)
  try {
    out({ id: command.id, ...(await handlers[command.op](command)) })
  } catch (error) {
    out({ id: command.id, error: String(error) })
  }
})
process.stdin.on('end', () => process.exit(0))
