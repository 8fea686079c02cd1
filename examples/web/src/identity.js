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

function grantsAllowWriting (claims, room, path) {
  const grants = claims.grants || []
  if (!grants.length) return true
  return grants.some((grant) => {
    const rooms = [].concat(grant.room ?? grant.rooms ?? [])
    const roomOk = rooms.length === 0 || rooms.includes(room) || rooms.includes('*')
    const patterns = [].concat(grant.paths ?? grant.path ?? ['*'])
    const pathOk = patterns.some((pattern) => {
      const regex = new RegExp('^' + pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$')
      return regex.test(path)
    })
    return roomOk && pathOk && !(grant.read_only ?? grant.readOnly ?? false)
  })
}

async function devToken (room, name) {
  try {
    const response = await fetch(`/dev/token?room=${encodeURIComponent(room)}&name=${encodeURIComponent(name)}`)
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
  const token = params.get('token') || (await devToken(room, name))
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
    colour: colourFor(participantId),
    // y-websocket appends these to the socket URL: the token when auth is on, else who we are.
    params: token ? { token } : { id: participantId, name, kind: 'person' }
  }
}
