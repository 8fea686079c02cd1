// The room's documents, from the room document's `documents` map the server keeps
// (path -> {size, modified, stored, open: [participant ids]}), as a list to open one from,
// and a box that opens (so creates) a document by path.

/** A short size: "0 B", "812 B", "14 kB". */
function formatSize (bytes) {
  if (!bytes) return ''
  return bytes < 1000 ? `${bytes} B` : `${Math.round(bytes / 1000)} kB`
}

/** Keep `list` showing the documents of `documents` (a Y.Map); clicking one calls `open(path)`. */
export function showDocuments (documents, list, currentPath, open) {
  const render = () => {
    list.replaceChildren()
    const paths = [...documents.keys()].sort()
    for (const path of paths) {
      const entry = documents.get(path) || {}
      const item = document.createElement('li')
      item.className = 'document'
      item.dataset.path = path
      if (path === currentPath) item.classList.add('current')
      const link = document.createElement('button')
      link.type = 'button'
      link.className = 'document-link'
      link.textContent = path
      link.addEventListener('click', () => open(path))
      const details = document.createElement('span')
      details.className = 'document-details'
      const readers = (entry.open || []).length
      details.textContent = [
        formatSize(entry.size),
        entry.stored ? '' : 'unsaved',
        readers ? `${readers} open` : ''
      ].filter(Boolean).join(' · ')
      item.append(link, details)
      list.append(item)
    }
    if (!paths.length) {
      const empty = document.createElement('li')
      empty.className = 'document-empty'
      empty.textContent = 'No documents yet'
      list.append(empty)
    }
  }
  documents.observe(render)
  render()
}

/** Submitting `form` opens the path typed in `input` (opening a path creates it). */
export function newDocumentForm (form, input, open) {
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const path = input.value.trim().replace(/^\/+/, '')
    if (path) open(path)
  })
}

/** Open `path` in this page: the same page with `doc=path` (room, name and token kept). */
export function openInPage (path) {
  const url = new URL(window.location.href)
  url.searchParams.set('doc', path)
  window.location.assign(url.toString())
}
