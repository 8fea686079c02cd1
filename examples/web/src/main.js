// A Tiptap editor bound to a meshroom document through the unmodified y-websocket provider,
// with the room's participants, remote carets and messages beside it.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { Editor } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import Collaboration from '@tiptap/extension-collaboration'
import CollaborationCaret from '@tiptap/extension-collaboration-caret'
import { ElementIds } from './element-ids.js'
import { loadIdentity } from './identity.js'
import { showParticipants } from './presence.js'
import { showMessages, showRecipients } from './messages.js'

const FRAGMENT = 'default' // meshdoc's default fragment name, also Tiptap's default `field`

function watchStatus (providers, element) {
  const update = () => {
    const connected = providers.every((provider) => provider.wsconnected)
    const state = connected ? 'connected' : providers.some((p) => p.wsconnecting) ? 'connecting' : 'disconnected'
    element.dataset.state = state
    element.textContent = state === 'connected' ? 'live' : state === 'connecting' ? 'connecting…' : 'offline'
  }
  for (const provider of providers) provider.on('status', update)
  update()
}

async function start () {
  const me = await loadIdentity()
  document.getElementById('room-name').textContent = me.room
  document.getElementById('doc-path').textContent = me.path
  document.getElementById('access').hidden = !me.readOnly

  // The document: `ws://host/{room}/{path}`; the room document (presence): `ws://host/{room}`.
  const ydoc = new Y.Doc()
  const provider = new WebsocketProvider(me.server, `${me.room}/${me.path}`, ydoc, { params: me.params })
  const roomDoc = new Y.Doc()
  const roomProvider = new WebsocketProvider(me.server, me.room, roomDoc, { params: me.params })
  watchStatus([provider, roomProvider], document.getElementById('status'))

  const editor = new Editor({
    element: document.getElementById('editor'),
    editable: !me.readOnly,
    extensions: [
      StarterKit.configure({ undoRedo: false, underline: false }), // Yjs keeps the history
      Collaboration.configure({ document: ydoc, field: FRAGMENT }),
      ElementIds,
      CollaborationCaret.configure({ provider, user: { name: me.name, color: me.colour, id: me.participantId } })
    ]
  })

  const participants = roomDoc.getMap('participants')
  const messages = roomDoc.getArray('messages')
  showParticipants(participants, document.getElementById('participants'), me.participantId)
  showMessages(messages, participants, document.getElementById('messages'))
  const recipient = document.getElementById('message-to')
  showRecipients(participants, recipient, me.participantId)

  document.getElementById('message-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const input = document.getElementById('message-text')
    const text = input.value.trim()
    if (!text) return
    messages.push([{ from: me.participantId, to: recipient.value || null, text, time: Date.now() }])
    input.value = ''
  })

  // For tests and the curious: the live objects behind the page.
  window.meshroom = { me, ydoc, roomDoc, provider, roomProvider, editor, Y }
}

start()
