// Conversations with agents: answers growing while they are written, what each agent is
// doing, a stop button, and replies that stay in their thread.
//
// Read from the room document: `streams` (answers being written: message id ->
// {from, to, thread, text}), the agents' awareness `status` ({state, tool, path,
// waitingFor}), and `messages` (each with its `thread`).

const STATES = { thinking: 'thinking…', calling: 'calling', waiting: 'waiting for', idle: '' }

/** Show the answers being written in `list`, below the messages. */
export function showStreams (streams, participants, list) {
  const nameOf = (id) => participants.get(id)?.name || id || 'someone'
  const render = () => {
    list.replaceChildren(...[...streams.entries()].map(([id, entry]) => {
      const item = document.createElement('li')
      item.className = 'message streaming'
      item.dataset.kind = 'agent'
      item.dataset.id = id
      const from = document.createElement('span')
      from.className = 'from'
      from.textContent = nameOf(entry.from)
      const text = document.createElement('span')
      text.className = 'text'
      text.textContent = entry.text || '…'
      item.append(from, text)
      return item
    }))
  }
  streams.observeDeep(render)
  render()
}

/** What an agent's status says, in words. */
function statusText (status, nameOf) {
  const words = STATES[status.state] ?? status.state
  if (status.state === 'calling') return `${words} ${status.tool}${status.path ? ` on ${status.path}` : ''}`
  if (status.state === 'waiting') return `${words} ${nameOf(status.waitingFor)}`
  return words
}

/** List the agents at work in `panel`, each with its status and Stop buttons. */
export function showAgentStatus (awareness, participants, panel, send) {
  const nameOf = (id) => participants.get(id)?.name || id || 'someone'
  const render = () => {
    const busy = []
    for (const state of awareness.getStates().values()) {
      const user = state.user
      if (!user || user.kind !== 'agent' || !state.status || state.status.state === 'idle') continue
      busy.push([user, state.status])
    }
    panel.hidden = !busy.length
    panel.replaceChildren(...busy.map(([user, status]) => {
      const row = document.createElement('div')
      row.className = 'agent-status'
      row.dataset.agent = user.id
      row.dataset.state = status.state
      const text = document.createElement('span')
      text.className = 'status-text'
      text.textContent = `${user.name || user.id}: ${statusText(status, nameOf)}`
      const stop = document.createElement('button')
      stop.type = 'button'
      stop.className = 'agent-stop'
      stop.textContent = 'Stop'
      stop.addEventListener('click', () => send(user.id, { type: 'agent.stop', undo: false }))
      const undo = document.createElement('button')
      undo.type = 'button'
      undo.className = 'agent-stop-undo'
      undo.textContent = 'Stop and undo'
      undo.addEventListener('click', () => send(user.id, { type: 'agent.stop', undo: true }))
      row.append(text, stop, undo)
      return row
    }))
  }
  awareness.on('change', render)
  participants.observeDeep(render)
  render()
}

/** The thread to reply in when writing to `other`: the latest one between us, if any. */
export function threadWith (messages, me, other) {
  if (!other) return null
  const all = messages.toArray()
  for (let index = all.length - 1; index >= 0; index--) {
    const message = all[index]
    const between = (message.from === me && message.to === other) || (message.from === other && message.to === me)
    if (between && message.thread) return message.thread
  }
  return null
}
