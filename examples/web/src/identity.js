// Who this page is: room, document path, name, token, and a stable colour per participant.

const PALETTE = ['#3d5afe', '#e91e63', '#00897b', '#f57c00', '#8e44ad', '#2e7d32', '#c62828', '#0277bd']

/** A colour for a participant id: the same id gets the same colour on every page. */
export function colourFor (id) {
  let hash = 0
  for (const char of String(id)) hash = (hash * 31 + char.codePointAt(0)) >>> 0
  return PALETTE[hash % PALETTE.length]
}

/** Decode a JWT's claims without verifying it: the server verifies, the page only displays. */
function claimsOf (token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    return JSON.parse(decodeURIComponent(escape(atob(payload))))
  } catch {
    return {}
  }
}

function matches (pattern, value) {
  const regex = pattern.split('').map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('')
  return new RegExp(`^${regex}$`, 's').test(value)
}

/** Mirror of the server's rule (the most generous grant wins); display only, the server enforces. */
function grantsAllowWriting (claims, room, path) {
  return (claims.grants || []).some((grant) =>
    matches(grant.room ?? '', room) &&
    (grant.paths ?? ['*']).some((pattern) => matches(pattern, path)) &&
    (grant.mode ?? 'read-write') === 'read-write')
}

/** Whether a grant for the room carries the admin flag (the server checks it again). */
function grantsAdmin (claims, room) {
  return (claims.grants || []).some((grant) => matches(grant.room ?? '', room) && grant.admin === true)
}

async function devToken (room, name, id, admin) {
  const query = new URLSearchParams({ room, name })
  if (id) query.set('id', id)
  if (admin) query.set('admin', '1') // ?admin=1 on a --dev server: the activity and versions panels
  try {
    const response = await fetch(`/dev/token?${query}`)
    if (!response.ok) return null
    return (await response.json()).token ?? null
  } catch {
    return null
  }
}

/** Read the page's identity from the URL (?room=&doc=&name=&token=&server=). */
export async function loadIdentity () {
  const params = new URLSearchParams(window.location.search)
  const room = params.get('room') || 'demo'
  const path = params.get('doc') || 'notes/welcome'
  const name = params.get('name') || `Guest ${Math.floor(Math.random() * 900 + 100)}`
  const id = params.get('id') || `person-${crypto.randomUUID().slice(0, 8)}`
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws'
  const server = params.get('server') || `${scheme}://${window.location.host}`
  const token = params.get('token') || (await devToken(room, name, params.get('id'), params.get('admin') === '1'))
  const claims = token ? claimsOf(token) : {}
  const participantId = claims.sub || id
  return {
    room,
    path,
    server,
    token,
    participantId,
    name: claims.name || name,
    readOnly: token ? !grantsAllowWriting(claims, room, path) : false,
    admin: token ? grantsAdmin(claims, room) : false,
    colour: colourFor(participantId),
    // y-websocket appends these to the socket URL: the token when auth is on, else who we are.
    params: token ? { token } : { id: participantId, name, kind: 'person' }
  }
}
