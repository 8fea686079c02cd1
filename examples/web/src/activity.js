// The room's activity log, for admins: who joined and left, what was asked of agents,
// saves, refusals. Read from `GET /rooms/{room}/activity` (an admin grant is needed;
// the server answers 403 otherwise), polled with `after` so only new events come.

const POLL_MS = 1500

function describe (event) {
  const who = event.name || event.participant || event.agent || ''
  const what = event.path ? ` ${event.path}` : event.text ? ` “${String(event.text).slice(0, 60)}”` : ''
  return `${event.type}${who ? ` · ${who}` : ''}${what}`
}

/** Show the activity of `me.room` in `panel` if the page's token is an admin's. */
export function showActivity (me, panel) {
  if (!me.admin || !me.token) return
  panel.hidden = false
  const list = panel.querySelector('.activity-list')
  const base = me.server.replace(/^ws/, 'http')
  let after = 0
  let session = null
  const poll = async () => {
    try {
      const query = new URLSearchParams({ token: me.token, after: String(after) })
      if (session) query.set('session', session)
      const response = await fetch(`${base}/rooms/${encodeURIComponent(me.room)}/activity?${query}`)
      if (response.ok) {
        const body = await response.json()
        session = body.session
        after = body.next
        for (const event of body.events) {
          const item = document.createElement('li')
          item.className = 'activity-event'
          item.dataset.type = event.type
          item.textContent = describe(event)
          list.append(item)
        }
        list.scrollTop = list.scrollHeight
      } else {
        panel.dataset.error = String(response.status)
      }
    } catch (error) {
      panel.dataset.error = error.message
    }
    setTimeout(poll, POLL_MS)
  }
  poll()
}
