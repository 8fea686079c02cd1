// A Tiptap editor bound to a meshroom document through the unmodified y-websocket provider,
// with the room's participants, remote carets and messages beside it.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { hocuspocusProviders } from './hocuspocus.js'
import { Editor } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import Collaboration from '@tiptap/extension-collaboration'
import CollaborationCaret from '@tiptap/extension-collaboration-caret'
import { ElementIds } from './element-ids.js'
import { Suggestions, showSuggestions } from './suggestions.js'
import { loadIdentity } from './identity.js'
import { showParticipants } from './presence.js'
import { showMessages, showRecipients } from './messages.js'
import { RoomCalls } from './room-calls.js'
import { showAgentStatus, showStreams, threadWith } from './conversation.js'
import { showActivity } from './activity.js'
import { showVersions } from './versions.js'
import { UI_TOOLKIT, uiToolkit } from './ui-toolkit.js'
import { newDocumentForm, openInPage, showDocuments } from './documents.js'

const FRAGMENT = 'default' // meshdoc's default fragment name, also Tiptap's default `field`

// Close codes a retry cannot fix (y-websocket stops retrying 44xx), with what they mean here.
const REFUSALS = {
  4400: 'bad room or document name',
  4401: 'not signed in',
  4403: 'no access',
  4406: 'read-only',
  4408: 'no token in time'
}

/** What the server said when it refused a socket, or null if it did not. */
function refusalOf (event) {
  const code = event?.code
  if (!code || code < 4400 || code >= 4500) return null
  const what = REFUSALS[code] || 'refused'
  return { code, text: event.reason ? `${what}: ${event.reason}` : what }
}

function watchStatus (providers, element) {
  let refusal = null
  const update = () => {
    if (refusal) {
      element.dataset.state = 'refused'
      element.textContent = `refused (${refusal.code}) — ${refusal.text}`
      return
    }
    const connected = providers.every((provider) => provider.wsconnected)
    const state = connected ? 'connected' : providers.some((p) => p.wsconnecting) ? 'connecting' : 'disconnected'
    element.dataset.state = state
    element.textContent = state === 'connected' ? 'live' : state === 'connecting' ? 'connecting…' : 'offline'
  }
  for (const provider of providers) {
    provider.on('status', update)
    provider.on('connection-close', (event) => {
      refusal = refusal || refusalOf(event)
      // y-websocket emits this before it clears `wsconnecting`: read the flags after it
      setTimeout(update, 0)
    })
  }
  update()
}

const newId = () => Math.random().toString(16).slice(2, 10) + Date.now().toString(16).slice(-8)

async function start () {
  const me = await loadIdentity()
  document.getElementById('room-name').textContent = me.room
  document.getElementById('doc-path').textContent = me.path
  document.getElementById('access').hidden = !me.readOnly

  // The document: `ws://host/{room}/{path}`; the room document (presence): `ws://host/{room}`.
  // `?provider=hocuspocus`: the same page on @hocuspocus/provider, both documents on one socket.
  const ydoc = new Y.Doc()
  const roomDoc = new Y.Doc()
  const { provider, roomProvider } = new URLSearchParams(window.location.search).get('provider') === 'hocuspocus'
    ? hocuspocusProviders(me, ydoc, roomDoc)
    : {
        provider: new WebsocketProvider(me.server, `${me.room}/${me.path}`, ydoc, { params: me.params }),
        roomProvider: new WebsocketProvider(me.server, me.room, roomDoc, { params: me.params })
      }
  watchStatus([provider, roomProvider], document.getElementById('status'))

  const editor = new Editor({
    element: document.getElementById('editor'),
    editable: !me.readOnly,
    extensions: [
      StarterKit.configure({ undoRedo: false, underline: false }), // Yjs keeps the history
      Collaboration.configure({ document: ydoc, field: FRAGMENT }),
      ElementIds,
      ...Suggestions, // suggestion marks and the $suggestion block attribute
      CollaborationCaret.configure({ provider, user: { name: me.name, color: me.colour, id: me.participantId } })
    ]
  })

  const participants = roomDoc.getMap('participants')
  const messages = roomDoc.getArray('messages')
  // The room's documents, listed by the server: open one, or create one by path.
  showDocuments(roomDoc.getMap('documents'), document.getElementById('documents'), me.path, openInPage)
  newDocumentForm(document.getElementById('new-document-form'), document.getElementById('new-document-path'), openInPage)
  showParticipants(participants, document.getElementById('participants'), me.participantId)
  showMessages(messages, participants, document.getElementById('messages'))
  const recipient = document.getElementById('message-to')
  showRecipients(participants, recipient, me.participantId)

  document.getElementById('message-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const input = document.getElementById('message-text')
    const text = input.value.trim()
    if (!text) return
    const to = recipient.value || null
    const message = { from: me.participantId, to, text, time: Date.now(), id: newId() }
    const thread = document.getElementById('new-thread').checked ? null : threadWith(messages, me.participantId, to)
    if (thread) message.thread = thread // replies to an agent stay in its conversation
    messages.push([message])
    input.value = ''
  })

  // For admins: the room's activity log.
  showActivity(me, document.getElementById('activity'))
  // For admins: the document's versions (save, compare with now, restore).
  showVersions(me, document.getElementById('versions'))

  // Answers being written, what agents are doing, and a way to stop them.
  showStreams(roomDoc.getMap('streams'), participants, document.getElementById('streams'))
  const sendTo = (to, json) => messages.push([{ from: me.participantId, to, json, time: Date.now(), id: newId() }])
  showAgentStatus(roomProvider.awareness, participants, document.getElementById('agent-status'), sendTo)

  // The page offers the `ui` toolkit: agents ask this person through it.
  const calls = new RoomCalls(roomProvider)
  const nameOf = (id) => participants.get(id)?.name || id || 'someone'
  showSuggestions(editor, document.getElementById('suggestions'), nameOf)
  calls.offer(UI_TOOLKIT, uiToolkit(document.getElementById('ui-requests'), nameOf))

  // For tests and the curious: the live objects behind the page.
  window.meshroom = { me, ydoc, roomDoc, provider, roomProvider, editor, calls, Y }
}

start()
