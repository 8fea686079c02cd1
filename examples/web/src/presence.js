// The room's participants, read live from the room document's `participants` map.
import { colourFor } from './identity.js'

function initials (name) {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((word) => word[0].toUpperCase()).join('') || '?'
}

/** Render the participants map into `list` now and on every change. */
export function showParticipants (participants, list, me) {
  const render = () => {
    const entries = [...participants.entries()].sort(([, a], [, b]) => (a.joinedAt ?? 0) - (b.joinedAt ?? 0))
    list.replaceChildren(...entries.map(([id, info]) => {
      const item = document.createElement('li')
      item.className = 'participant'
      item.dataset.kind = info.kind || 'person'
      item.dataset.id = id
      const avatar = document.createElement('span')
      avatar.className = 'avatar'
      avatar.style.background = colourFor(id)
      avatar.textContent = info.kind === 'agent' ? '✦' : initials(info.name || id)
      const who = document.createElement('span')
      who.className = 'who'
      const name = document.createElement('span')
      name.className = 'name'
      name.textContent = info.name || id
      if (id === me) {
        const you = document.createElement('span')
        you.className = 'you'
        you.textContent = '(you)'
        name.append(you)
      }
      const kind = document.createElement('span')
      kind.className = 'kind'
      kind.textContent = info.kind === 'agent' ? 'agent' : 'person'
      who.append(name, kind)
      item.append(avatar, who)
      return item
    }))
    if (!entries.length) {
      const empty = document.createElement('li')
      empty.className = 'empty'
      empty.textContent = 'Nobody here yet.'
      list.replaceChildren(empty)
    }
  }
  participants.observeDeep(render)
  render()
  return render
}
