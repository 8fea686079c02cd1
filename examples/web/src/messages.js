// Room messages: a bounded shared array in the room document, shown newest last.

function formatTime (time) {
  const date = new Date(typeof time === 'number' && time < 1e12 ? time * 1000 : time)
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
}

/** What a message says: its text, an agent's progress line, or its JSON. */
function bodyOf (message) {
  if (typeof message.text === 'string') return message.text
  const json = message.json
  if (json && json.type === 'agent.progress') return `⚙ ${json.summary ?? json.tool ?? 'working…'}`
  if (json !== undefined && json !== null) return JSON.stringify(json)
  return ''
}

const isProgress = (message) => message.json?.type === 'agent.progress'

/** Render the room's messages into `list`, naming senders from the participants map. */
export function showMessages (messages, participants, list) {
  const nameOf = (id) => (id && participants.get(id)?.name) || id || 'someone'
  const kindOf = (id) => (id && participants.get(id)?.kind) || 'person'
  const render = () => {
    const items = messages.toArray().map((message) => {
      const item = document.createElement('li')
      item.className = 'message'
      item.dataset.kind = kindOf(message.from)
      if (isProgress(message)) item.classList.add('progress')
      const from = document.createElement('span')
      from.className = 'from'
      from.textContent = nameOf(message.from)
      item.append(from)
      if (message.to) {
        const to = document.createElement('span')
        to.className = 'to'
        to.textContent = `→ ${nameOf(message.to)} `
        item.append(to)
      }
      const text = document.createElement('span')
      text.className = 'text'
      text.textContent = bodyOf(message)
      const time = document.createElement('span')
      time.className = 'time'
      time.textContent = formatTime(message.time)
      item.append(text, time)
      return item
    })
    if (!items.length) {
      const empty = document.createElement('li')
      empty.className = 'empty'
      empty.textContent = 'No messages yet.'
      items.push(empty)
    }
    list.replaceChildren(...items)
    list.scrollTop = list.scrollHeight
  }
  messages.observe(render)
  participants.observeDeep(render)
  render()
}

/** Keep the recipient picker in step with the participants: everyone, or one agent or person. */
export function showRecipients (participants, select, me) {
  const render = () => {
    const current = select.value
    const options = [['', 'Everyone']]
    for (const [id, info] of participants.entries()) {
      if (id !== me) options.push([id, `${info.name || id}${info.kind === 'agent' ? ' (agent)' : ''}`])
    }
    select.replaceChildren(...options.map(([value, label]) => {
      const option = document.createElement('option')
      option.value = value
      option.textContent = label
      return option
    }))
    const firstAgent = [...participants.entries()].find(([, info]) => info.kind === 'agent')?.[0]
    select.value = options.some(([value]) => value === current) && current ? current : (firstAgent ?? '')
  }
  participants.observeDeep(render)
  render()
}
