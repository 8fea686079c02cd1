// The document's versions, for admins: list them, save one ("Save version…"), see what
// changed since one (the server's Markdown diff and its element counts), restore one.
// Through `/rooms/{room}/versions` (an admin grant is needed; the server answers 403
// otherwise). A restore is an edit like any other: this editor receives it live.

const POLL_MS = 5000

function when (seconds) {
  return new Date(seconds * 1000).toLocaleString()
}

/** Show the versions of `me.path` in `panel` if the page's token is an admin's. */
export function showVersions (me, panel) {
  if (!me.admin || !me.token) return
  panel.hidden = false
  const list = panel.querySelector('.version-list')
  const view = panel.querySelector('.version-diff')
  const base = `${me.server.replace(/^ws/, 'http')}/rooms/${encodeURIComponent(me.room)}/versions`
  const headers = { Authorization: `Bearer ${me.token}` }
  const url = (suffix = '', query = {}) => `${base}${suffix}?${new URLSearchParams({ path: me.path, ...query })}`
  let selected = null

  const call = async (method, target, body) => {
    const options = { method, headers: { ...headers } }
    if (body !== undefined) {
      options.headers['Content-Type'] = 'application/json'
      options.body = JSON.stringify(body)
    }
    const response = await fetch(target, options)
    if (!response.ok) {
      panel.dataset.error = String(response.status)
      throw new Error(`${method} ${target}: ${response.status}`)
    }
    delete panel.dataset.error
    return response.json()
  }

  const showDiff = async (version) => {
    selected = version.id
    const diff = await call('GET', url(`/${encodeURIComponent(version.id)}/diff`, { to: 'now' }))
    view.hidden = false
    view.replaceChildren()
    const title = document.createElement('div')
    title.className = 'version-diff-title'
    const counts = Object.entries(diff.counts).filter(([, n]) => n).map(([kind, n]) => `${n} ${kind}`)
    title.textContent = `${version.name} → now: ${counts.join(', ') || 'no change'}`
    const restore = document.createElement('button')
    restore.type = 'button'
    restore.className = 'version-restore'
    restore.textContent = 'Restore this version'
    restore.addEventListener('click', async () => {
      if (!window.confirm(`Restore “${version.name}”? Everyone sees the change; it can be undone.`)) return
      const done = await call('POST', url(`/${encodeURIComponent(version.id)}/restore`))
      view.dataset.restored = done.restored.id
      await refresh()
    })
    const lines = document.createElement('pre')
    lines.className = 'version-diff-lines'
    for (const line of diff.markdown.split('\n').slice(2)) {
      const span = document.createElement('span')
      span.className = line.startsWith('+') ? 'diff-add' : line.startsWith('-') ? 'diff-del' : line.startsWith('@@') ? 'diff-hunk' : 'diff-same'
      span.textContent = `${line}\n`
      lines.append(span)
    }
    view.append(title, restore, lines)
  }

  const refresh = async () => {
    const body = await call('GET', url())
    list.replaceChildren()
    for (const version of [...body.versions].reverse()) {
      const item = document.createElement('li')
      item.className = 'version'
      item.dataset.id = version.id
      item.dataset.reason = version.reason
      if (version.id === selected) item.classList.add('selected')
      const name = document.createElement('button')
      name.type = 'button'
      name.className = 'version-name'
      name.textContent = version.name
      name.addEventListener('click', () => showDiff(version))
      const meta = document.createElement('span')
      meta.className = 'version-meta'
      meta.textContent = `${when(version.time)}${version.author ? ` · ${version.author}` : ''}${version.automatic ? ' · auto' : ''}`
      item.append(name, meta)
      list.append(item)
    }
  }

  panel.querySelector('.version-save').addEventListener('click', async () => {
    const name = window.prompt('Name this version', '')
    if (name === null) return
    await call('POST', url(), { name: name.trim() || null })
    await refresh()
  })

  const poll = async () => {
    try { await refresh() } catch (error) { panel.dataset.error = error.message }
    setTimeout(poll, POLL_MS)
  }
  poll()
}
